//! The allocator's view of a Service: plain data, already parsed from the Kubernetes object (see
//! [`crate::from_k8s`]) so the allocator never touches k8s-openapi types.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ferrolb_api::model::IpFamily;
use ferrolb_api::selector::Labels;

/// `namespace/name` of a Service, shared with the speaker.
pub use ferrolb_api::ServiceKey;

/// `spec.type`. Only `LoadBalancer` Services get an address. `Default` is `LoadBalancer` (not
/// Kubernetes' `ClusterIP`) so that `Service { ..Default::default() }` is one the allocator handles;
/// [`crate::from_k8s`] applies the Kubernetes default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// `ClusterIP` (the API server's default).
    ClusterIp,
    /// `NodePort`.
    NodePort,
    /// `LoadBalancer`: the only type that gets an address.
    #[default]
    LoadBalancer,
    /// `ExternalName`.
    ExternalName,
}

/// `spec.ipFamilyPolicy`. Kubernetes defaults it to `SingleStack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpFamilyPolicy {
    /// One IP of the primary family.
    #[default]
    SingleStack,
    /// Both families when a pool offers both, else one.
    PreferDualStack,
    /// One IP of each family, or nothing.
    RequireDualStack,
}

/// `spec.externalTrafficPolicy`; Kubernetes defaults it to `Cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// Traffic may go to any node (the default).
    #[default]
    Cluster,
    /// Traffic only to nodes with a ready endpoint; sharing needs identical selectors.
    Local,
}

/// Transport protocol of a Service port (`spec.ports[].protocol`, default TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// One `spec.ports[]` entry as far as sharing is concerned: two Services on one IP clash when
/// they use the same port number with the same protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    /// `spec.ports[].port`.
    pub port: u16,
    /// `spec.ports[].protocol`.
    pub protocol: Protocol,
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        };
        write!(f, "{}/{proto}", self.port)
    }
}

/// Everything about a Service that allocation depends on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// `namespace/name`.
    pub key: ServiceKey,
    /// `metadata.labels`, for `serviceSelectors`.
    pub labels: Labels,
    /// Labels of the Service's Namespace, for `namespaceSelectors`.
    pub namespace_labels: Labels,
    /// `spec.type`.
    pub service_type: ServiceType,
    /// `spec.ipFamilies` in order (primary first). Empty means "not set": treated as `[IPv4]`,
    /// or as the families of the requested IPs when there are some (the API server would have
    /// filled it in; offline manifests often leave it out).
    pub ip_families: Vec<IpFamily>,
    /// `spec.ipFamilyPolicy`.
    pub ip_family_policy: IpFamilyPolicy,
    /// `metallb.io/loadBalancerIPs` (or its deprecated prefix) or `spec.loadBalancerIP`.
    pub requested_ips: Vec<IpAddr>,
    /// `metallb.io/address-pool`.
    pub address_pool: Option<String>,
    /// `metallb.io/allow-shared-ip`.
    pub sharing_key: Option<String>,
    /// FerroLB's opt-in `ferrolb.io/prefer-shared-ip: "true"`: automatic allocation takes the
    /// lowest IP already shared under [`Self::sharing_key`] that this Service may join before
    /// any free address, so Services with one key end up on one IP. Off by default: MetalLB
    /// takes the lowest usable address, shared or free.
    pub prefer_shared_ip: bool,
    /// `spec.ports`, for the sharing rules.
    pub ports: Vec<ServicePort>,
    /// `spec.externalTrafficPolicy`.
    pub external_traffic_policy: TrafficPolicy,
    /// `spec.selector`; with `externalTrafficPolicy: Local`, sharing Services must select the
    /// same pods.
    pub selector: BTreeMap<String, String>,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<String>,
    /// The IPs in `status.loadBalancer.ingress` now (adopted on restart when still valid).
    pub status_ips: Vec<IpAddr>,
}

impl Service {
    /// The families this Service asks for, primary first, never empty.
    pub(crate) fn families(&self) -> Vec<IpFamily> {
        let mut out: Vec<IpFamily> = Vec::with_capacity(2);
        let source: Vec<IpFamily> = if self.ip_families.is_empty() {
            self.requested_ips.iter().map(IpFamily::of).collect()
        } else {
            self.ip_families.clone()
        };
        for f in source {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        if out.is_empty() {
            out.push(IpFamily::V4);
        }
        out
    }

    /// The family sets acceptable for this Service, best first. `RequireDualStack` needs both
    /// families; `PreferDualStack` takes both when a pool can give both, else one; `SingleStack`
    /// takes the primary family only.
    pub(crate) fn family_choices(&self) -> Vec<Vec<IpFamily>> {
        let fams = self.families();
        let primary = fams.first().copied().unwrap_or(IpFamily::V4);
        let other = match primary {
            IpFamily::V4 => IpFamily::V6,
            IpFamily::V6 => IpFamily::V4,
        };
        match self.ip_family_policy {
            IpFamilyPolicy::SingleStack => vec![vec![primary]],
            IpFamilyPolicy::RequireDualStack => vec![vec![primary, other]],
            IpFamilyPolicy::PreferDualStack if fams.len() > 1 => {
                vec![vec![primary, other], vec![primary], vec![other]]
            }
            IpFamilyPolicy::PreferDualStack => vec![vec![primary]],
        }
    }
}
