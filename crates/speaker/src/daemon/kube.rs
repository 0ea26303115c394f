//! Kubernetes source: the config snapshots of `ferrolb_api::source::kube` plus watches of
//! Services, EndpointSlices (discovery.k8s.io/v1) and Nodes, sent as what they observed
//! ([`WatchChanges`]) once per burst of changes. The reconcile loop applies them to its one kept
//! Cluster ([`crate::inputs::kept`]); this source keeps no copy of the Services or
//! EndpointSlices, only what it has not sent yet.
//!
//! ```text
//!  config CRs + Secrets (ns) ───────┐                        ┌─ Changes: config + Nodes when
//!  Services ──────── reduced ───────┤                        │   changed, Pending objects ──┐
//!  EndpointSlices ── reduced ───────┼─ select_all ─ Merge ───┤                              ├─▶ mpsc
//!  Nodes ─────────── reflector ─────┘     │  ▲               └─ Unavailable(error) ─────────┘
//!          Pending per kind (events; a   ─┘  probe (LIST nodes, limit 1) while degraded
//!          re-list collected aside until it ends)
//! ```
//!
//! Services and EndpointSlices are converted as each event arrives ([`service_from_k8s`],
//! [`endpoint_slice_from_k8s`]); one that does not convert is logged and counts as deleted.
//! Nodes are few and validation reads them whole, so they stay in a kube-runtime reflector
//! (trimmed) and travel with the configuration.
//!
//! *Guarantees*: nothing is sent before every watch finished its initial list. A watch error
//! is sent as [`SourceUpdate::Unavailable`] (the watchers retry with backoff on their own), so
//! losing the API server never withdraws a route; only an observed change does. A re-list is
//! collected aside from its start and sent whole at its end (kube-runtime `InitDone`), where it
//! replaces every kept object of its kind, so a reconnect never shows a half-empty cluster and
//! an object deleted while the watch was down goes.
//!
//! *Recovery*: a watch that resumes from its resourceVersion after an outage emits nothing
//! until something changes, so "the API is back" has no event of its own. While degraded, the
//! merge therefore probes the API (one LIST of at most one Node, backing off from 500 ms to
//! 10 s) and sends what it has pending (possibly nothing) once it answers; any successful
//! change event also ends the degraded state.
//!
//! *Caveats*: a watch that keeps failing while the others deliver changes makes the state
//! alternate between fresh and stale at the failing watch's retry period. Tested against the
//! API-server test double of `ferrolb-e2e` (`e2e/tests/speaker_kube.rs`), not a real cluster.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use ferrolb_api::source::{kube as config_source, Resources};
use ferrolb_runtime::Backoff;
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt as _;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::announce::from_k8s::{endpoint_slice_from_k8s, service_from_k8s};
use crate::announce::input::{self, ServiceKey, SliceKey, SmolStr};
use crate::channels::SourceUpdate;
use crate::inputs::kept::{Objects, WatchChanges};

/// The cluster watches, by index into [`Merge::listed`].
const CLUSTER_WATCHES: [&str; 3] = ["Services", "EndpointSlices", "Nodes"];
/// At most this many ticks already queued are folded into one snapshot.
const MAX_BURST: usize = 256;
const PROBE_MIN: Duration = Duration::from_millis(500);
const PROBE_MAX: Duration = Duration::from_secs(10);

/// One event of the merged watch streams.
pub enum Tick {
    /// A configuration snapshot (all config watches listed), or a config watch error.
    Config(Result<Box<Resources>, watcher::Error>),
    /// An event of cluster watch `index`, or its error.
    Cluster(usize, Result<Seen, watcher::Error>),
}

/// What a cluster watch saw, as far as the merge cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// An object was added, changed or deleted.
    Change,
    /// A (re-)list started or delivered an object; the store swaps it in at [`Seen::Listed`].
    Listing,
    /// A (re-)list completed.
    Listed,
}

/// What the merge loop should do after a burst of ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send what is pending (the configuration with it when it changed).
    Snapshot,
    /// Send [`SourceUpdate::Unavailable`] with this error.
    Unavailable(String),
    /// Nothing to send.
    Nothing,
}

