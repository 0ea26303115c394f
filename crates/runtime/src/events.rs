//! Kubernetes Events for a rejected configuration, the same from both daemons.
//!
//! One Warning Event per error (at most [`MAX_EVENTS`], the last of them counting the rest),
//! reason [`REASON`], action [`ACTION`], `regarding` the offending object with its UID (which
//! `kubectl describe` needs to list the Event under the object), the note the error line (object,
//! field path, value, reason) followed by [`NOTE_SUFFIX`]. MetalLB posts no Event for a
//! configuration it cannot parse (it logs it and sets `metallb_k8s_client_config_stale_bool`),
//! so the reason is ours: `ConfigurationRejected`.
//!
//! [`rejection_events`] is pure; [`run_publisher`] is the thin kube I/O around it, once per
//! distinct error list, retrying failed posts with [`Backoff`].

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

use crate::backoff::{sleep_until, Backoff};

/// Event `reason` of a rejected configuration, from the controller and the speaker alike.
pub const REASON: &str = "ConfigurationRejected";
/// Event `action`.
pub const ACTION: &str = "Validate";
/// At most this many Events per rejected configuration (the last one counts the errors left
/// out); a rejection is published once per distinct error list.
pub const MAX_EVENTS: usize = 16;
/// The end of every note.
pub const NOTE_SUFFIX: &str = "the last good configuration stays in force";
/// The Events API limits `note` to 1 kB.
pub const MAX_NOTE: usize = 1024;

/// Retries of a failed publish: 200 ms doubling to 30 s, with jitter.
pub const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));

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

/// `apiVersion` of a kind a [`ConfigError`] can name.
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
pub fn truncate(mut s: String, max: usize) -> String {
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

/// The object an error is about, with its UID when the snapshot had it. An error naming no
/// object (a namespace-wide rule) is about `namespace`, the daemon's Namespace; an object
/// without a namespace gets `namespace` too (every validated kind is namespaced).
pub fn regarding(error: &ConfigError, rejection: &Rejection, namespace: &str) -> ObjectReference {
    if error.name.is_empty() {
        return ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
            name: Some(namespace.to_string()),
            ..ObjectReference::default()
        };
    }
    let key = (
        error.kind.clone(),
        error.namespace.clone(),
        error.name.clone(),
    );
    ObjectReference {
        uid: rejection.uids.get(&key).cloned(),
        api_version: api_version(&error.kind).map(str::to_string),
        kind: Some(error.kind.clone()),
        name: Some(error.name.clone()),
        namespace: Some(if error.namespace.is_empty() {
            namespace.to_string()
        } else {
            error.namespace.clone()
        }),
        ..ObjectReference::default()
    }
}

/// The note of one error's Event.
pub fn note(error: &ConfigError) -> String {
    truncate(format!("{error}; {NOTE_SUFFIX}"), MAX_NOTE)
}

/// The Events of `rejection`, each with the object it is about. Pure.
pub fn rejection_events(rejection: &Rejection, namespace: &str) -> Vec<(Event, ObjectReference)> {
    let errors = rejection.errors.as_slice();
    let shown = if errors.len() > MAX_EVENTS {
        MAX_EVENTS - 1
    } else {
        errors.len()
    };
    let mut out: Vec<(Event, ObjectReference)> = errors
        .iter()
        .take(shown)
        .map(|e| (warning(note(e)), regarding(e, rejection, namespace)))
        .collect();
    if shown < errors.len() {
        let note = format!(
            "{} more configuration errors not shown as Events (see the log); {NOTE_SUFFIX}",
            errors.len() - shown
        );
        if let Some((_, reference)) = out.first() {
            let reference = reference.clone();
            out.push((warning(note), reference));
        }
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

/// Publishes the Events of every new non-empty value of `rejections` until `cancel` or until
/// the sender is gone. `reporter` names the daemon (controller `ferrolb-controller` or
/// `ferrolb-speaker`, instance the Pod); `namespace` is the daemon's (see [`regarding`]).
/// `on_failure` is told of each Event the API server did not take (a metric).
///
/// Once per distinct error list: an empty list resets the memory, so a value sent again
/// after an empty one is published again (the controller sends an empty list when it stops
/// leading). A failed round is retried with [`RETRY`]; a newer list replaces a pending one.
pub async fn run_publisher(
    client: Client,
    reporter: Reporter,
    namespace: String,
    mut rejections: watch::Receiver<Rejection>,
    on_failure: impl Fn(&kube::Error) + Send,
    cancel: CancellationToken,
) {
    let mut published: Vec<ConfigError> = Vec::new();
    let mut attempt = 0u32;
    let mut retry_at: Option<Instant> = None;
    // The initial value counts as news too (a daemon may send before this task runs).
    rejections.mark_changed();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = rejections.changed() => if changed.is_err() { return },
            () = sleep_until(retry_at), if retry_at.is_some() => retry_at = None,
        }
        if retry_at.is_some() {
            continue;
        }
        let current = rejections.borrow_and_update().clone();
        if current.errors == published {
            continue;
        }
        if current.errors.is_empty() {
            published = current.errors;
            continue;
        }
        let mut failed = None;
        for (event, reference) in rejection_events(&current, &namespace) {
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
                on_failure(&error);
                failed = Some(error);
            }
        }
        match failed {
            None => {
                published = current.errors;
                attempt = 0;
            }
            Some(error) => {
                let delay = RETRY.delay(attempt);
                attempt = attempt.saturating_add(1);
                tracing::warn!(%error, retry_in = ?delay, "configuration-rejected Event not published; retrying");
                retry_at = Some(Instant::now() + delay);
            }
        }
    }
}

