//! The one pure step both sources feed: what they observed, applied to the one kept
//! [`Cluster`], and what that changed as a [`ChangeSet`].
//!
//! ```text
//!  file load (Inputs, every object) ── KeptCluster::load ─────┐ diff against what is kept,
//!  watch events (WatchChanges) ─────── KeptCluster::apply ────┤ one object at a time
//!  Nodes (with the configuration) ──── KeptCluster::set_nodes ┘
//!                                               │
//!                          kept Cluster ◀───────┴──▶ ChangeSet: the Services touched
//!                                                    (a Node: everything)
//! ```
//!
//! *Guarantees*: the kept cluster after [`KeptCluster::load`] equals
//! [`Inputs::cluster`](super::Inputs::cluster) of the same inputs, and after a watch
//! [`Objects::relist`] the objects of that kind are exactly the listed ones, whatever was kept
//! before. A Service is named in the ChangeSet when its object, or an EndpointSlice naming it
//! (before or after the change), was added, changed or removed; an object seen again unchanged
//! names nothing. No step holds a second copy of every kept object: a load converts one object
//! at a time, and only the keys of what it saw are collected to find what it no longer holds.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1 as core;

use super::{nodes_converted, Inputs};
use crate::announce::change::ChangeSet;
use crate::announce::input::{Cluster, EndpointSlice, Node, Service, ServiceKey, SliceKey};

/// What one watch of a kind observed since the last update, in order: a complete (re-)list
/// first when one ended, then the single events after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Objects<K, V> {
    /// A completed (re-)list: replaces every kept object of the kind.
    pub relist: Option<Vec<(K, V)>>,
    /// Objects applied (`Some`) or deleted (`None`; also an applied object that does not
    /// convert, which the speaker cannot use).
    pub events: Vec<(K, Option<V>)>,
}

impl<K, V> Default for Objects<K, V> {
    fn default() -> Self {
        Self {
            relist: None,
            events: Vec::new(),
        }
    }
}

impl<K, V> Objects<K, V> {
    /// Nothing observed.
    pub fn is_empty(&self) -> bool {
        self.relist.is_none() && self.events.is_empty()
    }

    /// A completed (re-)list: whatever was observed before it is superseded.
    pub fn relisted(&mut self, list: Vec<(K, V)>) {
        self.relist = Some(list);
        self.events.clear();
    }
}

/// What the Kubernetes watches observed since the last update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchChanges {
    /// The configuration objects and every Node, when either changed (validation reads them
    /// whole; a few dozen objects).
    pub config: Option<ferrolb_api::source::Resources>,
    pub services: Objects<ServiceKey, Service>,
    pub slices: Objects<SliceKey, EndpointSlice>,
}

/// The kept cluster of node `node_name`, updated by both sources.
#[derive(Debug, Clone, Default)]
pub struct KeptCluster {
    node_name: String,
    cluster: Cluster,
    synthesized: bool,
}

