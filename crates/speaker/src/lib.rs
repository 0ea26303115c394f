//! ferrolb-speaker: the per-node daemon that makes Service VIPs reachable (see README.md).
//!
//! - [`announce`]: the pure computation of what this node announces over BGP, from
//!   (Config, Services, EndpointSlices, Nodes), with a reason for everything it does not.
//! - [`l2::election`]: the pure Layer 2 owner election and this node's L2 VIPs.
//! - [`advertiser`]: the [`advertiser::Advertiser`] trait the BGP and Layer 2 backends implement,
//!   and its test double.
//! - [`protocol`]: the [`protocol::Protocol`] trait the reconcile loop drives, and its BGP and
//!   Layer 2 implementations.
//! - [`daemon`]: the daemon around them: standalone and Kubernetes sources, the reconcile loop,
//!   metrics/health HTTP, per-Service status reports.
//! - [`backend`]: Advertiser implementations (BGP on crates/bgp).
//! - [`demo`]: `ferrolb-speaker demo`, everything in one process on loopback.
//! - Neutral modules every part may use, which use none of the parts above them:
//!   [`channels`] (what travels between tasks), [`inputs`] (the file source's reduced model),
//!   [`metrics`] (the shared metrics).

pub mod advertiser;
pub mod announce;
pub mod backend;
pub mod channels;
pub mod counter_metrics;
pub mod daemon;
pub mod demo;
pub mod inputs;
pub mod metrics;
pub mod protocol;

/// Layer 2 (ARP/NDP) mode.
pub mod l2 {
    pub mod election;
    pub mod memberlist;
}
