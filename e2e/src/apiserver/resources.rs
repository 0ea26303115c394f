//! The built-in table of resources the double serves: plural ⇄ kind ⇄ scope.
//!
//! A real API server learns these from its compiled-in types and from
//! CustomResourceDefinitions; the double knows only the resources FerroLB
//! uses. MetalLB's scopes and subresources come from the CRDs in
//! `/work/shared/metallb/crd` (all Namespaced, all with `subresources.status`).

/// One served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// API group; `""` is the core group (served under `/api/v1`).
    pub group: &'static str,
    /// Every version the resource is served in. Objects are stored once
    /// and served in whichever version was asked for (no conversion; the
    /// MetalLB CRDs use `conversion: None` too).
    pub versions: &'static [&'static str],
    /// Lower-case plural used in URLs.
    pub plural: &'static str,
    /// The `kind` of one object; the list kind is `{kind}List`.
    pub kind: &'static str,
    /// Namespaced (true) or cluster-scoped (false).
    pub namespaced: bool,
    /// Whether `/status` is a subresource: writes to the main resource then
    /// ignore `.status` and writes to `/status` change only `.status`.
    pub status_subresource: bool,
}

impl Resource {
    /// The `apiVersion` string for `version`: `v1` or `group/version`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }
}

const V1: &[&str] = &["v1"];
const V1BETA1: &[&str] = &["v1beta1"];

/// Every resource the double serves.
pub static RESOURCES: &[Resource] = &[
    core("services", "Service", true, true),
    core("endpoints", "Endpoints", true, false),
    core("nodes", "Node", false, true),
    core("namespaces", "Namespace", false, true),
    core("secrets", "Secret", true, false),
    core("configmaps", "ConfigMap", true, false),
    core("events", "Event", true, false),
    core("pods", "Pod", true, true),
    Resource {
        group: "discovery.k8s.io",
        versions: V1,
        plural: "endpointslices",
        kind: "EndpointSlice",
        namespaced: true,
        status_subresource: false,
    },
    Resource {
        group: "coordination.k8s.io",
        versions: V1,
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        status_subresource: false,
    },
    Resource {
        group: "events.k8s.io",
        versions: V1,
        plural: "events",
        kind: "Event",
        namespaced: true,
        status_subresource: false,
    },
    // The controller's webhook cert rotation sets `caBundle` here.
    Resource {
        group: "admissionregistration.k8s.io",
        versions: V1,
        plural: "validatingwebhookconfigurations",
        kind: "ValidatingWebhookConfiguration",
        namespaced: false,
        status_subresource: false,
    },
    metallb(V1BETA1, "ipaddresspools", "IPAddressPool"),
    metallb(V1BETA1, "l2advertisements", "L2Advertisement"),
    metallb(V1BETA1, "bgpadvertisements", "BGPAdvertisement"),
    metallb(V1BETA1, "bfdprofiles", "BFDProfile"),
    metallb(V1BETA1, "communities", "Community"),
    metallb(V1BETA1, "servicel2statuses", "ServiceL2Status"),
    metallb(V1BETA1, "servicebgpstatuses", "ServiceBGPStatus"),
    metallb(V1BETA1, "configurationstates", "ConfigurationState"),
    metallb(&["v1beta1", "v1beta2"], "bgppeers", "BGPPeer"),
];

const fn core(
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_subresource: bool,
) -> Resource {
    Resource {
        group: "",
        versions: V1,
        plural,
        kind,
        namespaced,
        status_subresource,
    }
}

const fn metallb(
    versions: &'static [&'static str],
    plural: &'static str,
    kind: &'static str,
) -> Resource {
    Resource {
        group: "metallb.io",
        versions,
        plural,
        kind,
        namespaced: true,
        status_subresource: true,
    }
}

/// Splits an `apiVersion` into (group, version): `v1` → ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// The resource served at `group`/`version` under `plural`.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural && r.versions.contains(&version))
}

/// The resource of `kind` in `apiVersion`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind && r.versions.contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_group_versions_resolve() {
        let svc = by_kind("v1", "Service").expect("Service");
        assert_eq!(svc.plural, "services");
        assert!(svc.namespaced && svc.status_subresource);
        let peer = by_plural("metallb.io", "v1beta2", "bgppeers").expect("BGPPeer v1beta2");
        assert_eq!(peer.api_version("v1beta2"), "metallb.io/v1beta2");
        assert!(by_kind("metallb.io/v1beta2", "IPAddressPool").is_none());
        assert_eq!(
            by_plural("events.k8s.io", "v1", "events").map(|r| r.group),
            Some("events.k8s.io")
        );
        assert!(!by_kind("v1", "Node").expect("Node").namespaced);
    }
}
