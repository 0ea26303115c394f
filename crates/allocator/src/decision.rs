//! What the [`PoolAllocator`](crate::PoolAllocator) tells its caller: the addresses a Service
//! holds, the Events for it, why a Service is not handled, and the pools' usage for metrics.
//! Plain data, apart from the allocator's rules so each file does one job.

use std::fmt;
use std::net::IpAddr;

use ferrolb_api::model::IpFamily;

use crate::error::{AllocError, ReleaseReason};
use crate::service::ServiceKey;

/// The addresses a Service holds, all from one pool, in the order of its `ipFamilies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The IPs, primary family first.
    pub ips: Vec<IpAddr>,
    /// The pool they come from (`metallb.io/ip-allocated-from-pool`).
    pub pool: String,
}

/// How a new assignment was made (for the `IPAllocated` Event text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatedHow {
    /// The IPs the Service asked for (`loadBalancerIPs` / `spec.loadBalancerIP`).
    Requested,
    /// Chosen by the allocator from the annotated pool or the automatic pools.
    Automatic,
    /// A `PreferDualStack` Service that held one family gained the other from the same pool
    /// (the Event lists the added IP only).
    AdditionalFamily,
}

/// Something an operator should see, one Kubernetes Event each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `IPAllocated`.
    Allocated {
        ips: Vec<IpAddr>,
        pool: String,
        how: AllocatedHow,
    },
    /// `AllocationFailed`.
    Failed(AllocError),
    /// `IPReleased`. `pool` is `None` for status IPs that were never adopted.
    Released {
        ips: Vec<IpAddr>,
        pool: Option<String>,
        reason: ReleaseReason,
    },
}

impl Event {
    /// The Kubernetes Event `reason` field.
    pub fn reason(&self) -> &'static str {
        match self {
            Event::Allocated { .. } => "IPAllocated",
            Event::Failed(_) => "AllocationFailed",
            Event::Released { .. } => "IPReleased",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Allocated { ips, pool, how } => {
                let how = match how {
                    AllocatedHow::Requested => "requested",
                    AllocatedHow::Automatic => "assigned",
                    AllocatedHow::AdditionalFamily => "assigned additional",
                };
                write!(f, "{how} IPs {ips:?} from pool {pool:?}")
            }
            Event::Failed(e) => write!(f, "{e}"),
            Event::Released { ips, pool, reason } => match pool {
                Some(pool) => write!(f, "released IPs {ips:?} of pool {pool:?}: {reason}"),
                None => write!(f, "dropped status IPs {ips:?}: {reason}"),
            },
        }
    }
}

/// Why the allocator does not handle a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `spec.type` is not LoadBalancer.
    NotLoadBalancer,
    /// `spec.loadBalancerClass` is not the one this allocator handles.
    OtherClass { class: Option<String> },
    /// The Service was deleted.
    Deleted,
}

impl From<SkipReason> for ReleaseReason {
    fn from(skip: SkipReason) -> Self {
        match skip {
            SkipReason::NotLoadBalancer => ReleaseReason::NotLoadBalancer,
            SkipReason::OtherClass { class } => ReleaseReason::OtherClass { class },
            SkipReason::Deleted => ReleaseReason::Deleted,
        }
    }
}

/// Where a Service stands after a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// Holds these IPs (write them to `status.loadBalancer.ingress`).
    Assigned(Assignment),
    /// Handled, but has no IP (status stays empty; `AllocationFailed` says why).
    Failed(AllocError),
    /// Not ours: holds nothing.
    NotHandled(SkipReason),
}

/// The outcome of a call for one Service: its state and the Events to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Which Service.
    pub service: ServiceKey,
    /// Its state after the call.
    pub state: ServiceState,
    /// The Events to record on it, in order.
    pub events: Vec<Event>,
}

/// Addresses of one family of one pool (for metrics). `in_use + free + unusable == total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    /// Pool name.
    pub pool: String,
    /// Address family.
    pub family: IpFamily,
    /// Addresses held by at least one Service.
    pub in_use: u128,
    /// Addresses that can still be handed out (not yet dropped buggy ones included).
    pub free: u128,
    /// Dropped by avoidBuggyIPs so far (they are dropped lazily as allocation reaches them).
    pub unusable: u128,
    /// Addresses in the pool's ranges of this family (saturating at `u128::MAX`).
    pub total: u128,
}
