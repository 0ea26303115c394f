//! The file source's model: what the speaker keeps of a load, the configuration objects whole,
//! Services and EndpointSlices reduced to the fields the announcement computation reads. A load
//! is diffed into the one kept Cluster by [`kept`], which also takes the Kubernetes watches'
//! observations ([`kept::WatchChanges`]); Kubernetes mode builds no [`Inputs`].
//!
//! ```text
//!  YAML document ─▶ k8s-openapi object ─▶ InputPart (per file, cached as Arc) ─┐
//!  (one at a time)                          config CRs, Secrets, Nodes: whole   ├─▶ Inputs
//!                                           Services: ServiceFields             │   (parts in
//!                                           EndpointSlices: converted           │   file order)
//!  a whole Resources (the demo, tests) ─────────────────────── one InputPart ───┘
//! ```
//!
//! Why: a k8s-openapi Service or EndpointSlice takes about 1.5 KiB in memory before its
//! strings; holding 10k of each for one load peaked at ~64 MB and glibc kept most of it
//! (docs/speaker.md, "10k VIPs"). Reduced as each document is decoded, a load holds one k8s
//! object at a time, and the file cache keeps the reduced objects themselves (shared with the
//! snapshot by `Arc`, nothing to decode on reuse).
//!
//! *Guarantees*: the [`Cluster`] built from [`Inputs`] equals the one built from the whole
//! [`Resources`] of the same files (status overlays merged the same way; tested in
//! `tests/daemon_inputs.rs`), and the configuration is the same [`Resources`] minus Services
//! and EndpointSlices, which validation does not read.

pub mod kept;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrolb_api::source::files::{FileModel, Loaded};
use ferrolb_api::source::{Collect, Object, Resources};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;

use crate::announce::from_k8s::{
    endpoint_slice_from_k8s, node_from_k8s, service_from_fields, FromK8sError, ServiceFields,
};
use crate::announce::input::{Cluster, EndpointSlice, Node, Service, SmolStr};

/// One file's objects (or the API's), as the speaker keeps them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InputPart {
    /// Everything but Services and EndpointSlices: the metallb.io objects, Secrets,
    /// Namespaces, Nodes, ConfigMaps and the counts of ignored kinds.
    pub config: Resources,
    /// Services and status overlays, in source order.
    pub services: Vec<ServiceFields>,
    /// EndpointSlices, converted (or why not), in source order.
    pub slices: Vec<Result<EndpointSlice, FromK8sError>>,
}

impl Collect for InputPart {
    fn collect(&mut self, object: Object) {
        match object {
            Object::Service(svc) => self.services.push(ServiceFields::of(&svc)),
            Object::EndpointSlice(slice) => self.slices.push(endpoint_slice_from_k8s(&slice)),
            other => self.config.collect(other),
        }
    }
}

impl InputPart {
    /// A part from whole objects (a [`Resources`]' objects).
    pub fn from_cluster<'a>(
        config: Resources,
        services: impl IntoIterator<Item = &'a core::Service>,
        slices: impl IntoIterator<Item = &'a discovery::EndpointSlice>,
        nodes: impl IntoIterator<Item = &'a core::Node>,
    ) -> Self {
        Self::from_reduced(
            config,
            services.into_iter().map(ServiceFields::of).collect(),
            slices.into_iter().map(endpoint_slice_from_k8s).collect(),
            nodes,
        )
    }

    /// A part from Services and EndpointSlices already reduced.
    pub fn from_reduced<'a>(
        config: Resources,
        services: Vec<ServiceFields>,
        slices: Vec<Result<EndpointSlice, FromK8sError>>,
        nodes: impl IntoIterator<Item = &'a core::Node>,
    ) -> Self {
        let mut config = config;
        config.services.clear();
        config.endpoint_slices.clear();
        config.nodes = nodes.into_iter().cloned().collect();
        Self {
            config,
            services,
            slices,
        }
    }
}

/// What the speaker reads of one source snapshot: the parts of every file, in file order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Inputs {
    parts: Vec<Arc<InputPart>>,
    /// Every part's configuration objects, appended in order (a few dozen objects and the
    /// Nodes; cloned once per load so validation gets one [`Resources`]).
    config: Resources,
}

impl Inputs {
    /// Inputs of one part.
    pub fn from_part(part: InputPart) -> Self {
        Self::merge(vec![Arc::new(part)])
    }

    /// Reduces a whole [`Resources`] (the demo, tests, anything holding one already).
    pub fn from_resources(mut res: Resources) -> Self {
        let services = std::mem::take(&mut res.services);
        let slices = std::mem::take(&mut res.endpoint_slices);
        let nodes = std::mem::take(&mut res.nodes);
        Self::from_part(InputPart::from_cluster(res, &services, &slices, &nodes))
    }