/// The merge loop's state, kept apart from I/O so its rules are unit-tested.
#[derive(Debug, Default)]
pub struct Merge {
    /// The newest configuration snapshot.
    pub config: Option<Resources>,
    listed: [bool; CLUSTER_WATCHES.len()],
    degraded: Option<String>,
    dirty: bool,
}

impl Merge {
    /// Folds one tick in.
    pub fn on_tick(&mut self, tick: Tick) {
        match tick {
            Tick::Config(Ok(res)) => {
                self.config = Some(*res);
                self.recovered();
            }
            Tick::Cluster(i, Ok(seen)) => {
                if seen == Seen::Listed {
                    if let Some(flag) = self.listed.get_mut(i) {
                        *flag = true;
                    }
                }
                if seen != Seen::Listing {
                    self.recovered();
                }
            }
            Tick::Config(Err(e)) => self.degraded = Some(format!("config watch: {e}")),
            Tick::Cluster(i, Err(e)) => {
                let what = CLUSTER_WATCHES.get(i).copied().unwrap_or("cluster");
                self.degraded = Some(format!("{what} watch: {e}"));
            }
        }
    }

    /// A successful answer from the API: it is reachable again and the stores are current.
    pub fn recovered(&mut self) {
        self.degraded = None;
        self.dirty = true;
    }

    /// Whether the API is known unreachable (a probe is due).
    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }

    /// What to send after the ticks folded in since the last call.
    pub fn decide(&mut self) -> Decision {
        if let Some(error) = &self.degraded {
            return Decision::Unavailable(error.clone());
        }
        let complete = self.config.is_some() && self.listed.iter().all(|l| *l);
        if complete && std::mem::take(&mut self.dirty) {
            Decision::Snapshot
        } else {
            Decision::Nothing
        }
    }
}

/// Drops what the speaker never reads from a watched Node before the reflector keeps it:
/// `managedFields` and annotations (often a whole `last-applied-configuration` copy), and
/// `status.images` (the image list, commonly tens of KiB per Node). The fields the conversion
/// and validation read (labels, spec, conditions, addresses) stay; `tests` below check the
/// conversion sees no difference.
pub trait Trim {
    /// Removes the unread fields in place.
    fn trim(&mut self);
}

fn trim_metadata(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    meta.annotations = None;
}

impl Trim for Node {
    fn trim(&mut self) {
        trim_metadata(&mut self.metadata);
        if let Some(status) = &mut self.status {
            status.images = None;
        }
    }
}

fn seen<K>(event: &watcher::Event<K>) -> Seen {
    match event {
        watcher::Event::Apply(_) | watcher::Event::Delete(_) => Seen::Change,
        watcher::Event::Init | watcher::Event::InitApply(_) => Seen::Listing,
        watcher::Event::InitDone => Seen::Listed,
    }
}

fn watch_into<K>(api: Api<K>, index: usize) -> (Store<K>, BoxStream<'static, Tick>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + Trim + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let watch = watcher(api, watcher::Config::default()).modify(K::trim);
    let ticks = reflector::reflector(writer, watch)
        .default_backoff()
        .map(move |ev| Tick::Cluster(index, ev.map(|e| seen(&e))))
        .boxed();
    (reader, ticks)
}

/// `(namespace, name)` of a watched object.
type ObjectKey = (SmolStr, SmolStr);

/// What a watch keeps of its objects: each one reduced as it arrives, by namespace and name.
///
/// Folds kube-runtime watcher events the way its reflector does, so the guarantees in the
/// module doc hold: an applied object replaces the one of its key, a deleted one goes, and a
/// (re-)list is collected aside from `Init` on and swapped in whole at `InitDone`, so the
/// store never shows a half-listed cluster.
#[derive(Debug)]
pub struct ReducedStore<V> {
    objects: BTreeMap<ObjectKey, V>,
    relist: Option<BTreeMap<ObjectKey, V>>,
}

impl<V> Default for ReducedStore<V> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            relist: None,
        }
    }
}

