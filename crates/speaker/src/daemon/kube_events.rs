//! Kubernetes Events for a rejected configuration (issue 5: "log + Kubernetes Event + metric
//! `ferrolb_config_stale 1`"). One Warning Event per error, attached to the offending object
//! (so `kubectl describe bgppeer x` shows it), its note naming the field, the value and the
//! reason, and saying that the last good configuration stays in force.
//!
//! ```text
//!  daemon::run ── watch<Rejection> ─▶ run_publisher ─ events_for (pure) ─▶ Recorder
//! ```
//!
//! Each Event's `regarding` carries the object's UID (from the same snapshot), which
//! `kubectl describe` needs to list it under the object.
//!
//! *Guarantees*: a rejection is published once per distinct error list (the reconciler sees
//! every snapshot; the Events do not repeat while the same errors persist). A failed publish is
//! retried, backing off with jitter from 200 ms to 30 s; a newer error list replaces a pending
//! one. *Caveats*: at most [`MAX_EVENTS`] Events per rejection, the last of them saying how
//! many errors were left out; an accepted configuration emits no Event.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_api::error::ConfigError;
use ferrolb_api::source::Resources;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use kube::ResourceExt as _;
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

/// An object by (kind, namespace, name), as a [`ConfigError`] names it.
pub type ObjectKey = (String, String, String);

/// The newest configuration's errors (empty when it is in force) and the UIDs of the objects
/// they may name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rejection {
    /// The errors.
    pub errors: Vec<ConfigError>,
    /// UID of each configuration object and Secret of the snapshot the errors came from.
    pub uids: BTreeMap<ObjectKey, String>,
}

/// The UIDs of the configuration objects and Secrets of `res` (a few dozen objects; Services
/// and the like are not configuration and are left out).
pub fn config_uids(res: &Resources) -> BTreeMap<ObjectKey, String> {
    fn add<K: kube::Resource>(out: &mut BTreeMap<ObjectKey, String>, kind: &str, objects: &[K]) {
        for o in objects {
            if let Some(uid) = o.uid() {
                let ns = o.namespace().unwrap_or_default();
                out.insert((kind.to_string(), ns, o.name_any()), uid);
            }
        }
    }
    let mut out = BTreeMap::new();
    add(&mut out, "IPAddressPool", &res.ip_address_pools);
    add(&mut out, "BGPPeer", &res.bgp_peers);
    add(&mut out, "BGPAdvertisement", &res.bgp_advertisements);
    add(&mut out, "L2Advertisement", &res.l2_advertisements);
    add(&mut out, "Community", &res.communities);
    add(&mut out, "BFDProfile", &res.bfd_profiles);
    add(&mut out, "Secret", &res.secrets);
    out
}

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

/// The Events of `rejection`, each with the object it is about (with its UID when known).
/// Objects without a namespace (none of the validated kinds is cluster-scoped, but a bad
/// reference might name one) get `namespace`, the speaker's. Pure.
pub fn events_for(rejection: &Rejection, namespace: &str) -> Vec<(Event, ObjectReference)> {
    let errors = rejection.errors.as_slice();
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
            let key = (e.kind.clone(), e.namespace.clone(), e.name.clone());
            let reference = ObjectReference {
                uid: rejection.uids.get(&key).cloned(),
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
    mut errors: watch::Receiver<Rejection>,
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
        if current.errors == published {
            continue;
        }
        if current.errors.is_empty() {
            published = current.errors;
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
                published = current.errors;
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
