//! From an allocator [`Decision`] and the Service as the API server last showed it, to the writes
//! that make the cluster agree: pure, no client, no clock.
//!
//! The reconciler calls [`plan`] for every Decision (and again with a fresh object after a
//! 409), and executes what it returns: a JSON merge patch (RFC 7386) on the status subresource,
//! a merge patch on the object for the pool annotation, and Events. Only differences are written,
//! so the watch event our own write causes plans nothing and does not loop.
//!
//! What each state asks for:
//!
//! | allocator state              | `status.loadBalancer.ingress` | pool annotation |
//! |------------------------------|-------------------------------|-----------------|
//! | `Assigned { ips, pool }`     | one `{ip, ipMode: VIP}` per IP | `pool`          |
//! | `Failed(_)`                  | empty                          | removed         |
//! | `NotHandled(NotLoadBalancer)`| empty                          | removed         |
//! | `NotHandled(OtherClass)`     | untouched (another controller's) | removed       |
//! | `NotHandled(Deleted)`        | nothing (the object is gone)   | nothing         |

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use serde_json::{json, Value};

use ferrolb_allocator::{Decision, Event, ServiceState, SkipReason};

/// The annotation naming the pool a Service's IPs come from (MetalLB's name).
pub const POOL_ANNOTATION: &str = "metallb.io/ip-allocated-from-pool";

/// `ipMode` written with every ingress IP: traffic arrives with the VIP as destination
/// (Kubernetes 1.30+, KEP-1860), which is what BGP and L2 announcement deliver.
pub const IP_MODE_VIP: &str = "VIP";

/// Events API limit on `note` (events.k8s.io/v1: "must be at most 1kB").
pub const MAX_NOTE_BYTES: usize = 1024;

/// The severity of an Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// One Kubernetes Event to record on the Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    /// `type`.
    pub severity: Severity,
    /// `reason`: `IPAllocated`, `AllocationFailed` or `IPReleased`.
    pub reason: &'static str,
    /// `note`, at most [`MAX_NOTE_BYTES`].
    pub note: String,
}

/// What to write for one Service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceWrites {
    /// Merge patch for `/status`, when `status.loadBalancer.ingress` must change.
    pub status: Option<Value>,
    /// Merge patch for the object, when the pool annotation must change.
    pub annotations: Option<Value>,
    /// Events to record, in order.
    pub events: Vec<EventNote>,
}

impl ServiceWrites {
    /// True when there is no patch to send (Events aside).
    pub fn no_patch(&self) -> bool {
        self.status.is_none() && self.annotations.is_none()
    }
}

/// What the Service should look like; `None` fields are left alone.
struct Desired {
    ingress: Option<Vec<LoadBalancerIngress>>,
    pool: Option<Option<String>>,
}

/// The writes that bring `current` (the Service as last seen; `None` when unknown) to the state
/// `decision` asks for, plus one Event per allocator Event.
pub fn plan(decision: &Decision, current: Option<&Service>) -> ServiceWrites {
    let desired = match &decision.state {
        ServiceState::Assigned(a) => Desired {
            ingress: Some(ingress_of(&a.ips)),
            pool: Some(Some(a.pool.clone())),
        },
        ServiceState::Failed(_) | ServiceState::NotHandled(SkipReason::NotLoadBalancer) => {
            Desired {
                ingress: Some(Vec::new()),
                pool: Some(None),
            }
        }
        ServiceState::NotHandled(SkipReason::OtherClass { .. }) => Desired {
            ingress: None,
            pool: Some(None),
        },
        ServiceState::NotHandled(SkipReason::Deleted) => Desired {
            ingress: None,
            pool: None,
        },
    };
    let mut writes = diff(&desired, current);
    writes.events = decision.events.iter().map(note_of).collect();
    writes
}