impl<V> ReducedStore<V> {
    /// Folds one watcher event in, reducing any object it carries with `reduce`.
    pub fn apply<K: Resource>(&mut self, event: &watcher::Event<K>, reduce: impl Fn(&K) -> V) {
        let key = |obj: &K| -> ObjectKey {
            let meta = obj.meta();
            (
                SmolStr::new(meta.namespace.as_deref().unwrap_or_default()),
                SmolStr::new(meta.name.as_deref().unwrap_or_default()),
            )
        };
        match event {
            watcher::Event::Apply(obj) => {
                self.objects.insert(key(obj), reduce(obj));
            }
            watcher::Event::Delete(obj) => {
                self.objects.remove(&key(obj));
            }
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(obj) => {
                self.relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key(obj), reduce(obj));
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.relist.take() {
                    // Rebuilt in one go: the list arrives in key order, and a B-tree filled
                    // in order keeps its nodes half full (~2 MB more at 10k Services).
                    self.objects = listed.into_iter().collect();
                }
            }
        }
    }

    /// The reduced objects in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.objects.values()
    }
}

/// One watch event reduced to what the speaker keeps: the object's key and its converted form
/// (`None` when it does not convert, which the speaker treats as absent).
#[derive(Debug, Clone, PartialEq)]
pub enum Reduced<K, V> {
    /// Added or changed.
    Apply(K, Option<V>),
    /// Deleted.
    Delete(K),
    /// A (re-)list starts.
    Init,
    /// An object of the (re-)list.
    InitApply(K, Option<V>),
    /// The (re-)list is complete.
    InitDone,
}

impl<K, V> Reduced<K, V> {
    /// Reduces `event` with `reduce`.
    pub fn of<O>(event: &watcher::Event<O>, reduce: impl Fn(&O) -> (K, Option<V>)) -> Self {
        match event {
            watcher::Event::Apply(obj) => {
                let (k, v) = reduce(obj);
                Reduced::Apply(k, v)
            }
            watcher::Event::Delete(obj) => Reduced::Delete(reduce(obj).0),
            watcher::Event::Init => Reduced::Init,
            watcher::Event::InitApply(obj) => {
                let (k, v) = reduce(obj);
                Reduced::InitApply(k, v)
            }
            watcher::Event::InitDone => Reduced::InitDone,
        }
    }
}

/// What one cluster watch observed and this source has not sent yet.
///
/// Folds events the way kube-runtime's reflector does, so the guarantees in the module doc
/// hold: an applied or deleted object is an event, and a (re-)list is collected aside from
/// `Init` on and becomes [`Objects::relist`] only at `InitDone`, superseding what was pending.
#[derive(Debug)]
pub struct Pending<K, V> {
    listing: Option<Vec<(K, V)>>,
    ready: Objects<K, V>,
}

impl<K, V> Default for Pending<K, V> {
    fn default() -> Self {
        Self {
            listing: None,
            ready: Objects::default(),
        }
    }
}

impl<K, V> Pending<K, V> {
    /// Folds one reduced event in.
    pub fn fold(&mut self, event: Reduced<K, V>) {
        match event {
            Reduced::Apply(k, v) => self.ready.events.push((k, v)),
            Reduced::Delete(k) => self.ready.events.push((k, None)),
            Reduced::Init => self.listing = Some(Vec::new()),
            Reduced::InitApply(k, v) => {
                if let Some(v) = v {
                    self.listing.get_or_insert_with(Vec::new).push((k, v));
                }
            }
            Reduced::InitDone => {
                if let Some(list) = self.listing.take() {
                    self.ready.relisted(list);
                }
            }
        }
    }

    /// What is ready to send; a (re-)list in progress stays.
    pub fn take(&mut self) -> Objects<K, V> {
        std::mem::take(&mut self.ready)
    }
}

/// What the watches observed and this source has not sent yet, with the [`Merge`] deciding
/// when to send it. Kept apart from I/O so its rules are unit-tested.
#[derive(Debug, Default)]
pub struct Watched {
    /// When to send.
    pub merge: Merge,
    services: Pending<ServiceKey, input::Service>,
    slices: Pending<SliceKey, input::EndpointSlice>,
    /// The configuration or a Node changed since the last update sent.
    config_changed: bool,
}

