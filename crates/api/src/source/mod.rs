//! Where configuration comes from. Both sources yield the same [`Resources`] snapshot, which
//! [`crate::validate::validate`] turns into a [`crate::model::Config`].
//!
//! - [`files`]: files or directories of multi-document YAML (standalone mode, the demo, and
//!   `ferrolb-controller validate`).
//! - [`kube`]: reflectors over the Kubernetes API in the FerroLB namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::crd::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
    ServiceBGPStatus, ServiceL2Status,
};

pub mod files;
pub mod kube;

/// Every object the daemons read, in source order (file order for [`files`], so the
/// controller's first-come-first-served allocation follows the order Services appear in).
/// v1beta1 BGPPeers are already converted to v1beta2.
///
/// Serializable so the file source can cache a file's objects compactly (`files::cache`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// `IPAddressPool`s.
    pub ip_address_pools: Vec<IPAddressPool>,
    /// `BGPPeer`s (v1beta2; v1beta1 objects converted).
    pub bgp_peers: Vec<BGPPeer>,
    /// `BGPAdvertisement`s.
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    /// `L2Advertisement`s.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// `Community` alias sets.
    pub communities: Vec<Community>,
    /// `BFDProfile`s.
    pub bfd_profiles: Vec<BFDProfile>,
    /// `ServiceL2Status` objects (reporting only; not used by validation).
    pub service_l2_statuses: Vec<ServiceL2Status>,
    /// `ServiceBGPStatus` objects (reporting only; not used by validation).
    pub service_bgp_statuses: Vec<ServiceBGPStatus>,
    /// Secrets (BGPPeer `passwordSecret`s).
    pub secrets: Vec<Secret>,
    /// Namespaces (for `serviceAllocation.namespaceSelectors`).
    pub namespaces: Vec<Namespace>,
    /// Nodes (node selectors).
    pub nodes: Vec<Node>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices (discovery.k8s.io/v1).
    pub endpoint_slices: Vec<EndpointSlice>,
    /// ConfigMaps (e.g. a legacy MetalLB `config`).
    pub config_maps: Vec<ConfigMap>,
    /// Documents of other kinds that were skipped, counted per `apiVersion/kind`.
    pub ignored: BTreeMap<String, usize>,
}

impl Resources {
    /// Number of metallb.io configuration objects (pools, peers, advertisements, communities,
    /// BFD profiles): zero means "no FerroLB configuration here".
    pub fn config_object_count(&self) -> usize {
        self.ip_address_pools.len()
            + self.bgp_peers.len()
            + self.bgp_advertisements.len()
            + self.l2_advertisements.len()
            + self.communities.len()
            + self.bfd_profiles.len()
    }

    /// Total number of skipped documents.
    pub fn ignored_count(&self) -> usize {
        self.ignored.values().sum()
    }

    /// Appends every object of `other` after those of `self`, keeping source order.
    pub fn append(&mut self, other: Resources) {
        // Destructured whole so a new field of `Resources` fails to compile here until handled.
        let Resources {
            ip_address_pools,
            bgp_peers,
            bgp_advertisements,
            l2_advertisements,
            communities,
            bfd_profiles,
            service_l2_statuses,
            service_bgp_statuses,
            secrets,
            namespaces,
            nodes,
            services,
            endpoint_slices,
            config_maps,
            ignored,
        } = other;
        self.ip_address_pools.extend(ip_address_pools);
        self.bgp_peers.extend(bgp_peers);
        self.bgp_advertisements.extend(bgp_advertisements);
        self.l2_advertisements.extend(l2_advertisements);
        self.communities.extend(communities);
        self.bfd_profiles.extend(bfd_profiles);
        self.service_l2_statuses.extend(service_l2_statuses);
        self.service_bgp_statuses.extend(service_bgp_statuses);
        self.secrets.extend(secrets);
        self.namespaces.extend(namespaces);
        self.nodes.extend(nodes);
        self.services.extend(services);
        self.endpoint_slices.extend(endpoint_slices);
        self.config_maps.extend(config_maps);
        for (kind, n) in ignored {
            *self.ignored.entry(kind).or_default() += n;
        }
    }
}

/// One decoded object of a source, by kind. v1beta1 BGPPeers arrive converted to v1beta2.
///
/// The unit a [`Collect`] receives: a consumer that needs only a few fields of the numerous
/// kinds (Services, EndpointSlices) reduces each object as it arrives, so a load never holds a
/// whole source's worth of k8s-openapi objects (about 3 KiB each in memory).
// Variants differ in size (a Node is large); an Object lives only from its document's decode
// to its collector, so boxing each would buy nothing but allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `metallb.io/v1beta1` IPAddressPool.
    IpAddressPool(IPAddressPool),
    /// `metallb.io` BGPPeer (v1beta2).
    BgpPeer(BGPPeer),
    /// `metallb.io/v1beta1` BGPAdvertisement.
    BgpAdvertisement(BGPAdvertisement),
    /// `metallb.io/v1beta1` L2Advertisement.
    L2Advertisement(L2Advertisement),
    /// `metallb.io/v1beta1` Community.
    Community(Community),
    /// `metallb.io/v1beta1` BFDProfile.
    BfdProfile(BFDProfile),
    /// `metallb.io/v1beta1` ServiceL2Status.
    ServiceL2Status(ServiceL2Status),
    /// `metallb.io/v1beta1` ServiceBGPStatus.
    ServiceBgpStatus(ServiceBGPStatus),
    /// `v1` Secret.
    Secret(Secret),
    /// `v1` Namespace.
    Namespace(Namespace),
    /// `v1` Node.
    Node(Node),
    /// `v1` Service (a status overlay too: no `spec`, see `files`).
    Service(Box<Service>),
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice(Box<EndpointSlice>),
    /// `v1` ConfigMap.
    ConfigMap(ConfigMap),
    /// A document of a kind no daemon reads, by `apiVersion/kind`.
    Ignored(String),
}

/// Receives a source's objects one at a time, in source order.
pub trait Collect {
    /// Takes the next object.
    fn collect(&mut self, object: Object);
}

impl Collect for Resources {
    fn collect(&mut self, object: Object) {
        match object {
            Object::IpAddressPool(o) => self.ip_address_pools.push(o),
            Object::BgpPeer(o) => self.bgp_peers.push(o),
            Object::BgpAdvertisement(o) => self.bgp_advertisements.push(o),
            Object::L2Advertisement(o) => self.l2_advertisements.push(o),
            Object::Community(o) => self.communities.push(o),
            Object::BfdProfile(o) => self.bfd_profiles.push(o),
            Object::ServiceL2Status(o) => self.service_l2_statuses.push(o),
            Object::ServiceBgpStatus(o) => self.service_bgp_statuses.push(o),
            Object::Secret(o) => self.secrets.push(o),
            Object::Namespace(o) => self.namespaces.push(o),
            Object::Node(o) => self.nodes.push(o),
            Object::Service(o) => self.services.push(*o),
            Object::EndpointSlice(o) => self.endpoint_slices.push(*o),
            Object::ConfigMap(o) => self.config_maps.push(o),
            Object::Ignored(kind) => *self.ignored.entry(kind).or_default() += 1,
        }
    }
}