impl KeptCluster {
    /// An empty cluster seen from node `node_name`.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            ..Self::default()
        }
    }

    /// The kept cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Whether this node's Node was synthesized (no Node object for it).
    pub fn synthesized(&self) -> bool {
        self.synthesized
    }

    /// Replaces the Nodes with `nodes` (every Node the source holds). Any change recomputes
    /// everything. When this node has no Node object, one with no labels is synthesized
    /// (standalone hosts rarely write their own Node). Returns the warnings of Nodes left out.
    pub fn set_nodes(&mut self, nodes: &[core::Node]) -> (ChangeSet, Vec<String>) {
        let mut warnings = Vec::new();
        let mut converted: BTreeMap<_, _> = nodes_converted(nodes, &mut warnings)
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        self.synthesized = !converted.contains_key(self.node_name.as_str());
        if self.synthesized {
            let node = Node::new(self.node_name.as_str(), Default::default());
            converted.insert(node.name.clone(), node);
        }
        let changes = if converted == self.cluster.nodes {
            ChangeSet::default()
        } else {
            self.cluster.nodes = converted;
            ChangeSet::all()
        };
        (changes, warnings)
    }

    /// A file load: the kept cluster becomes what `inputs` hold. Returns what changed and the
    /// warnings of objects left out.
    pub fn load(&mut self, inputs: &Inputs) -> (ChangeSet, Vec<String>) {
        let mut warnings = Vec::new();
        let mut touched = BTreeSet::new();
        sync(
            &mut self.cluster.services,
            inputs
                .services_converted(&mut warnings)
                .map(|s| (s.key.clone(), s)),
            |s| {
                touched.insert(s.key.clone());
            },
        );
        sync(
            &mut self.cluster.endpoint_slices,
            inputs
                .slices_converted(&mut warnings)
                .map(|s| (s.key.clone(), s)),
            |s| {
                touched.insert(s.service.clone());
            },
        );
        // Nodes last, so the warnings come in the order of `Inputs::cluster`'s.
        let (mut changes, mut node_warnings) = self.set_nodes(&inputs.config().nodes);
        warnings.append(&mut node_warnings);
        changes.merge(named(touched));
        (changes, warnings)
    }

    /// What the watches observed (the configuration's Nodes included). Returns what changed.
    pub fn apply(&mut self, changes: &mut WatchChanges) -> (ChangeSet, Vec<String>) {
        let (mut out, warnings) = match &changes.config {
            Some(config) => self.set_nodes(&config.nodes),
            None => (ChangeSet::default(), Vec::new()),
        };
        let mut touched = BTreeSet::new();
        apply_objects(
            &mut self.cluster.services,
            std::mem::take(&mut changes.services),
            |s| {
                touched.insert(s.key.clone());
            },
        );
        apply_objects(
            &mut self.cluster.endpoint_slices,
            std::mem::take(&mut changes.slices),
            |s| {
                touched.insert(s.service.clone());
            },
        );
        out.merge(named(touched));
        (out, warnings)
    }
}

fn named(services: BTreeSet<ServiceKey>) -> ChangeSet {
    ChangeSet {
        all: false,
        services,
    }
}

/// Makes `kept` hold exactly `now` (a later item of one key replaces an earlier one), calling
/// `touched` with every object added, removed, or changed (old and new). A key given twice
/// counts by its last value only, so a load repeating a key is no change when repeated.
fn sync<K: Ord + Clone, V: PartialEq>(
    kept: &mut BTreeMap<K, V>,
    now: impl Iterator<Item = (K, V)>,
    mut touched: impl FnMut(&V),
) {
    let mut seen = BTreeSet::new();
    let mut inserted = 0usize;
    // The value before this load of every key it changed (only those: not a second copy).
    let mut before: BTreeMap<K, Option<V>> = BTreeMap::new();
    for (key, value) in now {
        match kept.get_mut(&key) {
            Some(old) if *old == value => {}
            Some(old) => {
                let prev = std::mem::replace(old, value);
                before.entry(key.clone()).or_insert(Some(prev));
            }
            None => {
                kept.insert(key.clone(), value);
                inserted += 1;
                before.entry(key.clone()).or_insert(None);
            }
        }
        seen.insert(key);
    }
    for (key, prev) in before {
        let now = kept.get(&key);
        if now != prev.as_ref() {
            prev.iter().chain(now).for_each(&mut touched);
        }
    }
    kept.retain(|key, value| {
        let keep = seen.contains(key);
        if !keep {
            touched(value);
        }
        keep
    });
    // Filled by inserts in key order (the first load), a B-tree keeps its nodes half full:
    // ~5 MiB of nodes for 10k Services and their slices (docs/speaker.md, "10k VIPs").
    // Rebuilt in one go (`from_iter` packs the nodes) when most of it is new.
    if inserted * 2 > kept.len() {
        *kept = std::mem::take(kept).into_iter().collect();
    }
}

fn upsert<K: Ord, V: PartialEq>(
    kept: &mut BTreeMap<K, V>,
    key: K,
    value: V,
    touched: &mut impl FnMut(&V),
) {
    match kept.get_mut(&key) {
        Some(old) if *old == value => {}
        Some(old) => {
            touched(old);
            touched(&value);
            *old = value;
        }
        None => {
            touched(&value);
            kept.insert(key, value);
        }
    }
}