impl Watched {
    /// Folds one watch item in.
    pub fn fold(&mut self, (tick, observed): (Tick, Option<Observed>)) {
        if let Tick::Config(Ok(_)) | Tick::Cluster(2, Ok(Seen::Change | Seen::Listed)) = &tick {
            self.config_changed = true;
        }
        match observed {
            Some(Observed::Services(e)) => self.services.fold(e),
            Some(Observed::Slices(e)) => self.slices.fold(e),
            None => {}
        }
        self.merge.on_tick(tick);
    }

    /// What to send once [`Merge::decide`] said so: the pending objects, and the configuration
    /// with every Node (`nodes`) when either changed. `None` before any configuration.
    pub fn changes<'a>(&mut self, nodes: impl Iterator<Item = &'a Node>) -> Option<WatchChanges> {
        let config = self.merge.config.as_ref()?;
        let config = std::mem::take(&mut self.config_changed).then(|| {
            let mut res = config.clone();
            res.services.clear();
            res.endpoint_slices.clear();
            res.nodes = nodes.cloned().collect();
            res
        });
        Some(WatchChanges {
            config,
            services: self.services.take(),
            slices: self.slices.take(),
        })
    }
}

/// What a watch item carries besides its [`Tick`]: the reduced object event.
#[derive(Debug)]
pub enum Observed {
    /// A Service event.
    Services(Reduced<ServiceKey, input::Service>),
    /// An EndpointSlice event.
    Slices(Reduced<SliceKey, input::EndpointSlice>),
}

fn watch_reduced<K>(
    api: Api<K>,
    index: usize,
    observed: fn(&watcher::Event<K>) -> Observed,
) -> BoxStream<'static, (Tick, Option<Observed>)>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |ev| match ev {
            Ok(e) => (Tick::Cluster(index, Ok(seen(&e))), Some(observed(&e))),
            Err(e) => (Tick::Cluster(index, Err(e)), None),
        })
        .boxed()
}

fn meta_key(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (SmolStr, SmolStr) {
    (
        SmolStr::new(meta.namespace.as_deref().unwrap_or_default()),
        SmolStr::new(meta.name.as_deref().unwrap_or_default()),
    )
}

/// A watched Service's key and converted form; one that does not convert is logged.
pub fn reduce_service(svc: &Service) -> (ServiceKey, Option<input::Service>) {
    let (namespace, name) = meta_key(&svc.metadata);
    let converted = service_from_k8s(svc)
        .map_err(|warning| tracing::warn!(%warning, "object ignored"))
        .ok();
    (ServiceKey { namespace, name }, converted)
}

/// A watched EndpointSlice's key and converted form; one that does not convert is logged.
pub fn reduce_slice(slice: &EndpointSlice) -> (SliceKey, Option<input::EndpointSlice>) {
    let (namespace, name) = meta_key(&slice.metadata);
    let converted = endpoint_slice_from_k8s(slice)
        .map_err(|warning| tracing::warn!(%warning, "object ignored"))
        .ok();
    (SliceKey { namespace, name }, converted)
}

/// Watches the cluster through `client` (config CRs and Secrets in `namespace`) and sends
/// updates on `tx` until `cancel` or until the receiver is gone.
pub async fn watch(
    client: Client,
    namespace: String,
    tx: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
) {
    let config = config_source::snapshots(client.clone(), &namespace)
        .map(|r| (Tick::Config(r.map(Box::new)), None))
        .boxed();
    let s0 = watch_reduced(Api::<Service>::all(client.clone()), 0, |e| {
        Observed::Services(Reduced::of(e, reduce_service))
    });
    let s1 = watch_reduced(Api::<EndpointSlice>::all(client.clone()), 1, |e| {
        Observed::Slices(Reduced::of(e, reduce_slice))
    });
    let probe_api = Api::<Node>::all(client.clone());
    let (nodes, s2) = watch_into(Api::<Node>::all(client), 2);
    let s2 = s2.map(|tick| (tick, None)).boxed();
    let mut ticks = stream::select_all([config, s0, s1, s2]);
    let mut watched = Watched::default();
    // Probes spread with jitter, so speakers on many nodes do not probe in step.
    let probe_backoff = Backoff::new(PROBE_MIN, PROBE_MAX);
    let mut probe_attempt = 0u32;
    let mut probe_at: Option<Instant> = None;
    loop {
        let wake = tokio::select! {
            t = ticks.next() => Wake::Tick(t),
            () = sleep_until(probe_at), if probe_at.is_some() => Wake::ProbeDue,
            () = cancel.cancelled() => return,
        };
        match wake {
            Wake::Tick(None) => return, // every watch stream ended
            Wake::Tick(Some(item)) => {
                watched.fold(item);
                // Fold what is already queued into the same update: a re-list or a burst of
                // edits becomes one recomputation instead of one per object.
                for _ in 0..MAX_BURST {
                    match ticks.next().now_or_never() {
                        Some(Some(item)) => watched.fold(item),
                        Some(None) | None => break,
                    }
                }
            }
            Wake::ProbeDue => {
                probe_at = None;
                let answered = tokio::select! {
                    ok = probe(&probe_api) => ok,
                    () = cancel.cancelled() => return,
                };
                if answered {
                    tracing::info!("API server answers again");
                    watched.merge.recovered();
                } else {
                    probe_attempt = probe_attempt.saturating_add(1);
                }
            }
        }
        if watched.merge.is_degraded() {
            probe_at.get_or_insert_with(|| Instant::now() + probe_backoff.delay(probe_attempt));
        } else {
            probe_at = None;
            probe_attempt = 0;
        }
        let update = match watched.merge.decide() {
            Decision::Nothing => continue,
            Decision::Unavailable(error) => SourceUpdate::Unavailable(error),
            Decision::Snapshot => {
                let Some(changes) = watched.changes(nodes.state().iter().map(|n| &**n)) else {
                    continue;
                };
                SourceUpdate::Changes(Box::new(changes))
            }
        };
        if tx.send(update).await.is_err() {
            return;
        }
    }
}

/// What woke the merge loop.
// One value on the stack per wake-up, folded at once: boxing it would allocate per event.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Tick(Option<(Tick, Option<Observed>)>),
    ProbeDue,
}

