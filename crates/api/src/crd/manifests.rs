//! The CustomResourceDefinition manifests of every kind, as committed under `deploy/crds/`
//! (one file per CRD, named like MetalLB's: `metallb.io_<plural>.yaml`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::crd::merge_crds;
use kube::CustomResourceExt;

use super::{
    bgp_peer_v1beta1, BFDProfile, BGPAdvertisement, BGPPeer, Community, ConfigurationState,
    IPAddressPool, L2Advertisement, ServiceBGPStatus, ServiceL2Status,
};

/// Every CRD, sorted by name. BGPPeer carries both versions, v1beta2 stored.
pub fn all() -> Vec<CustomResourceDefinition> {
    let mut peer = merge_crds(
        vec![bgp_peer_v1beta1::BGPPeer::crd(), BGPPeer::crd()],
        "v1beta2",
    )
    // Both inputs are generated from our own types with the same group and kind, which is
    // all merge_crds checks; a failure is a programming error caught by the tests.
    .unwrap_or_else(|_| BGPPeer::crd());
    // v1beta1 stays served so that existing v1beta1 objects can be read.
    for v in &mut peer.spec.versions {
        v.served = true;
    }
    // Same order as MetalLB's manifest, so diffs against it stay readable.
    peer.spec.versions.sort_by(|a, b| a.name.cmp(&b.name));
    let mut crds = vec![
        BFDProfile::crd(),
        BGPAdvertisement::crd(),
        peer,
        Community::crd(),
        ConfigurationState::crd(),
        IPAddressPool::crd(),
        L2Advertisement::crd(),
        ServiceBGPStatus::crd(),
        ServiceL2Status::crd(),
    ];
    for crd in &mut crds {
        if crd.spec.names.kind != "IPAddressPool" {
            spec_not_required(crd);
        }
    }
    crds.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    crds
}

/// The derive marks `spec` required at the root; MetalLB requires it only for IPAddressPool
/// (`kind: BGPAdvertisement` with no spec at all is a valid "advertise every pool").
fn spec_not_required(crd: &mut CustomResourceDefinition) {
    for v in &mut crd.spec.versions {
        let root = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut());
        if let Some(root) = root {
            if let Some(req) = root.required.as_mut() {
                req.retain(|r| r != "spec");
            }
            if root.required.as_ref().is_some_and(Vec::is_empty) {
                root.required = None;
            }
        }
    }
}

/// `metallb.io_<plural>.yaml`, the file name of a CRD under `deploy/crds/`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document (starting with `---`).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml_ng::Error> {
    Ok(format!("---\n{}", serde_yaml_ng::to_string(crd)?))
}

/// Every CRD as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_yaml_ng::Error> {
    all().iter().map(to_yaml).collect()
}
