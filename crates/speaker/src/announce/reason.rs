//! Why a Service or one of its VIPs is not announced from this node.
//!
//! One closed enum instead of MetalLB's bare strings, so status writers, metrics and logs can
//! match on it; [`SkipReason::label`] gives the stable word for a metric label or a log field
//! (MetalLB's words where MetalLB has one: `noEndpoints`, `noLocalEndpoints`, `notOwner`, ...).

use std::fmt;

/// Why something is not announced from this node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// `spec.type` is not `LoadBalancer`.
    NotLoadBalancer,
    /// `spec.loadBalancerClass` differs from the class this speaker serves.
    LoadBalancerClassMismatch,
    /// No IP in `status.loadBalancer.ingress` yet (the controller has not allocated one).
    NoIpAssigned,
    /// This speaker's own Node object is unknown, so no node selector can be evaluated.
    NodeNotFound,
    /// This node's `NetworkUnavailable` condition is True.
    NodeNetworkUnavailable,
    /// This node carries `node.kubernetes.io/exclude-from-external-load-balancers`.
    NodeExcluded,
    /// The VIP lies in no IPAddressPool.
    NoPool,
    /// No advertisement (of this protocol) selects the VIP's pool.
    NoAdvertisement,
    /// Advertisements select the pool, but none of their `nodeSelectors` match this node.
    AdvertisementNodeMismatch,
    /// Advertisements select the pool and node, but none of their `serviceSelectors` match.
    ServiceSelectorMismatch,
    /// `externalTrafficPolicy: Cluster` and no endpoint anywhere can serve.
    NoEndpoints,
    /// `externalTrafficPolicy: Local` and no endpoint on this node can serve.
    NoLocalEndpoints,
    /// BGP: no BGPPeer applies to this node, or every one is excluded (see the VIP's
    /// `skipped_peers`).
    NoPeer,
    /// Layer 2: no node is eligible for the VIP.
    NoEligibleNode,
    /// Layer 2: another node won the election for the VIP.
    NotOwner {
        /// The node that announces the VIP.
        winner: String,
    },
}

impl SkipReason {
    /// A stable camelCase word for metric labels and the `reason` log field.
    pub fn label(&self) -> &'static str {
        match self {
            SkipReason::NotLoadBalancer => "notLoadBalancer",
            SkipReason::LoadBalancerClassMismatch => "loadBalancerClassMismatch",
            SkipReason::NoIpAssigned => "noIPAllocated",
            SkipReason::NodeNotFound => "nodeNotFound",
            SkipReason::NodeNetworkUnavailable => "nodeNetworkUnavailable",
            SkipReason::NodeExcluded => "nodeLabeledExcludeBalancers",
            SkipReason::NoPool => "noPool",
            SkipReason::NoAdvertisement => "noAdvertisement",
            SkipReason::AdvertisementNodeMismatch => "advertisementNodeMismatch",
            SkipReason::ServiceSelectorMismatch => "serviceSelectorMismatch",
            SkipReason::NoEndpoints => "noEndpoints",
            SkipReason::NoLocalEndpoints => "noLocalEndpoints",
            SkipReason::NoPeer => "noPeer",
            SkipReason::NoEligibleNode => "noEligibleNode",
            SkipReason::NotOwner { .. } => "notOwner",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotOwner { winner } => write!(f, "notOwner (announced by {winner})"),
            other => f.write_str(other.label()),
        }
    }
}

/// Why one BGP peer does not receive a VIP that other peers may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerSkip {
    /// Every matching BGPAdvertisement has a `peers` list that does not name this peer.
    NotInAdvertisementPeers,
    /// The VIP's family differs from the peer address's and the BGPPeer has neither
    /// `dualStackAddressFamily` nor `interface`, so the session does not carry it.
    FamilyNotCarried,
    /// The session carries the VIP's family over a session of the other family
    /// (`dualStackAddressFamily`), but this Node has no `InternalIP` of the VIP's family to
    /// send as next hop (RFC 4760 §3, RFC 2545 §3), so announcing it would be a route the peer
    /// could not use. Add that address to the Node's `status.addresses`.
    NoNextHopForFamily,
}