/// Event `reason` of a set configuration field that FerroLB accepts and does not act on.
pub const REASON_IGNORED: &str = "ConfigurationFieldIgnored";
/// Event `reason` of a BGPPeer whose session cannot be made on a node (its VRF device is
/// missing, say).
pub const REASON_PEER_DOWN: &str = "PeerSessionDown";

/// A Warning Event about one configuration object that is in force: an ignored field, or a
/// peer that cannot have its session on a node. Not a rejection (the configuration stays in
/// force), so its note has no [`NOTE_SUFFIX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Object kind, e.g. `BGPPeer`.
    pub kind: String,
    /// `metadata.namespace` (empty: the daemon's).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The object's UID when known (`kubectl describe` lists Events by it).
    pub uid: Option<String>,
    /// [`REASON_IGNORED`] or [`REASON_PEER_DOWN`].
    pub reason: &'static str,
    /// What happened and what FerroLB does instead.
    pub note: String,
}

impl Warning {
    /// The Warning about an ignored field, `uids` giving the object's UID
    /// ([`config_uids`]).
    pub fn ignored(
        field: &ferrolb_api::validate::IgnoredField,
        uids: &BTreeMap<ObjectKey, String>,
    ) -> Warning {
        let key = (
            field.kind.to_string(),
            field.namespace.clone(),
            field.name.clone(),
        );
        Warning {
            kind: field.kind.to_string(),
            namespace: field.namespace.clone(),
            name: field.name.clone(),
            uid: uids.get(&key).cloned(),
            reason: REASON_IGNORED,
            note: field.to_string(),
        }
    }
}

/// The Event of `w` and the object it is about (in `namespace` when `w` names none). Pure.
pub fn warning_event(w: &Warning, namespace: &str) -> (Event, ObjectReference) {
    let event = Event {
        type_: EventType::Warning,
        reason: w.reason.into(),
        note: Some(truncate(w.note.clone(), MAX_NOTE)),
        action: ACTION.into(),
        secondary: None,
    };
    let reference = ObjectReference {
        uid: w.uid.clone(),
        api_version: api_version(&w.kind).map(str::to_string),
        kind: Some(w.kind.clone()),
        name: Some(w.name.clone()),
        namespace: Some(if w.namespace.is_empty() {
            namespace.to_string()
        } else {
            w.namespace.clone()
        }),
        ..ObjectReference::default()
    };
    (event, reference)
}

/// How often a batch of warnings is tried before it is given up (logged).
const WARNING_ATTEMPTS: u32 = 5;

