//! The one pure function from all configuration objects (plus Secrets, Namespaces and Nodes
//! for references) to a validated [`Config`], or to every error found.
//!
//! All-or-nothing: any error rejects the whole configuration; callers keep their last good
//! `Config` ([`crate::ConfigState`]). Validation does not stop at the first error, so an operator
//! sees everything wrong at once. The rules and their MetalLB origin are listed in
//! `docs/configuration-validation.md`.
//!
//! Dangling references follow MetalLB: an advertisement naming a pool or peer that does not
//! exist simply selects nothing for that name (pools and peers come and go independently);
//! a BGPPeer naming a missing BFDProfile or Secret, or an advertisement naming a missing
//! Community alias, is an error.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::api::ObjectMeta;

use crate::error::{ConfigError, Reason};
use crate::model::Config;
use crate::selector::{self, LabelSelector, Labels};
use crate::source::Resources;

pub use ignored::{ignored_fields, IgnoredField, IgnoredFieldsReport};

mod advertisements;
pub mod ignored;
mod peers;
mod pools;
pub(crate) mod selectors;
#[cfg(test)]
mod tests;

/// The object an error is about.
#[derive(Debug, Clone)]
pub(crate) struct ObjRef {
    kind: &'static str,
    namespace: String,
    name: String,
}

impl ObjRef {
    pub(crate) fn new(kind: &'static str, meta: &ObjectMeta) -> Self {
        Self {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    pub(crate) fn err(
        &self,
        path: impl Into<String>,
        value: impl ToString,
        reason: Reason,
    ) -> ConfigError {
        ConfigError {
            kind: self.kind.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            path: path.into(),
            value: value.to_string(),
            reason,
        }
    }

    /// `Kind namespace/name`, for naming another object inside a reason.
    pub(crate) fn display(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Validates everything in `res`. See the module doc.
pub fn validate(res: &Resources) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let nodes = NodeIndex::new(&res.nodes);
    let pools = pools::validate_pools(res, &mut errors);
    let bfd_profiles = peers::validate_bfd_profiles(res, &mut errors);
    let bgp_peers = peers::validate_peers(res, &bfd_profiles, &nodes, &mut errors);
    let communities = advertisements::validate_communities(res, &mut errors);
    let bgp_advertisements =
        advertisements::validate_bgp_advertisements(res, &pools, &communities, &nodes, &mut errors);
    let l2_advertisements = advertisements::validate_l2_advertisements(res, &pools, &mut errors);
    advertisements::check_bfd_echo_ipv6(
        res,
        &pools,
        &bgp_peers,
        &bfd_profiles,
        &bgp_advertisements,
        &mut errors,
    );
    if errors.is_empty() {
        Ok(Config {
            pools,
            bgp_peers,
            bgp_advertisements,
            l2_advertisements,
            bfd_profiles,
        })
    } else {
        Err(errors)
    }
}

/// Checks that `meta` has a name not seen before among `seen`; returns it when usable.
pub(crate) fn check_name(
    obj: &ObjRef,
    meta: &ObjectMeta,
    seen: &mut BTreeMap<String, ()>,
    kind: &'static str,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        errors.push(obj.err("metadata.name", "", Reason::MissingName));
        return None;
    }
    if seen.insert(name.clone(), ()).is_some() {
        errors.push(obj.err("metadata.name", &name, Reason::DuplicateName { kind }));
        return None;
    }
    Some(name)
}

/// Rejects repeated entries of a string list at `path`.
pub(crate) fn check_unique(
    obj: &ObjRef,
    path: &str,
    list: &[String],
    errors: &mut Vec<ConfigError>,
) {
    for (i, v) in list.iter().enumerate() {
        if let Some(first) = list.iter().take(i).position(|w| w == v) {
            errors.push(obj.err(format!("{path}[{i}]"), v, Reason::DuplicateEntry { first }));
        }
    }
}

/// Known Nodes with their labels, to evaluate node selectors.
pub(crate) struct NodeIndex {
    nodes: Vec<(String, Labels)>,
}

impl NodeIndex {
    fn new(nodes: &[Node]) -> Self {
        let nodes = nodes
            .iter()
            .map(|n| {
                let name = n.metadata.name.clone().unwrap_or_default();
                let labels: Labels = n.metadata.labels.clone().unwrap_or_default();
                (name, labels)
            })
            .collect();
        Self { nodes }
    }

    /// True when no Node objects were given (offline validation of CRs alone).
    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Names of the nodes matching any of `selectors` (all nodes when empty).
    pub(crate) fn selected(&self, selectors: &[LabelSelector]) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|(_, labels)| selector::any_matches(selectors, labels))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}
