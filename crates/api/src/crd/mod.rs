//! MetalLB-compatible custom resource types (group `metallb.io`), one file per kind.
//!
//! Field names, types and defaults follow MetalLB's CRDs exactly, so a manifest valid for
//! MetalLB deserializes here and the reverse. Optional fields are `Option` (or an empty `Vec`
//! skipped on output) so that a serde round trip reproduces the input and defaults are applied
//! by validation, not silently by the deserializer. Defaults that MetalLB's schema declares
//! (`autoAssign: true`, `aggregationLength: 32`, ...) are declared in our schema too, so the API
//! server fills them in the same way.
//!
//! [`manifests`] builds the CRD objects (`ferrolb-controller crds`, `deploy/crds/`).

// Repeated `printcolumn(name = .., type_ = ..)` arguments are the kube derive's syntax, not
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod bfd_profile;
pub mod bgp_advertisement;
pub mod bgp_peer;
pub mod bgp_peer_v1beta1;
pub mod community;
pub mod configuration_state;
pub mod ip_address_pool;
pub mod l2_advertisement;
pub mod manifests;
pub mod service_bgp_status;
pub mod service_l2_status;

pub use bfd_profile::{BFDProfile, BFDProfileSpec};
pub use bgp_advertisement::{BGPAdvertisement, BGPAdvertisementSpec};
pub use bgp_peer::{BGPPeer, BGPPeerSpec, DynamicASNMode};
pub use community::{Community, CommunityAlias, CommunitySpec};
pub use configuration_state::{ConfigurationState, ConfigurationStateStatus};
pub use ip_address_pool::{
    IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation,
};
pub use l2_advertisement::{L2Advertisement, L2AdvertisementSpec, PreferredNodeSelector};
pub use service_bgp_status::{ServiceBGPStatus, ServiceBGPStatusSpec, ServiceBGPStatusStatus};
pub use service_l2_status::{
    InterfaceInfo, ServiceL2Status, ServiceL2StatusSpec, ServiceL2StatusStatus,
};

/// The API group of every FerroLB/MetalLB custom resource.
pub const GROUP: &str = "metallb.io";

/// Empty status object: MetalLB declares `status: {type: object}` with no properties on the
/// config kinds, so there is nothing to report but the subresource exists.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema,
)]
pub struct EmptyStatus {}
