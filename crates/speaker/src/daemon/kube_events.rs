//! Kubernetes Events for a rejected configuration (issue 5: "log + Kubernetes Event + metric
//! `ferrolb_config_stale 1`"). One Warning Event per error, attached to the offending object
//! (so `kubectl describe bgppeer x` shows it), its note naming the field, the value and the
//! reason, and saying that the last good configuration stays in force.
//!
//! ```text
//!  daemon::run ── watch<Vec<ConfigError>> ─▶ run_publisher ─ events_for (pure) ─▶ Recorder
//! ```
//!
//! *Guarantees*: a rejection is published once per distinct error list (the reconciler sees
//! every snapshot; the Events do not repeat while the same errors persist). A failed publish is
//! retried, backing off with jitter from 200 ms to 30 s; a newer error list replaces a pending
//! one. *Caveats*: at most [`MAX_EVENTS`] Events per rejection, the last of them saying how
//! many errors were left out; an accepted configuration emits no Event.

use std::time::Duration;

use ferrolb_api::error::ConfigError;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Event `reason` of a rejected configuration.
pub const REASON: &str = "ConfigurationRejected";
/// Event `action`.
pub const ACTION: &str = "Validate";
/// At most this many Events per rejected configuration.
pub const MAX_EVENTS: usize = 16;
/// The Events API limits `note` to 1 kB.
const MAX_NOTE: usize = 1024;

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// `apiVersion` of a kind a [`ConfigError`] can name (those FerroLB validates).
fn api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "BGPPeer" => Some("metallb.io/v1beta2"),
        "IPAddressPool" | "BGPAdvertisement" | "L2Advertisement" | "Community" | "BFDProfile" => {
            Some("metallb.io/v1beta1")
        }
        "Secret" | "Node" | "Service" | "Namespace" | "ConfigMap" => Some("v1"),
        _ => None,
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("...");
    s
}

/// The Events of one rejection, each with the object it is about. Objects without a namespace
/// (none of the validated kinds is cluster-scoped, but a bad reference might name one) get
/// `namespace`, the speaker's. Pure.
pub fn events_for(errors: &[ConfigError], namespace: &str) -> Vec<(Event, ObjectReference)> {
    let shown = if errors.len() > MAX_EVENTS {
        MAX_EVENTS - 1
    } else {
        errors.len()
    };
    let mut out: Vec<(Event, ObjectReference)> = errors
        .iter()
        .take(shown)
        .map(|e| {
            let note = format!("{e}; the last good configuration stays in force");
            let reference = ObjectReference {
                api_version: api_version(&e.kind).map(str::to_string),
                kind: Some(e.kind.clone()),
                name: Some(e.name.clone()),
                namespace: Some(if e.namespace.is_empty() {
                    namespace.to_string()
                } else {
                    e.namespace.clone()
                }),
                ..ObjectReference::default()
            };
            (warning(truncate(note, MAX_NOTE)), reference)
        })
        .collect();
    if let (Some(first), true) = (errors.first(), shown < errors.len()) {
        let note = format!(
            "{} more configuration errors not shown as Events (see the speaker's log); the last good configuration stays in force",
            errors.len() - shown
        );
        let reference = out
            .first()
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| ObjectReference {
                kind: Some(first.kind.clone()),
                name: Some(first.name.clone()),
                ..ObjectReference::default()
            });
        out.push((warning(note), reference));
    }
    out
}

fn warning(note: String) -> Event {
    Event {
        type_: EventType::Warning,
        reason: REASON.into(),
        note: Some(note),
        action: ACTION.into(),
        secondary: None,
    }
}

/// Publishes Events for every new non-empty value of `errors` until `cancel` or until the
/// sender is gone. `reporter` names this speaker (controller `ferrolb-speaker`, instance the
/// node or Pod).
pub async fn run_publisher(
    client: Client,
    reporter: Reporter,
    namespace: String,
    mut errors: watch::Receiver<Vec<ConfigError>>,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut published: Vec<ConfigError> = Vec::new();
    let mut retry_delay = RETRY_MIN;
    let mut retry_at: Option<Instant> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = errors.changed() => if changed.is_err() { return },
            () = super::kube::sleep_until(retry_at), if retry_at.is_some() => retry_at = None,
        }
        if retry_at.is_some() {
            continue;
        }
        let current = errors.borrow_and_update().clone();
        if current == published {
            continue;
        }
        if current.is_empty() {
            published = current;
            continue;
        }
        let mut failed = None;
        for (event, reference) in events_for(&current, &namespace) {
            // A fresh Recorder per Event: a Recorder keys its series cache by (reason, action,
            // object), not by note, so a shared one would turn a second error on the same
            // object, or a later different rejection, into a count bump of the first Event
            // with the first note. Repeats are already suppressed above.
            let recorder = Recorder::new(client.clone(), reporter.clone());
            let done = tokio::select! {
                r = recorder.publish(&event, &reference) => r,
                () = cancel.cancelled() => return,
            };
            if let Err(error) = done {
                metrics.count_kube_write_error("Event");
                failed = Some(error);
            }
        }
        match failed {
            None => {
                published = current;
                retry_delay = RETRY_MIN;
            }
            Some(error) => {
                tracing::warn!(%error, retry_in = ?retry_delay, "configuration-rejected Event not published; retrying");
                retry_at = Some(Instant::now() + super::kube::jittered(retry_delay));
                retry_delay = (retry_delay * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::error::Reason;

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

    #[test]
    fn each_error_is_a_warning_about_its_object_naming_field_and_reason() {
        let events = events_for(&[error("BGPPeer", "r1", "spec.peerASN")], "metallb-system");
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
    }

    #[test]
    fn many_errors_are_capped_with_a_summary() {
        let errors: Vec<_> = (0..40)
            .map(|i| error("IPAddressPool", &format!("p{i}"), "spec.addresses[0]"))
            .collect();
        let events = events_for(&errors, "metallb-system");
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