/// Sleeps until `at`, or forever when there is nothing to wait for (a disarmed timer); the
/// runtime's, shared with the controller.
pub(crate) use ferrolb_runtime::sleep_until;

/// One cheap authenticated request: does the API server answer (within [`PROBE_MAX`])?
async fn probe(api: &Api<Node>) -> bool {
    let params = ListParams::default().limit(1);
    match tokio::time::timeout(PROBE_MAX, api.list_metadata(&params)).await {
        Ok(Ok(_)) => true,
        Ok(Err(error)) => {
            tracing::debug!(%error, "API server probe failed");
            false
        }
        Err(_) => {
            tracing::debug!(limit = ?PROBE_MAX, "API server probe timed out");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::from_k8s::{node_from_k8s, ServiceFields};

    /// A whole object as the API server sends it: read fields plus the unread ones.
    fn from_json<K: DeserializeOwned>(kind_and_fields: serde_json::Value) -> K {
        serde_json::from_value(kind_and_fields).expect("object")
    }

    fn noisy_meta(name: &str, labels: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "name": name, "namespace": "default", "labels": labels,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
        })
    }

    #[test]
    fn trimming_a_node_keeps_everything_the_speaker_reads() {
        let mut node: Node = from_json(serde_json::json!({
            "metadata": noisy_meta("node-a", serde_json::json!({"zone": "a"})),
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "NetworkUnavailable", "status": "False"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "images": [{"names": ["registry.example/big:1"], "sizeBytes": 1}]
            }
        }));
        let before = node_from_k8s(&node);
        let addresses = node.status.as_ref().and_then(|s| s.addresses.clone());
        node.trim();
        assert_eq!(node_from_k8s(&node), before);
        // Validation reads a Node's labels and addresses.
        assert_eq!(
            node.status.as_ref().and_then(|s| s.addresses.clone()),
            addresses
        );
        assert!(node.status.as_ref().is_some_and(|s| s.images.is_none()));
        assert!(node.metadata.labels.is_some());
    }

    fn svc(name: &str, ip: &str) -> Service {
        from_json(serde_json::json!({
            "metadata": noisy_meta(name, serde_json::json!({"app": name})),
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
        }))
    }

    fn names(store: &ReducedStore<ServiceFields>) -> Vec<(String, String)> {
        store
            .values()
            .map(|f| {
                let ip = f
                    .ingress
                    .as_ref()
                    .and_then(|i| i.first().cloned().flatten());
                (
                    f.name.as_deref().unwrap_or_default().to_string(),
                    ip.as_deref().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    use watcher::Event::{Apply, Delete, Init, InitApply, InitDone};

    fn fold(store: &mut ReducedStore<ServiceFields>, events: Vec<watcher::Event<Service>>) {
        for event in &events {
            store.apply(event, ServiceFields::of);
        }
    }

    #[test]
    fn the_reduced_store_keeps_the_read_fields_of_applied_objects() {
        let mut store = ReducedStore::default();
        fold(
            &mut store,
            vec![
                Apply(svc("web", "198.51.100.1")),
                Apply(svc("api", "198.51.100.2")),
                // The same key again replaces.
                Apply(svc("web", "198.51.100.9")),
            ],
        );
        assert_eq!(
            names(&store),
            pairs(&[("api", "198.51.100.2"), ("web", "198.51.100.9")])
        );
        let kept = store.values().next().cloned().expect("api");
        assert_eq!(kept, ServiceFields::of(&svc("api", "198.51.100.2")));
        fold(&mut store, vec![Delete(svc("api", ""))]);
        assert_eq!(names(&store), pairs(&[("web", "198.51.100.9")]));
    }

    #[test]
    fn a_relist_is_swapped_in_whole_at_its_end() {
        let mut store = ReducedStore::default();
        fold(
            &mut store,
            vec![
                Apply(svc("old", "198.51.100.1")),
                Apply(svc("kept", "198.51.100.2")),
                Init,
                InitApply(svc("kept", "198.51.100.3")),
            ],
        );
        // Mid-list the store still shows the previous list, not a half-empty one.
        assert_eq!(
            names(&store),
            pairs(&[("kept", "198.51.100.2"), ("old", "198.51.100.1")])
        );
        fold(
            &mut store,
            vec![InitApply(svc("new", "198.51.100.4")), InitDone],
        );
        // "old" was deleted while the watch was down: gone with the new list.
        assert_eq!(
            names(&store),
            pairs(&[("kept", "198.51.100.3"), ("new", "198.51.100.4")])
        );
        // A second InitDone without a list in progress changes nothing.
        fold(&mut store, vec![InitDone]);
        assert_eq!(names(&store).len(), 2);
    }

    fn listed_all(m: &mut Merge) {
        m.on_tick(Tick::Config(Ok(Box::default())));
        for i in 0..CLUSTER_WATCHES.len() {
            m.on_tick(Tick::Cluster(i, Ok(Seen::Listing)));
            m.on_tick(Tick::Cluster(i, Ok(Seen::Listed)));
        }
    }

    fn error() -> watcher::Error {
        watcher::Error::NoResourceVersion
    }

    #[test]
    fn nothing_is_sent_before_every_watch_listed() {
        let mut m = Merge::default();
        m.on_tick(Tick::Config(Ok(Box::default())));
        m.on_tick(Tick::Cluster(0, Ok(Seen::Listed)));
        m.on_tick(Tick::Cluster(1, Ok(Seen::Listed)));
        assert_eq!(m.decide(), Decision::Nothing, "Nodes not listed yet");
        m.on_tick(Tick::Cluster(2, Ok(Seen::Listed)));
        assert_eq!(m.decide(), Decision::Snapshot);
        assert_eq!(m.decide(), Decision::Nothing, "one snapshot per burst");
    }

    #[test]
    fn a_relist_in_progress_sends_nothing_until_it_completes() {
        let mut m = Merge::default();
        listed_all(&mut m);
        assert_eq!(m.decide(), Decision::Snapshot);
        m.on_tick(Tick::Cluster(0, Ok(Seen::Listing)));
        assert_eq!(m.decide(), Decision::Nothing);
        m.on_tick(Tick::Cluster(0, Ok(Seen::Listed)));
        assert_eq!(m.decide(), Decision::Snapshot);
    }

    #[test]
    fn a_watch_error_is_unavailable_and_names_the_watch() {
        let mut m = Merge::default();
        listed_all(&mut m);
        let _ = m.decide();
        m.on_tick(Tick::Cluster(1, Err(error())));
        assert!(m.is_degraded());
        match m.decide() {
            Decision::Unavailable(e) => assert!(e.starts_with("EndpointSlices watch"), "{e}"),
            other => panic!("{other:?}"),
        }
        // Still degraded until something answers: a re-list in progress is not an answer.
        m.on_tick(Tick::Cluster(1, Ok(Seen::Listing)));
        assert!(matches!(m.decide(), Decision::Unavailable(_)));
    }

    #[test]
    fn a_change_or_a_successful_probe_ends_the_outage_with_a_snapshot() {
        let mut m = Merge::default();
        listed_all(&mut m);
        let _ = m.decide();
        m.on_tick(Tick::Config(Err(error())));
        assert!(matches!(m.decide(), Decision::Unavailable(_)));
        m.on_tick(Tick::Cluster(2, Ok(Seen::Change)));
        assert_eq!(m.decide(), Decision::Snapshot);

        m.on_tick(Tick::Cluster(0, Err(error())));
        assert!(matches!(m.decide(), Decision::Unavailable(_)));
        m.recovered();
        assert!(!m.is_degraded());
        assert_eq!(m.decide(), Decision::Snapshot);
    }

    fn item(index: usize, seen: Seen, observed: Option<Observed>) -> (Tick, Option<Observed>) {
        (Tick::Cluster(index, Ok(seen)), observed)
    }

    fn service_event(e: watcher::Event<Service>) -> Option<Observed> {
        Some(Observed::Services(Reduced::of(&e, reduce_service)))
    }

    fn changes_of(w: &mut Watched) -> WatchChanges {
        assert_eq!(w.merge.decide(), Decision::Snapshot);
        w.changes(std::iter::empty()).expect("a configuration")
    }

    #[test]
    fn watch_events_reach_the_kept_cluster_naming_only_the_services_they_touch() {
        use crate::inputs::kept::KeptCluster;
        let mut w = Watched::default();
        w.fold((Tick::Config(Ok(Box::default())), None));
        for e in [
            Init,
            InitApply(svc("web", "198.51.100.1")),
            InitApply(svc("api", "198.51.100.2")),
            InitDone,
        ] {
            let seen = seen(&e);
            w.fold(item(0, seen, service_event(e)));
        }
        w.fold(item(1, Seen::Listed, None));
        assert_eq!(w.merge.decide(), Decision::Nothing, "Nodes not listed yet");
        w.fold(item(2, Seen::Listed, None));
        let mut first = changes_of(&mut w);
        assert!(
            first.config.is_some(),
            "the first update carries the configuration"
        );
        assert_eq!(first.services.relist.as_ref().map(Vec::len), Some(2));
        let mut kept = KeptCluster::new("node-a");
        assert!(kept.apply(&mut first).0.all);

        // One Service changes: only it is named, and no configuration travels.
        w.fold(item(
            0,
            Seen::Change,
            service_event(Apply(svc("web", "198.51.100.9"))),
        ));
        let mut next = changes_of(&mut w);
        assert!(next.config.is_none());
        let (c, _) = kept.apply(&mut next);
        assert_eq!(c.services, [ServiceKey::new("default", "web")].into());
        assert!(!c.all);

        // A re-list in progress is held back; at its end it replaces the Services whole.
        w.fold(item(0, Seen::Listing, service_event(Init)));
        w.fold(item(
            0,
            Seen::Listing,
            service_event(InitApply(svc("web", "198.51.100.9"))),
        ));
        assert_eq!(w.merge.decide(), Decision::Nothing);
        w.fold(item(0, Seen::Listed, service_event(InitDone)));
        let (c, _) = kept.apply(&mut changes_of(&mut w));
        assert_eq!(
            c.services,
            [ServiceKey::new("default", "api")].into(),
            "api gone"
        );
        assert_eq!(kept.cluster().services.len(), 1);

        // A Node event sends the configuration (with the Nodes) again.
        w.fold(item(2, Seen::Change, None));
        assert!(changes_of(&mut w).config.is_some());
    }
}