/// The writes for a Service we would handle but cannot read (a malformed annotation or field):
/// like MetalLB, its state is cleared and a Warning says why. `released` are the IPs it held.
pub fn plan_unreadable(
    error: &dyn std::fmt::Display,
    released: &[IpAddr],
    current: Option<&Service>,
) -> ServiceWrites {
    let desired = Desired {
        ingress: Some(Vec::new()),
        pool: Some(None),
    };
    let mut writes = diff(&desired, current);
    let mut note = format!("cannot read the Service: {error}");
    if !released.is_empty() {
        note.push_str(&format!("; released IPs {released:?}"));
    }
    writes.events.push(EventNote {
        severity: Severity::Warning,
        reason: "AllocationFailed",
        note: truncate(note),
    });
    writes
}

fn ingress_of(ips: &[IpAddr]) -> Vec<LoadBalancerIngress> {
    ips.iter()
        .map(|ip| LoadBalancerIngress {
            ip: Some(ip.to_string()),
            ip_mode: Some(IP_MODE_VIP.to_string()),
            ..LoadBalancerIngress::default()
        })
        .collect()
}

fn diff(desired: &Desired, current: Option<&Service>) -> ServiceWrites {
    let mut writes = ServiceWrites::default();
    if current.is_none() {
        // Nothing to patch: the object is unknown (deleted, or not yet seen).
        return writes;
    }
    if let Some(want) = &desired.ingress {
        let have = current
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default();
        if &have != want {
            // RFC 7386 §2: a list is replaced whole; `null` removes the member.
            let ingress = if want.is_empty() {
                Value::Null
            } else {
                serde_json::to_value(want).unwrap_or(Value::Null)
            };
            writes.status = Some(json!({"status": {"loadBalancer": {"ingress": ingress}}}));
        }
    }
    if let Some(want) = &desired.pool {
        let have = current
            .and_then(|s| s.metadata.annotations.as_ref())
            .and_then(|a| a.get(POOL_ANNOTATION));
        if have != want.as_ref() {
            writes.annotations =
                Some(json!({"metadata": {"annotations": {POOL_ANNOTATION: want}}}));
        }
    }
    writes
}

fn note_of(event: &Event) -> EventNote {
    EventNote {
        severity: match event {
            Event::Failed(_) => Severity::Warning,
            Event::Allocated { .. } | Event::Released { .. } => Severity::Normal,
        },
        reason: event.reason(),
        note: truncate(event.to_string()),
    }
}