/// Publishes each batch of warnings received on `warnings` as Events ([`warning_event`]),
/// until `cancel` or until every sender is gone. The sender decides when to warn (once per
/// configuration change, once per peer start); a batch that fails is retried with [`RETRY`]
/// up to five times, then logged and dropped. `on_failure` is told of each Event the API server
/// did not take.
pub async fn run_warning_publisher(
    client: Client,
    reporter: Reporter,
    namespace: String,
    mut warnings: tokio::sync::mpsc::UnboundedReceiver<Vec<Warning>>,
    on_failure: impl Fn(&kube::Error) + Send,
    cancel: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            () = cancel.cancelled() => return,
            b = warnings.recv() => match b { Some(b) => b, None => return },
        };
        let mut pending: Vec<&Warning> = batch.iter().collect();
        for attempt in 0..WARNING_ATTEMPTS {
            let mut failed = Vec::new();
            for w in pending {
                let (event, reference) = warning_event(w, &namespace);
                // A fresh Recorder per Event, as in `run_publisher`.
                let recorder = Recorder::new(client.clone(), reporter.clone());
                let done = tokio::select! {
                    r = recorder.publish(&event, &reference) => r,
                    () = cancel.cancelled() => return,
                };
                if let Err(error) = done {
                    on_failure(&error);
                    tracing::warn!(%error, object = %w.name, reason = w.reason,
                        "warning Event not published");
                    failed.push(w);
                }
            }
            pending = failed;
            if pending.is_empty() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY.delay(attempt)) => {}
                () = cancel.cancelled() => return,
            }
        }
        if !pending.is_empty() {
            tracing::warn!(
                dropped = pending.len(),
                "warning Events given up after retries"
            );
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
    fn a_warning_is_a_warning_event_on_its_object_with_uid() {
        let res = ferrolb_api::source::files::load_str(
            "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: p, \
             namespace: metallb-system, uid: u-1}\nspec: {preferredNodeSelectors: [{weight: \
             10, preference: {matchLabels: {a: b}}}]}\n",
            std::path::Path::new("t"),
        )
        .expect("loads");
        let field = ferrolb_api::validate::ignored_fields(&res)
            .into_iter()
            .next()
            .expect("preferredNodeSelectors is ignored");
        let w = Warning::ignored(&field, &config_uids(&res));
        let (event, reference) = warning_event(&w, "other");
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, REASON_IGNORED);
        assert_eq!(event.note.as_deref(), Some(field.to_string().as_str()));
        assert_eq!(reference.uid.as_deref(), Some("u-1"));
        assert_eq!(reference.kind.as_deref(), Some("L2Advertisement"));
        assert_eq!(reference.api_version.as_deref(), Some("metallb.io/v1beta1"));
        assert_eq!(reference.namespace.as_deref(), Some("metallb-system"));
        assert_eq!(reference.name.as_deref(), Some("p"));
    }

    #[test]
    fn each_error_is_a_warning_about_its_object_naming_field_and_reason() {
        let r = rejection(vec![error("BGPPeer", "r1", "spec.peerASN")]);
        let events = rejection_events(&r, "metallb-system");
        assert_eq!(events.len(), 1);
        let (event, reference) = &events[0];
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, "ConfigurationRejected");
        assert_eq!(event.action, "Validate");
        assert_eq!(
            event.note.as_deref(),
            Some("BGPPeer metallb-system/r1: spec.peerASN = \"bad\": is required; the last good configuration stays in force")
        );
        assert_eq!(reference.kind.as_deref(), Some("BGPPeer"));
        assert_eq!(reference.api_version.as_deref(), Some("metallb.io/v1beta2"));
        assert_eq!(reference.name.as_deref(), Some("r1"));
        assert_eq!(reference.namespace.as_deref(), Some("metallb-system"));
        assert_eq!(
            reference.uid.as_deref(),
            Some("uid-r1"),
            "kubectl describe needs it"
        );
        let other = rejection_events(&rejection(vec![error("BGPPeer", "r2", "spec")]), "x");
        assert_eq!(
            other[0].1.uid, None,
            "unknown object: no uid rather than a wrong one"
        );
        let pool = rejection_events(&rejection(vec![error("IPAddressPool", "p", "spec")]), "x");
        assert_eq!(pool[0].1.api_version.as_deref(), Some("metallb.io/v1beta1"));
    }

    #[test]
    fn an_error_naming_no_object_is_about_the_namespace() {
        let r = rejection(vec![error("BGPAdvertisement", "", "spec")]);
        let (_, reference) = &rejection_events(&r, "metallb-system")[0];
        assert_eq!(reference.kind.as_deref(), Some("Namespace"));
        assert_eq!(reference.name.as_deref(), Some("metallb-system"));
        assert_eq!(reference.namespace, None, "Namespaces are cluster-scoped");
    }

    #[test]
    fn many_errors_are_capped_with_a_summary() {
        let errors: Vec<_> = (0..40)
            .map(|i| error("IPAddressPool", &format!("p{i}"), "spec.addresses[0]"))
            .collect();
        let events = rejection_events(&rejection(errors), "metallb-system");
        assert_eq!(events.len(), MAX_EVENTS);
        let last = events[MAX_EVENTS - 1].0.note.clone().unwrap_or_default();
        assert!(
            last.starts_with(&format!("{} more", 40 - (MAX_EVENTS - 1))),
            "{last}"
        );
        assert!(last.ends_with(NOTE_SUFFIX), "{last}");
        let exactly = (0..MAX_EVENTS)
            .map(|i| error("IPAddressPool", &format!("p{i}"), "spec"))
            .collect();
        assert_eq!(rejection_events(&rejection(exactly), "x").len(), MAX_EVENTS);
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
