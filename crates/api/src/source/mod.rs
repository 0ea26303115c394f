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
    /// Nodes (node selectors; pools must not contain node addresses).
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
}