/// Cuts `text` to [`MAX_NOTE_BYTES`] on a character boundary.
pub fn truncate(mut text: String) -> String {
    if text.len() > MAX_NOTE_BYTES {
        let mut end = MAX_NOTE_BYTES - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_allocator::error::Families;
    use ferrolb_allocator::{AllocError, AllocatedHow, Assignment, ReleaseReason, ServiceKey};
    use ferrolb_api::model::IpFamily;

    fn svc(yaml: &str) -> Service {
        serde_json::from_value(serde_yaml_ng::from_str::<Value>(yaml).expect("yaml"))
            .expect("service")
    }

    fn assigned(ips: &[&str], pool: &str) -> Decision {
        let ips: Vec<IpAddr> = ips.iter().map(|s| s.parse().expect("ip")).collect();
        Decision {
            service: ServiceKey::new("ns", "web"),
            state: ServiceState::Assigned(Assignment {
                ips: ips.clone(),
                pool: pool.into(),
            }),
            events: vec![Event::Allocated {
                ips,
                pool: pool.into(),
                how: AllocatedHow::Automatic,
            }],
        }
    }

    const BARE: &str = "metadata: {name: web, namespace: ns}\nspec: {type: LoadBalancer}";

    #[test]
    fn assignment_writes_ingress_with_vip_mode_and_the_pool_annotation() {
        let w = plan(&assigned(&["10.0.0.1", "fd00::1"], "p"), Some(&svc(BARE)));
        assert_eq!(
            w.status,
            Some(json!({"status": {"loadBalancer": {"ingress": [
                {"ip": "10.0.0.1", "ipMode": "VIP"},
                {"ip": "fd00::1", "ipMode": "VIP"},
            ]}}}))
        );
        assert_eq!(
            w.annotations,
            Some(json!({"metadata": {"annotations": {POOL_ANNOTATION: "p"}}}))
        );
        assert_eq!(w.events.len(), 1);
        assert_eq!(w.events[0].reason, "IPAllocated");
        assert_eq!(w.events[0].severity, Severity::Normal);
    }

    #[test]
    fn an_object_already_matching_gets_no_patch() {
        let current = svc(
            "metadata: {name: web, namespace: ns, annotations: {metallb.io/ip-allocated-from-pool: p}}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1, ipMode: VIP}]}}",
        );
        let mut d = assigned(&["10.0.0.1"], "p");
        d.events.clear();
        let w = plan(&d, Some(&current));
        assert!(w.no_patch(), "{w:?}");
        assert!(w.events.is_empty());
    }

    #[test]
    fn a_status_ip_without_ip_mode_is_rewritten() {
        let current = svc(
            "metadata: {name: web, namespace: ns, annotations: {metallb.io/ip-allocated-from-pool: p}}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}",
        );
        let w = plan(&assigned(&["10.0.0.1"], "p"), Some(&current));
        assert!(w.status.is_some());
        assert!(w.annotations.is_none());
    }

    #[test]
    fn failure_clears_status_and_annotation_with_a_warning() {
        let current = svc(
            "metadata: {name: web, namespace: ns, annotations: {metallb.io/ip-allocated-from-pool: p, keep: me}}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1, ipMode: VIP}]}}",
        );
        let err = AllocError::NoPool {
            families: Families(vec![IpFamily::V4]),
        };
        let d = Decision {
            service: ServiceKey::new("ns", "web"),
            state: ServiceState::Failed(err.clone()),
            events: vec![Event::Failed(err)],
        };
        let w = plan(&d, Some(&current));
        assert_eq!(
            w.status,
            Some(json!({"status": {"loadBalancer": {"ingress": null}}}))
        );
        assert_eq!(
            w.annotations,
            Some(json!({"metadata": {"annotations": {POOL_ANNOTATION: null}}}))
        );
        assert_eq!(w.events[0].severity, Severity::Warning);
        assert_eq!(w.events[0].reason, "AllocationFailed");
        assert!(w.events[0].note.contains("IPv4"), "{:?}", w.events[0]);
    }

    #[test]
    fn other_class_keeps_the_status_of_the_other_controller() {
        let current = svc(
            "metadata: {name: web, namespace: ns, annotations: {metallb.io/ip-allocated-from-pool: p}}
spec: {type: LoadBalancer, loadBalancerClass: other}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}",
        );
        let d = Decision {
            service: ServiceKey::new("ns", "web"),
            state: ServiceState::NotHandled(SkipReason::OtherClass {
                class: Some("other".into()),
            }),
            events: vec![],
        };
        let w = plan(&d, Some(&current));
        assert!(w.status.is_none());
        assert!(w.annotations.is_some());
    }

    #[test]
    fn deletion_writes_only_the_release_event() {
        let d = Decision {
            service: ServiceKey::new("ns", "web"),
            state: ServiceState::NotHandled(SkipReason::Deleted),
            events: vec![Event::Released {
                ips: vec!["10.0.0.1".parse().expect("ip")],
                pool: Some("p".into()),
                reason: ReleaseReason::Deleted,
            }],
        };
        let w = plan(&d, Some(&svc(BARE)));
        assert!(w.no_patch());
        assert_eq!(w.events[0].reason, "IPReleased");
    }

    #[test]
    fn unknown_object_gets_no_patch() {
        assert!(plan(&assigned(&["10.0.0.1"], "p"), None).no_patch());
    }

    #[test]
    fn unreadable_service_is_cleared_with_a_warning() {
        let current = svc(
            "metadata: {name: web, namespace: ns, annotations: {metallb.io/ip-allocated-from-pool: p}}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}",
        );
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let w = plan_unreadable(&"bad annotation", &[ip], Some(&current));
        assert!(w.status.is_some() && w.annotations.is_some());
        assert!(w.events[0].note.contains("bad annotation"));
        assert!(w.events[0].note.contains("10.0.0.1"));
    }

    #[test]
    fn long_notes_are_cut_on_a_char_boundary() {
        let t = truncate("é".repeat(2000));
        assert!(t.len() <= MAX_NOTE_BYTES);
        assert!(t.ends_with("..."));
    }
}
