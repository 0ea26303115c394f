//! Kubernetes source: the config snapshots of `ferrolb_api::source::kube` plus watches of
//! Services, EndpointSlices (discovery.k8s.io/v1) and Nodes, merged into one
//! [`SourceUpdate::Snapshot`] per burst of changes.
//!
//! ```text
//!  config CRs + Secrets (ns) ───────┐
//!  Services ──────── ReducedStore ──┤                       ┌─ Snapshot (stores merged) ─┐
//!  EndpointSlices ── ReducedStore ──┼─ select_all ─ Merge ──┤                            ├─▶ mpsc
//!  Nodes ─────────── reflector ─────┘       ▲               └─ Unavailable(error) ───────┘
//!                       probe (LIST nodes, limit 1) while degraded
//! ```
//!
//! Services and EndpointSlices are kept reduced ([`ReducedStore`]): a reflector would keep
//! every k8s object whole, ~30 MB at 10k Services (docs/speaker.md, issue 7). Nodes are few
//! and validation reads them whole, so they stay in a kube-runtime reflector (trimmed).
//!
//! *Guarantees*: nothing is sent before every watch finished its initial list. A watch error
//! is sent as [`SourceUpdate::Unavailable`] (the watchers retry with backoff on their own), so
//! losing the API server never withdraws a route; only an observed change does. The reflectors
//! swap a re-list in whole at its end (kube-runtime `InitDone`), and the merge skips the
//! events of a re-list in progress, so a reconnect never shows a half-empty cluster.
//!
//! *Recovery*: a watch that resumes from its resourceVersion after an outage emits nothing
//! until something changes, so "the API is back" has no event of its own. While degraded, the
//! merge therefore probes the API (one LIST of at most one Node, backing off from 500 ms to
//! 10 s) and sends a snapshot of what the stores hold once it answers; any successful change
//! event also ends the degraded state.
//!
//! *Caveats*: a watch that keeps failing while the others deliver changes makes the state
//! alternate between fresh and stale at the failing watch's retry period. Tested against the
//! API-server test double of `ferrolb-e2e` (`e2e/tests/speaker_kube.rs`), not a real cluster.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferrolb_api::source::{kube as config_source, Resources};
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

use crate::announce::from_k8s::{endpoint_slice_from_k8s, FromK8sError, ServiceFields};
use crate::announce::input::{self, SmolStr};
use crate::channels::SourceUpdate;
use crate::inputs::{InputPart, Inputs};

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
    /// Send a snapshot built from the stores.
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

type Shared<V> = Arc<Mutex<ReducedStore<V>>>;

fn lock<V>(store: &Shared<V>) -> std::sync::MutexGuard<'_, ReducedStore<V>> {
    // A panic while folding an event leaves a consistent map (each event is one insert,
    // remove or swap), so a poisoned lock is still usable.
    store.lock().unwrap_or_else(PoisonError::into_inner)
}

fn watch_reduced<K, V>(
    api: Api<K>,
    index: usize,
    reduce: fn(&K) -> V,
) -> (Shared<V>, BoxStream<'static, Tick>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
    V: Send + 'static,
{
    let store: Shared<V> = Arc::default();
    let writer = Arc::clone(&store);
    let ticks = watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |ev| {
            Tick::Cluster(
                index,
                ev.map(|e| {
                    lock(&writer).apply(&e, reduce);
                    seen(&e)
                }),
            )
        })
        .boxed();
    (store, ticks)
}

fn reduce_slice(slice: &EndpointSlice) -> Result<input::EndpointSlice, FromK8sError> {
    endpoint_slice_from_k8s(slice)
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
        .map(|r| Tick::Config(r.map(Box::new)))
        .boxed();
    let (services, s0) = watch_reduced(Api::<Service>::all(client.clone()), 0, ServiceFields::of);
    let (slices, s1) = watch_reduced(Api::<EndpointSlice>::all(client.clone()), 1, reduce_slice);
    let probe_api = Api::<Node>::all(client.clone());
    let (nodes, s2) = watch_into(Api::<Node>::all(client), 2);
    let mut ticks = stream::select_all([config, s0, s1, s2]);
    let mut merge = Merge::default();
    let mut probe_delay = PROBE_MIN;
    let mut probe_at: Option<Instant> = None;
    loop {
        let wake = tokio::select! {
            t = ticks.next() => Wake::Tick(t),
            () = sleep_until(probe_at), if probe_at.is_some() => Wake::ProbeDue,
            () = cancel.cancelled() => return,
        };
        match wake {
            Wake::Tick(None) => return, // every watch stream ended
            Wake::Tick(Some(tick)) => {
                merge.on_tick(tick);
                // Fold what is already queued into the same snapshot: a re-list or a burst
                // of edits becomes one recomputation instead of one per object.
                for _ in 0..MAX_BURST {
                    match ticks.next().now_or_never() {
                        Some(Some(tick)) => merge.on_tick(tick),
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
                    merge.recovered();
                } else {
                    probe_delay = (probe_delay * 2).min(PROBE_MAX);
                }
            }
        }
        if merge.is_degraded() {
            probe_at.get_or_insert_with(|| Instant::now() + jittered(probe_delay));
        } else {
            probe_at = None;
            probe_delay = PROBE_MIN;
        }
        let update = match merge.decide() {
            Decision::Nothing => continue,
            Decision::Unavailable(error) => SourceUpdate::Unavailable(error),
            Decision::Snapshot => {
                let Some(config) = merge.config.as_ref() else {
                    continue;
                };
                let part = InputPart::from_reduced(
                    config.clone(),
                    lock(&services).values().cloned().collect(),
                    lock(&slices).values().cloned().collect(),
                    nodes.state().iter().map(|n| &**n),
                );
                SourceUpdate::Snapshot(Box::new(Inputs::from_part(part)))
            }
        };
        if tx.send(update).await.is_err() {
            return;
        }
    }
}

/// What woke the merge loop.
enum Wake {
    Tick(Option<Tick>),
    ProbeDue,
}

/// Sleeps until `at`, or forever when there is nothing to wait for (a disarmed timer).
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

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

/// `d` plus up to 25 % random jitter, so speakers on many nodes do not probe in step.
pub(crate) fn jittered(d: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let quarter = u64::try_from(d.as_millis() / 4).unwrap_or(u64::MAX).max(1);
    d + Duration::from_millis(random % quarter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::from_k8s::node_from_k8s;

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

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(400));
            assert!(
                d >= Duration::from_millis(400) && d < Duration::from_millis(500),
                "{d:?}"
            );
        }
    }
}
