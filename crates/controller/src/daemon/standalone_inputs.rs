//! The standalone controller's file model: what it keeps of each file of `--config-dir`
//! between loads, and how one load's allocator input is built from the files.
//!
//! ```text
//!  YAML document ─▶ k8s-openapi object ─▶ FilePart (per file, kept as Arc) ─┐
//!                   config objects: whole                                   ├─▶ AllocatorInputs
//!                   Services: trimmed to name, namespace, labels,           │   (parts in file
//!                   annotations, spec and status                            │    order, config)
//!  unchanged file ─────────────────────────── the same Arc again ───────────┘
//! ```
//!
//! Why: the generic model ([`Resources`]) keeps each file as JSON and decodes every object of
//! every file again on each load, so each load of 10k Services held ~30 MiB of k8s objects for
//! a moment, on whichever blocking-pool thread (and glibc arena) ran it. Under churn the
//! controller's RSS climbed from 95 MB to 380 MB that way (docs/soak.md). Here an unchanged
//! file costs nothing to reuse, and a load converts one Service at a time.
//!
//! *Guarantees*: [`AllocatorInputs::services`] are exactly the allocator Services that the
//! whole [`Resources`] of the same files would give (status overlays merged the same way: the
//! test `the_same_services_as_a_whole_load` checks it), and [`AllocatorInputs::config`] is that
//! [`Resources`] without its Services and EndpointSlices, which validation does not read.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrolb_allocator::from_k8s::{key_of, service_from_k8s};
use ferrolb_api::selector::Labels;
use ferrolb_api::source::files::{is_status_overlay, FileModel, UNMATCHED_OVERLAY};
use ferrolb_api::source::{Collect, Object, Resources};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// One file's objects, as the standalone controller keeps them.
#[derive(Debug, Default)]
pub struct FilePart {
    /// Everything but Services and EndpointSlices (the allocator reads neither slices nor
    /// anything else of a Service than [`trim`] keeps).
    pub config: Resources,
    /// Services and status overlays, trimmed, in file order.
    pub services: Vec<Service>,
}

impl Collect for FilePart {
    fn collect(&mut self, object: Object) {
        match object {
            Object::Service(svc) => self.services.push(trim(*svc)),
            Object::EndpointSlice(_) => {}
            other => self.config.collect(other),
        }
    }
}

/// `svc` with only what the allocator and the overlay merge read: name, namespace, labels,
/// annotations, spec and status (no managed fields, owner references, UIDs, ...).
fn trim(svc: Service) -> Service {
    let meta = svc.metadata;
    Service {
        metadata: ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            labels: meta.labels,
            annotations: meta.annotations,
            ..ObjectMeta::default()
        },
        spec: svc.spec,
        status: svc.status,
    }
}

/// One load: every file's part, and the configuration objects of all files together.
#[derive(Debug, Default)]
pub struct AllocatorInputs {
    parts: Vec<Arc<FilePart>>,
    /// The configuration objects of every file (no Services, no EndpointSlices), with status
    /// overlays that match no Service counted in `ignored` as a whole load counts them.
    pub config: Resources,
}

impl FileModel for AllocatorInputs {
    type Collected = FilePart;
    type Kept = Arc<FilePart>;
    type Part = Arc<FilePart>;

    fn keep(mut collected: FilePart) -> (Arc<FilePart>, Arc<FilePart>) {
        // Kept until the file changes: drop the growth slack.
        collected.services.shrink_to_fit();
        let part = Arc::new(collected);
        (Arc::clone(&part), part)
    }

    fn reuse(kept: &Arc<FilePart>) -> Option<Arc<FilePart>> {
        Some(Arc::clone(kept))
    }

    fn merge(parts: Vec<Arc<FilePart>>) -> Self {
        let mut config = Resources::default();
        for part in &parts {
            config.append(part.config.clone());
        }
        let mut inputs = Self { parts, config };
        let unmatched = inputs.overlays().1;
        if unmatched > 0 {
            *inputs
                .config
                .ignored
                .entry(UNMATCHED_OVERLAY.into())
                .or_default() += unmatched;
        }
        inputs
    }
}

/// A Service's identity in the overlay merge: namespace (`default` when unset) and name, as
/// [`ferrolb_api::source::files::merge_status_overlays`] keys them.
type OverlayKey<'a> = (&'a str, &'a str);

fn overlay_key(svc: &Service) -> OverlayKey<'_> {
    (
        svc.metadata.namespace.as_deref().unwrap_or("default"),
        svc.metadata.name.as_deref().unwrap_or_default(),
    )
}

impl AllocatorInputs {
    fn all_services(&self) -> impl Iterator<Item = &Service> {
        self.parts.iter().flat_map(|p| p.services.iter())
    }

    /// The overlays of each Service, by the index (among all Services, overlays included) of
    /// the Service they merge into, and the number of overlays that match none. As in a whole
    /// load, an overlay goes to the last Service of its namespace/name.
    fn overlays(&self) -> (BTreeMap<usize, Vec<&Service>>, usize) {
        let mut last: BTreeMap<OverlayKey<'_>, usize> = BTreeMap::new();
        for (i, svc) in self.all_services().enumerate() {
            if !is_status_overlay(svc) {
                last.insert(overlay_key(svc), i);
            }
        }
        let mut by_target: BTreeMap<usize, Vec<&Service>> = BTreeMap::new();
        let mut unmatched = 0;
        for overlay in self.all_services().filter(|s| is_status_overlay(s)) {
            match last.get(&overlay_key(overlay)) {
                Some(&i) => by_target.entry(i).or_default().push(overlay),
                None => unmatched += 1,
            }
        }
        (by_target, unmatched)
    }

