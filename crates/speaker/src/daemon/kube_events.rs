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
//! many errors were left out; an accepted configuration emits no Event.

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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::error::ConfigError;
    use ferrolb_api::error::Reason;
    use ferrolb_runtime::events::{truncate, MAX_NOTE};
    use kube::runtime::events::EventType;
    use std::collections::BTreeMap;

    fn error(kind: &str, name: &str, path: &str) -> ConfigError {
        ConfigError {
            kind: kind.into(),
            namespace: "metallb-system".into(),
            name: name.into(),
            path: path.into(),
            value: "bad".into(),
            reason: Reason::Required,
        }
    }

    fn rejection(errors: Vec<ConfigError>) -> Rejection {
        Rejection {
            errors,
            uids: BTreeMap::from([(
                ("BGPPeer".into(), "metallb-system".into(), "r1".into()),
                "uid-r1".into(),
            )]),
        }
    }

    #[test]
    fn each_error_is_a_warning_about_its_object_naming_field_and_reason() {
        let r = rejection(vec![error("BGPPeer", "r1", "spec.peerASN")]);
        let events = events_for(&r, "metallb-system");
        assert_eq!(events.len(), 1);
        let (event, reference) = &events[0];
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, REASON);
        let note = event.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("spec.peerASN") && note.contains("is required"),
            "{note}"
        );
        assert!(note.contains("last good configuration"), "{note}");
        assert_eq!(reference.kind.as_deref(), Some("BGPPeer"));
        assert_eq!(reference.api_version.as_deref(), Some("metallb.io/v1beta2"));
        assert_eq!(reference.name.as_deref(), Some("r1"));
        assert_eq!(reference.namespace.as_deref(), Some("metallb-system"));
        assert_eq!(
            reference.uid.as_deref(),
            Some("uid-r1"),
            "kubectl describe needs it"
        );
        let other = events_for(&rejection(vec![error("BGPPeer", "r2", "spec")]), "x");
        assert_eq!(
            other[0].1.uid, None,
            "unknown object: no uid rather than a wrong one"
        );
    }

    #[test]
    fn many_errors_are_capped_with_a_summary() {
        let errors: Vec<_> = (0..40)
            .map(|i| error("IPAddressPool", &format!("p{i}"), "spec.addresses[0]"))
            .collect();
        let events = events_for(&rejection(errors), "metallb-system");
        assert_eq!(events.len(), MAX_EVENTS);
        let last = events[MAX_EVENTS - 1].0.note.clone().unwrap_or_default();
        assert!(
            last.starts_with(&format!("{} more", 40 - (MAX_EVENTS - 1))),
            "{last}"
        );
    }

    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_NOTE);
        let cut = truncate(long, MAX_NOTE);
        assert!(
            cut.len() <= MAX_NOTE && cut.ends_with("..."),
            "{}",
            cut.len()
        );
        assert_eq!(truncate("short".into(), MAX_NOTE), "short");
    }
}
