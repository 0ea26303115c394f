//! Kubernetes Events for a rejected configuration: log + Kubernetes Event + metric
//! `ferrolb_config_stale 1`. The Events are the runtime's ([`ferrolb_runtime::events`]), the
//! same as the controller's: one Warning Event per error, reason `ConfigurationRejected`,
//! attached to the offending object with its UID (so `kubectl describe bgppeer x` shows it), its
//! note naming the field, the value and the reason, and saying that the last good
//! configuration stays in force.
//!
//! ```text
//!  daemon::run ── watch<Rejection> ─▶ run_publisher ─ events_for (pure) ─▶ Recorder
//! ```
//!
//! *Guarantees*: a rejection is published once per distinct error list (the reconciler sees
//! every snapshot; the Events do not repeat while the same errors persist). A failed publish is
//! retried, backing off with jitter from 200 ms to 30 s; a newer error list replaces a pending
//! one. *Caveats*: at most [`MAX_EVENTS`] Events per rejection, the last of them saying how
//! many errors were left out; an accepted configuration emits no Event. The Events' content is
//! tested with the runtime (`ferrolb_runtime::events`), where it is built.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Reporter};
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

pub use ferrolb_runtime::events::{config_uids, ObjectKey, Rejection, ACTION, MAX_EVENTS, REASON};

/// The Events of `rejection`, each with the object it is about (with its UID when known);
/// [`ferrolb_runtime::events::rejection_events`]. Pure.
pub fn events_for(rejection: &Rejection, namespace: &str) -> Vec<(Event, ObjectReference)> {
    ferrolb_runtime::events::rejection_events(rejection, namespace)
}

/// Publishes Events for every new non-empty value of `errors` until `cancel` or until the
/// sender is gone ([`ferrolb_runtime::events::run_publisher`]), counting each failed Event in
/// `ferrolb_kube_write_errors_total{kind="Event"}`. `reporter` names this speaker (controller
/// `ferrolb-speaker`, instance the node or Pod).
pub async fn run_publisher(
    client: Client,
    reporter: Reporter,
    namespace: String,
    errors: watch::Receiver<Rejection>,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) {
    ferrolb_runtime::events::run_publisher(
        client,
        reporter,
        namespace,
        errors,
        move |_: &kube::Error| metrics.count_kube_write_error("Event"),
        cancel,
    )
    .await;
}