    /// The allocator's Services, in file order, status overlays merged; a Service that does
    /// not convert is logged and left out (so it releases what it held).
    pub fn services(&self) -> Vec<ferrolb_allocator::Service> {
        let ns_labels: BTreeMap<&str, Labels> = self
            .config
            .namespaces
            .iter()
            .filter_map(|ns| {
                Some((
                    ns.metadata.name.as_deref()?,
                    ns.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect();
        let none = Labels::new();
        let (overlays, _) = self.overlays();
        let mut out = Vec::new();
        for (i, svc) in self.all_services().enumerate() {
            if is_status_overlay(svc) {
                continue;
            }
            // Only a Service with overlays is copied, one at a time, to merge them in.
            let merged = overlays.get(&i).map(|list| with_overlays(svc, list));
            let svc = merged.as_ref().unwrap_or(svc);
            let Some(key) = key_of(svc) else { continue };
            let labels = ns_labels.get(key.namespace.as_str()).unwrap_or(&none);
            match service_from_k8s(svc, labels) {
                Ok(converted) => out.push(converted),
                Err(error) => tracing::warn!(service = %key, %error, "cannot read the Service"),
            }
        }
        out
    }
}

/// `svc` with `overlays` merged in order: an overlay's status replaces the Service's, its
/// annotations are added (the rule of `merge_status_overlays`).
fn with_overlays(svc: &Service, overlays: &[&Service]) -> Service {
    let mut merged = svc.clone();
    for overlay in overlays {
        if overlay.status.is_some() {
            merged.status.clone_from(&overlay.status);
        }
        if let Some(annotations) = &overlay.metadata.annotations {
            merged
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::source::files::{load_str, FileCache};
    use std::path::Path;

    const CONFIG: &str =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {tier: web}}\n---\n";

    const SERVICES: &str = "\
apiVersion: v1
kind: Service
metadata: {name: a, namespace: team, labels: {app: a}, uid: '1', resourceVersion: '7'}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {type: LoadBalancer, ports: [{port: 81}]}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: team}
spec: {type: LoadBalancer, ports: [{port: 82}]}
---
apiVersion: v1
kind: Service
metadata: {name: bad, namespace: team}
spec: {type: LoadBalancer, loadBalancerIP: not-an-ip}
---
";

    const OVERLAYS: &str = "\
apiVersion: v1
kind: Service
metadata: {name: a, namespace: team, annotations: {metallb.io/ip-allocated-from-pool: p}}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
status: {loadBalancer: {ingress: [{ip: 10.0.0.2}]}}
---
apiVersion: v1
kind: Service
metadata: {name: gone, namespace: team}
status: {loadBalancer: {ingress: [{ip: 10.0.0.3}]}}
";

    /// What the controller allocated from before this model: a whole load's Services.
    fn whole(res: &Resources) -> Vec<ferrolb_allocator::Service> {
        let ns: BTreeMap<String, Labels> = res
            .namespaces
            .iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    n.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect();
        res.services
            .iter()
            .filter_map(|s| {
                let key = key_of(s)?;
                service_from_k8s(s, ns.get(key.namespace.as_str()).unwrap_or(&Labels::new())).ok()
            })
            .collect()
    }

    #[test]
    fn the_same_services_as_a_whole_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("0-config.yaml"), CONFIG).expect("write");
        std::fs::write(dir.path().join("1-services.yaml"), SERVICES).expect("write");
        std::fs::write(dir.path().join("2-overlays.yaml"), OVERLAYS).expect("write");
        let all = format!("{CONFIG}{SERVICES}---\n{OVERLAYS}");
        let res = load_str(&all, Path::new("all.yaml")).expect("whole load");
        let want = whole(&res);
        assert_eq!(want.len(), 3, "a (twice) and b convert, bad does not");

        let mut cache = FileCache::<AllocatorInputs>::default();
        let fingerprint =
            ferrolb_api::source::files::fingerprint(&[dir.path()]).expect("fingerprint");
        let inputs = cache.load(&fingerprint).expect("load");
        assert_eq!(inputs.services(), want);
        // The overlay of a Service that is not there is counted as a whole load counts it.
        assert_eq!(inputs.config.ignored, res.ignored);
        assert_eq!(inputs.config.namespaces, res.namespaces);
        // A second load reuses every file, with the same result.
        let again = cache.load(&fingerprint).expect("reload");
        assert_eq!(again.services(), want);
    }

    #[test]
    fn trimming_keeps_what_the_allocator_reads_and_drops_the_rest() {
        let res = load_str(SERVICES, Path::new("s.yaml")).expect("load");
        let first = res.services[0].clone();
        let trimmed = trim(first.clone());
        assert_eq!(trimmed.metadata.uid, None);
        assert_eq!(trimmed.metadata.resource_version, None);
        assert_eq!(trimmed.metadata.labels, first.metadata.labels);
        assert_eq!(trimmed.spec, first.spec);
        let ns = Labels::new();
        assert_eq!(
            service_from_k8s(&trimmed, &ns).expect("converts"),
            service_from_k8s(&first, &ns).expect("converts")
        );
    }
}