fn apply_objects<K: Ord + Clone, V: PartialEq>(
    kept: &mut BTreeMap<K, V>,
    objects: Objects<K, V>,
    mut touched: impl FnMut(&V),
) {
    if let Some(list) = objects.relist {
        if kept.is_empty() {
            // Built in one go: a B-tree filled by inserts in key order keeps its nodes half
            // full (~2 MB more at 10k Services, docs/speaker.md).
            list.iter().for_each(|(_, v)| touched(v));
            *kept = list.into_iter().collect();
        } else {
            sync(kept, list.into_iter(), &mut touched);
        }
    }
    for (key, value) in objects.events {
        match value {
            Some(value) => upsert(kept, key, value, &mut touched),
            None => {
                if let Some(old) = kept.remove(&key) {
                    touched(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::input::Endpoint;
    use ferrolb_api::selector::Labels;

    fn svc(name: &str, ip: &str) -> Service {
        Service {
            key: ServiceKey::new("default", name),
            labels: Labels::new(),
            is_load_balancer: true,
            load_balancer_class: None,
            traffic_policy: Default::default(),
            ips: ip.parse().into_iter().collect(),
        }
    }

    fn slice(name: &str, service: &str, node: &str) -> EndpointSlice {
        EndpointSlice {
            key: SliceKey {
                namespace: "default".into(),
                name: name.into(),
            },
            service: ServiceKey::new("default", service),
            endpoints: vec![Endpoint {
                addresses: vec!["10.0.0.1".into()],
                node_name: Some(node.into()),
                ..Endpoint::default()
            }],
        }
    }

    fn names(c: &ChangeSet) -> Vec<String> {
        assert!(!c.all, "{c:?}");
        c.services.iter().map(ToString::to_string).collect()
    }

    fn keyed<V: Clone>(v: &V, key: impl Fn(&V) -> ServiceKey) -> (ServiceKey, V) {
        (key(v), v.clone())
    }

    #[test]
    fn watch_events_name_only_the_services_they_touch() {
        let mut kept = KeptCluster::new("node-a");
        let mut first = WatchChanges {
            config: Some(Default::default()),
            ..Default::default()
        };
        first.services.relisted(
            ["a", "b", "c"]
                .iter()
                .map(|n| keyed(&svc(n, "192.0.2.1"), |s| s.key.clone()))
                .collect(),
        );
        first.slices.relisted(vec![(
            slice("a-1", "a", "node-a").key,
            slice("a-1", "a", "node-a"),
        )]);
        let (c, _) = kept.apply(&mut first);
        assert!(c.all, "the first Nodes: everything");
        assert!(kept.synthesized());

        // A changed Service, a deleted one, an unchanged one re-applied, a slice moved.
        let mut next = WatchChanges::default();
        next.services.events = vec![
            (ServiceKey::new("default", "a"), Some(svc("a", "192.0.2.9"))),
            (ServiceKey::new("default", "b"), None),
            (ServiceKey::new("default", "c"), Some(svc("c", "192.0.2.1"))),
        ];
        let moved = slice("a-1", "d", "node-a");
        next.slices.events = vec![(moved.key.clone(), Some(moved))];
        let (c, _) = kept.apply(&mut next);
        // "a" for its Service and its old slice, "b" deleted, "d" gained the slice; not "c".
        assert_eq!(names(&c), ["default/a", "default/b", "default/d"]);
        assert_eq!(kept.cluster().services.len(), 2);

        // Nothing new: nothing named. The same Nodes again: nothing either.
        let mut same = WatchChanges {
            config: Some(Default::default()),
            ..Default::default()
        };
        same.services.events = vec![(ServiceKey::new("default", "c"), Some(svc("c", "192.0.2.1")))];
        assert!(kept.apply(&mut same).0.is_empty());

        // A re-list is swapped in whole: what it lacks is gone, and only differences count.
        let mut relist = WatchChanges::default();
        relist
            .services
            .relisted(vec![keyed(&svc("c", "192.0.2.1"), |s| s.key.clone())]);
        let (c, _) = kept.apply(&mut relist);
        assert_eq!(names(&c), ["default/a"]);
        assert_eq!(
            kept.cluster().services.keys().collect::<Vec<_>>(),
            [&ServiceKey::new("default", "c")]
        );
    }
}
