//! Why an allocation failed, why an IP was refused, and why one was released. The controller turns
//! these into Events (`AllocationFailed`, `IPReleased`) and metric labels; the `allocate` command
//! prints their `Display` text.

use std::fmt;
use std::net::IpAddr;

use ferrolb_api::model::IpFamily;

use crate::service::{ServiceKey, ServicePort, TrafficPolicy};

/// Why a Service may not take addresses from a pool (MetalLB `spec.serviceAllocation` and the
/// `metallb.io/address-pool` annotation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRejection {
    /// The Service names another pool in `metallb.io/address-pool`.
    #[error("the Service asks for pool {requested:?} in metallb.io/address-pool")]
    OtherPoolRequested { requested: String },
    /// Neither `serviceAllocation.namespaces` nor `namespaceSelectors` admit the namespace.
    #[error("serviceAllocation does not admit namespace {namespace:?}")]
    Namespace { namespace: String },
    /// No `serviceAllocation.serviceSelectors` entry matches the Service's labels.
    #[error("no serviceAllocation.serviceSelectors entry matches the Service's labels")]
    ServiceSelector,
}

/// Why two Services may not hold the same IP (MetalLB's sharing rules: same
/// `allow-shared-ip` key, no port clash, same externalTrafficPolicy, same selector when Local).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingConflict {
    #[error("it does not allow sharing (no metallb.io/allow-shared-ip)")]
    /// The IP's holder has no sharing key.
    HolderDoesNotShare,
    #[error("this Service does not allow sharing (no metallb.io/allow-shared-ip)")]
    /// This Service has no sharing key.
    ServiceDoesNotShare,
    #[error("sharing key {ours:?} differs from its key {theirs:?}")]
    /// The sharing keys differ.
    KeyMismatch { ours: String, theirs: String },
    #[error("externalTrafficPolicy {ours:?} differs from its {theirs:?}")]
    /// One uses externalTrafficPolicy Cluster, the other Local.
    TrafficPolicyMismatch {
        ours: TrafficPolicy,
        theirs: TrafficPolicy,
    },
    #[error("externalTrafficPolicy is Local and the pod selectors differ")]
    /// Both use Local but select different pods.
    SelectorMismatch,
    #[error("port {port} is used by both")]
    /// Both use this port and protocol.
    PortClash { port: ServicePort },
}

/// Why the Service's dual-stack policy rejects a set of IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FamilyMismatch {
    #[error("no IP given")]
    /// No IP at all.
    Empty,
    #[error("two IPs of the same family")]
    /// Two IPs of one family.
    DuplicateFamily,
    #[error("family {0:?} is not among the Service's ipFamilies/ipFamilyPolicy")]
    /// An IP of a family the Service does not ask for.
    UnwantedFamily(IpFamily),
    #[error("RequireDualStack needs one IPv4 and one IPv6 address")]
    /// RequireDualStack with fewer than two families.
    NeedsDualStack,
}

/// Why a specific IP (requested, in the status, or currently held) cannot be the Service's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpRejection {
    #[error("{ip} is not in any IPAddressPool")]
    /// The IP is in no pool.
    NotInAnyPool { ip: IpAddr },
    #[error("{ip} is in pool {pool:?}, which this Service may not use: {reason}")]
    /// The IP's pool is not open to this Service.
    PoolNotAllowed {
        ip: IpAddr,
        pool: String,
        reason: PoolRejection,
    },
    #[error("{ip} ends in .0 or .255 and pool {pool:?} has avoidBuggyIPs")]
    /// avoidBuggyIPs refuses the IP.
    Buggy { ip: IpAddr, pool: String },
    #[error("{ip} is not among the requested IPs")]
    /// The Service requests other IPs.
    NotRequested { ip: IpAddr },
    #[error("{ip} is in pool {pool:?} but {other} is in pool {other_pool:?}; all IPs of a Service come from one pool")]
    /// The IPs come from more than one pool.
    DifferentPools {
        ip: IpAddr,
        pool: String,
        other: IpAddr,
        other_pool: String,
    },
    #[error("{ip} is in use by {holder} and cannot be shared: {conflict}")]
    /// Another Service holds the IP and may not share it.
    InUse {
        ip: IpAddr,
        holder: ServiceKey,
        conflict: SharingConflict,
    },
    #[error("IPs {ips:?} do not fit the Service's IP families: {reason}")]
    /// The IPs do not fit the Service's families / ipFamilyPolicy.
    Families {
        ips: Vec<IpAddr>,
        reason: FamilyMismatch,
    },
}

/// Why a Service got no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// A requested IP (`loadBalancerIPs` / `spec.loadBalancerIP`) cannot be given.
    #[error("requested IP unusable: {0}")]
    Requested(IpRejection),
    #[error("pool {pool:?} named in metallb.io/address-pool does not exist")]
    /// The annotated pool does not exist.
    UnknownPool { pool: String },
    #[error("pool {pool:?} named in metallb.io/address-pool may not be used: {reason}")]
    /// The annotated pool exists but is not open to this Service.
    PoolNotAllowed { pool: String, reason: PoolRejection },
    /// No pool this Service may use has addresses of the needed families.
    #[error("no IPAddressPool this Service may use has {families}")]
    NoPool { families: Families },
    /// Every candidate pool is full for the needed families.
    #[error("no free {families} address in pool(s) {}", pools.join(", "))]
    Exhausted {
        pools: Vec<String>,
        families: Families,
    },
}

impl AllocError {
    /// A short, stable label for the `allocation_errors_total{reason=...}` counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AllocError::Requested(IpRejection::InUse { .. }) => "requested_in_use",
            AllocError::Requested(_) => "requested_invalid",
            AllocError::UnknownPool { .. } => "unknown_pool",
            AllocError::PoolNotAllowed { .. } => "pool_not_allowed",
            AllocError::NoPool { .. } => "no_pool",
            AllocError::Exhausted { .. } => "exhausted",
        }
    }
}

/// A list of families for messages: "IPv4", "IPv4+IPv6".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Families(pub Vec<IpFamily>);

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .0
            .iter()
            .map(|fam| match fam {
                IpFamily::V4 => "IPv4",
                IpFamily::V6 => "IPv6",
            })
            .collect();
        f.write_str(&names.join("+"))
    }
}

/// Why a Service's addresses were released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseReason {
    #[error("the Service was deleted")]
    /// The Service was deleted.
    Deleted,
    #[error("the Service is no longer of type LoadBalancer")]
    /// `spec.type` changed away from LoadBalancer.
    NotLoadBalancer,
    #[error("the Service's loadBalancerClass {class:?} is not handled by this controller")]
    /// `spec.loadBalancerClass` changed to one this allocator does not handle.
    OtherClass { class: Option<String> },
    /// The held (or status) IPs are no longer valid for the Service, e.g. after a config change.
    #[error("no longer valid: {0}")]
    NoLongerValid(IpRejection),
}