    /// The configuration objects (Services and EndpointSlices left out), for validation.
    pub fn config(&self) -> &Resources {
        &self.config
    }

    /// Number of Services (status overlays not counted).
    pub fn service_count(&self) -> usize {
        self.services().filter(|s| !s.is_status_overlay()).count()
    }

    fn services(&self) -> impl Iterator<Item = &ServiceFields> {
        self.parts.iter().flat_map(|p| p.services.iter())
    }

    /// The Services as the computation reads them, status overlays merged exactly as
    /// `ferrolb_api::source::files` merges them into Services, in source order (of two with one
    /// key the later wins). Services that do not convert are left out and described in
    /// `warnings`. Converted one at a time: nothing holds all of them but the caller.
    pub fn services_converted<'a>(
        &'a self,
        warnings: &'a mut Vec<String>,
    ) -> impl Iterator<Item = Service> + 'a {
        // Overlays in order, so of two for one Service the later wins; an overlay without a
        // status changes nothing the speaker reads (annotations only).
        let mut overlays: BTreeMap<(&str, &str), &[Option<SmolStr>]> = BTreeMap::new();
        for svc in self.services().filter(|s| s.is_status_overlay()) {
            if let Some(ingress) = &svc.ingress {
                overlays.insert(svc.overlay_key(), ingress);
            }
        }
        // Of two Services with one key the overlay goes to the last, as in the file source.
        let mut last_of_key: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (i, svc) in self
            .services()
            .filter(|s| !s.is_status_overlay())
            .enumerate()
        {
            last_of_key.insert(svc.overlay_key(), i);
        }
        self.services()
            .filter(|s| !s.is_status_overlay())
            .enumerate()
            .filter_map(move |(i, svc)| {
                let key = svc.overlay_key();
                let status = (last_of_key.get(&key) == Some(&i))
                    .then(|| overlays.get(&key).copied())
                    .flatten();
                service_from_fields(svc, status)
                    .map_err(|e| warnings.push(e.to_string()))
                    .ok()
            })
    }

    /// The EndpointSlices in source order; the ones that do not convert are left out and
    /// described in `warnings`.
    pub fn slices_converted<'a>(
        &'a self,
        warnings: &'a mut Vec<String>,
    ) -> impl Iterator<Item = EndpointSlice> + 'a {
        self.parts
            .iter()
            .flat_map(|p| p.slices.iter())
            .filter_map(move |r| match r {
                Ok(slice) => Some(slice.clone()),
                Err(e) => {
                    warnings.push(e.to_string());
                    None
                }
            })
    }

    /// The cluster objects as the computation reads them (see [`Self::services_converted`]).
    /// Objects that do not convert are left out and described in the returned warnings. When
    /// `node_name` has no Node object, one with no labels is synthesized (standalone hosts
    /// rarely write their own Node); the flag says so.
    pub fn cluster(&self, node_name: &str) -> (Cluster, Vec<String>, bool) {
        let mut warnings = Vec::new();
        let services: Vec<Service> = self.services_converted(&mut warnings).collect();
        let slices: Vec<EndpointSlice> = self.slices_converted(&mut warnings).collect();
        let nodes = nodes_converted(&self.config.nodes, &mut warnings);
        let mut cluster = Cluster::from_objects(services, slices, nodes);
        let synthesized = !cluster.nodes.contains_key(node_name);
        if synthesized {
            cluster.upsert_node(Node::new(node_name, Default::default()));
        }
        (cluster, warnings, synthesized)
    }
}

/// `nodes` converted; the ones that do not convert are left out and described in `warnings`.
pub fn nodes_converted(nodes: &[core::Node], warnings: &mut Vec<String>) -> Vec<Node> {
    nodes
        .iter()
        .filter_map(|node| {
            node_from_k8s(node)
                .map_err(|e| warnings.push(e.to_string()))
                .ok()
        })
        .collect()
}

impl FileModel for Inputs {
    type Collected = InputPart;
    type Kept = Arc<InputPart>;
    type Part = Arc<InputPart>;

    fn keep(mut collected: InputPart) -> (Arc<InputPart>, Arc<InputPart>) {
        // Kept until the file changes: drop the growth slack (up to half of each vector,
        // ~1.8 MiB at 10k Services).
        collected.services.shrink_to_fit();
        collected.slices.shrink_to_fit();
        let part = Arc::new(collected);
        (Arc::clone(&part), part)
    }

    fn reuse(kept: &Arc<InputPart>) -> Option<Arc<InputPart>> {
        Some(Arc::clone(kept))
    }

    fn merge(parts: Vec<Arc<InputPart>>) -> Self {
        let mut config = Resources::default();
        for part in &parts {
            config.append(part.config.clone());
        }
        Self { parts, config }
    }
}

/// A file load of the speaker's model.
pub type LoadedInputs = Loaded<Inputs>;
