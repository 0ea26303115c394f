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

/// Serde for a spec whose object may come without `spec` at all: every field is optional in
/// MetalLB's CRD and `spec` is not in the root's `required`, so the API server stores
/// `{"apiVersion", "kind", "metadata"}` as is, and one such object must not fail the whole list
/// of a watch (that left the speaker on a stale config). kube's derive gives the root struct a
/// plain `spec` field with no `#[serde(default)]` hook, but serde deserializes a missing field
/// through `deserialize_option`, so answering `None` (and `null`) with `Default` makes the
/// field optional without changing the schema. The spec type carries
/// `#[serde(remote = "Self")]`, which turns its derived serde code into inherent functions that
/// these impls call.
macro_rules! spec_default_when_absent {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct OrDefault;
                impl<'de> serde::de::Visitor<'de> for OrDefault {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a spec object, null, or nothing")
                    }
                    fn visit_none<E: serde::de::Error>(self) -> Result<$ty, E> {
                        Ok(<$ty>::default())
                    }
                    fn visit_unit<E: serde::de::Error>(self) -> Result<$ty, E> {
                        Ok(<$ty>::default())
                    }
                    fn visit_some<D2: serde::Deserializer<'de>>(
                        self,
                        d: D2,
                    ) -> Result<$ty, D2::Error> {
                        <$ty>::deserialize(d)
                    }
                }
                d.deserialize_option(OrDefault)
            }
        }
    };
}

/// Declares the spec of a MetalLB kind: the `#[kube(...)]` arguments that differ from kind to
/// kind (version, kind, plural, status, doc, print columns), the spec's own attributes and the
/// struct. What every spec here shares is added once: the same derives, group `metallb.io`,
/// namespaced, `PartialEq` and `Default` on the root type, and the serde of
/// [`spec_default_when_absent`] (`#[serde(remote = "Self")]` with its two impls, which only
/// work together).
macro_rules! metallb_spec {
    (
        $(#[$attr:meta])*
        pub struct $spec:ident $body:tt
    ) => {
        #[derive(
            kube::CustomResource,
            serde::Serialize,
            serde::Deserialize,
            Clone,
            Debug,
            Default,
            PartialEq,
            schemars::JsonSchema,
        )]
        #[kube(
            group = "metallb.io",
            namespaced,
            derive = "PartialEq",
            derive = "Default"
        )]
        $(#[$attr])*
        #[serde(remote = "Self")]
        pub struct $spec $body

        spec_default_when_absent!($spec);
    };
}

/// Declares one of the two per-Service status kinds (`ServiceBGPStatus`, `ServiceL2Status`):
/// status-only objects (v1beta1, empty spec) whose status names the announcing node and the
/// Service, then carries what the protocol adds. The call gives the spec's docs and `#[kube]`
/// arguments (kind, plural, status, doc, the node's print column) and the status struct with
/// its docs and protocol fields; the shared version, Service print columns and fields are
/// added here, in MetalLB's order.
macro_rules! service_status_kind {
    (
        $(#[$spec_attr:meta])*
        pub struct $spec:ident {}

        $(#[$status_attr:meta])*
        pub struct $status:ident { $($fields:tt)* }
    ) => {
        metallb_spec! {
            $(#[$spec_attr])*
            #[kube(
                version = "v1beta1",
                printcolumn(
                    name = "Service Name",
                    type_ = "string",
                    json_path = ".status.serviceName"
                ),
                printcolumn(
                    name = "Service Namespace",
                    type_ = "string",
                    json_path = ".status.serviceNamespace"
                )
            )]
            pub struct $spec {}
        }

        $(#[$status_attr])*
        #[derive(
            Clone,
            Debug,
            Default,
            PartialEq,
            serde::Serialize,
            serde::Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $status {
            /// Node announcing the Service.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub node: Option<String>,
            /// Name of the Service.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub service_name: Option<String>,
            /// Namespace of the Service.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub service_namespace: Option<String>,
            $($fields)*
        }
    };
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec` is optional in every MetalLB CRD's root schema; an object without one must read
    /// as the default spec (it failed the Kubernetes-mode list before) and `spec: null` too.
    #[test]
    fn objects_without_a_spec_deserialize_with_the_default_spec() {
        fn check<K>(kind: &str, api_version: &str)
        where
            K: serde::de::DeserializeOwned + kube::core::object::HasSpec,
            K::Spec: Default + PartialEq + std::fmt::Debug,
        {
            let meta = serde_json::json!({"name": "x", "namespace": "metallb-system"});
            for extra in [None, Some(serde_json::Value::Null)] {
                let mut v =
                    serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": meta});
                if let Some(null) = &extra {
                    v["spec"] = null.clone();
                }
                let k: K = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("{kind} from {v}: {e}"));
                assert_eq!(k.spec(), &K::Spec::default(), "{kind}");
            }
        }
        check::<L2Advertisement>("L2Advertisement", "metallb.io/v1beta1");
        check::<BGPAdvertisement>("BGPAdvertisement", "metallb.io/v1beta1");
        check::<BFDProfile>("BFDProfile", "metallb.io/v1beta1");
        check::<Community>("Community", "metallb.io/v1beta1");
        check::<IPAddressPool>("IPAddressPool", "metallb.io/v1beta1");
        check::<BGPPeer>("BGPPeer", "metallb.io/v1beta2");
        check::<bgp_peer_v1beta1::BGPPeer>("BGPPeer", "metallb.io/v1beta1");
        check::<ServiceL2Status>("ServiceL2Status", "metallb.io/v1beta1");
        check::<ServiceBGPStatus>("ServiceBGPStatus", "metallb.io/v1beta1");
    }

    #[test]
    fn a_present_spec_still_deserializes_and_round_trips() {
        let v = serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
            "metadata": {"name": "x"},
            "spec": {"ipAddressPools": ["p"], "interfaces": ["eth0"]},
        });
        let l2: L2Advertisement = serde_json::from_value(v.clone()).expect("deserializes");
        assert_eq!(l2.spec.ip_address_pools, ["p"]);
        assert_eq!(l2.spec.interfaces, ["eth0"]);
        assert_eq!(
            serde_json::to_value(&l2).expect("serializes")["spec"],
            v["spec"]
        );
        // A wrong type inside the spec is still an error, not a silent default.
        let bad = serde_json::json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
            "metadata": {"name": "x"}, "spec": {"interfaces": 3},
        });
        assert!(serde_json::from_value::<L2Advertisement>(bad).is_err());
    }
}
