//! What the speaker announces: a pure function of (Config, Services, EndpointSlices, Nodes).
//!
//! ```text
//!  Config ─┐
//!  Cluster ├─▶ bgp::compute_bgp ─▶ BgpPlan { desired: BgpDesired, services, conflicts }
//!  Options ┘                         │ desired ─▶ Advertiser (BGP backend)
//!                                    └ services ─▶ ServiceBGPStatus / logs
//!          └─▶ l2::election::compute_l2 ─▶ L2Plan { desired: L2Desired, vips, services }
//! ```
//!
//! The same plans are kept up to date incrementally by [`bgp::BgpAnnouncer`] and
//! [`crate::l2::election::L2Announcer`]: given a [`change::ChangeSet`], a change to one Service
//! decides that Service again instead of the whole cluster (docs/speaker.md, "Incremental
//! reconcile"). The full computations stay the reference the engines are tested against.
//!
//! No I/O, no clock, no randomness: the same inputs give the same plan on every node, which is
//! what lets every speaker pick the same L2 owner independently, and lets standalone-mode tests
//! prove Kubernetes mode. Inputs come from [`input`], built by [`from_k8s`] in the daemons.

pub mod bgp;
pub mod change;
pub mod drain;
pub mod from_k8s;
pub mod input;
pub mod reason;

use input::{Node, Service};
use reason::SkipReason;

/// Per-speaker settings that are not part of the cluster config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpeakerOptions {
    /// This speaker's node (`--node-name` / `NODE_NAME`).
    pub node_name: String,
    /// MetalLB's `--ignore-exclude-lb`: announce even from nodes labelled
    /// `node.kubernetes.io/exclude-from-external-load-balancers`.
    pub ignore_exclude_lb: bool,
    /// MetalLB's `--lb-class`: serve only Services with this `spec.loadBalancerClass`; `None`
    /// serves only Services without a class.
    pub load_balancer_class: Option<String>,
    /// The node is in its drain period ([`drain::DrainPhase::Draining`]): it keeps announcing
    /// despite its drain signal, and the BGP protocol marks the routes for a graceful shutdown.
    /// Set by the protocol, not by a flag.
    pub draining: bool,
}

impl SpeakerOptions {
    /// Options for `node_name` with MetalLB's defaults.
    pub fn for_node(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            ..Self::default()
        }
    }
}

/// Checks that apply to a Service before any pool or advertisement is looked at, shared by the
/// BGP and Layer 2 computations (MetalLB speaker `handleService`).
pub(crate) fn service_gate(svc: &Service, opts: &SpeakerOptions) -> Result<(), SkipReason> {
    if !svc.is_load_balancer {
        return Err(SkipReason::NotLoadBalancer);
    }
    // MetalLB: a Service with a class is ours only if it names our class, and a speaker with a
    // class serves no class-less Service.
    if svc.load_balancer_class.as_deref() != opts.load_balancer_class.as_deref() {
        return Err(SkipReason::LoadBalancerClassMismatch);
    }
    if svc.ips.is_empty() {
        return Err(SkipReason::NoIpAssigned);
    }
    Ok(())
}

/// Why `node` may not announce anything (MetalLB `IsNetworkUnavailable` and
/// `IsNodeExcludedFromBalancers`), or `Ok` when it may.
///
/// A cordon (`spec.unschedulable`) is not a reason: it only stops new Pods, and the Pods
/// already there keep serving, so withdrawing would blackhole `externalTrafficPolicy: Local`
/// Services whose endpoints all sit on the cordoned node. MetalLB withdrew on cordon for one
/// release and reverted it for that reason; Kubernetes' service controller dropped the same
/// rule earlier. The Ready condition is not one either (MetalLB checks none in
/// `ShouldAnnounce`): endpoints on a failing node stop being ready on their own, and Layer 2
/// liveness is the speaker's, not the kubelet's (docs/speaker.md, "Which nodes announce").
pub(crate) fn node_gate(node: &Node, opts: &SpeakerOptions) -> Result<(), SkipReason> {
    if node.network_unavailable {
        return Err(SkipReason::NodeNetworkUnavailable);
    }
    // A drain signal withdraws once the drain period is over (announce::drain); during it the
    // routes stay, marked GRACEFUL_SHUTDOWN.
    if !opts.draining && drain::drain_requested(node, opts.ignore_exclude_lb) {
        return Err(SkipReason::NodeExcluded);
    }
    Ok(())
}
