//! ServiceBGPStatus and ServiceL2Status objects (metallb.io/v1beta1) in Kubernetes mode: one
//! per Service this node announces, in the speaker's namespace, as MetalLB's speaker writes
//! them (`internal/k8s/controllers/{bgp,layer2}_status_controller.go`). One planner and one
//! writer serve both kinds through [`StatusKind`]; what differs is the name prefix and the
//! status body (BGP: the peers; L2: the interfaces). Described for BGP:
//!
//! - labels `metallb.io/node`, `metallb.io/service-name`, `metallb.io/service-namespace`;
//! - `status: {node, serviceName, serviceNamespace, peers}`, `peers` being the names of the
//!   BGPPeers the Service is configured to be announced to from this node, sorted;
//! - deleted when the node stops announcing the Service (no peers left, or the Service gone);
//! - owned by the speaker Pod when `POD_NAME`/`POD_UID` are given, so they go with it.
//!
//! ```text
//!  daemon::run ── watch<Option<DesiredStatuses>> ─▶ run_writer ─ plan_writes (pure) ─▶ API
//!  watch(ServiceBGPStatus, label metallb.io/node=<node>) ─ ReducedStore ─▲
//! ```
//!
//! *Names*: MetalLB uses `generateName: bgp-`. We use `bgp-` and 16 hex digits of a SHA-256 of
//! (node, namespace, name) instead, so a create is idempotent: a retry, a stale cache or two
//! speaker instances during a rollout cannot make duplicates. Objects MetalLB already wrote
//! (any name, same labels) are adopted, and extra ones for the same Service deleted, so a
//! migration from MetalLB leaves one object per (Service, node).
//!
//! *Guarantees*: nothing is written before the desired set is known (the reconciler computed a
//! plan) and the existing objects are listed, so a restart does not delete and recreate them.
//! Objects are created with POST (409 means ours already, e.g. a retry), then their status is
//! server-side applied under the field manager `ferrolb-speaker`. An object of another owner
//! (an adopted one, or one from this speaker's previous Pod, which the garbage collector would
//! otherwise delete with that Pod) gets a merge patch of its labels and `ownerReferences` (a
//! merge patch replaces the list: exactly this Pod). An object without all three labels is not
//! ours and is left alone, as MetalLB leaves it.
//! Writes that fail are retried, backing off with jitter from 200 ms to 30 s; while the API is
//! unreachable, desired changes simply replace each other (latest wins).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferrolb_api::crd::{
    InterfaceInfo, ServiceBGPStatus, ServiceBGPStatusStatus, ServiceL2Status, ServiceL2StatusStatus,
};
use ferrolb_runtime::Backoff;
use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt as _;
use kube::Client;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::kube::ReducedStore;
use crate::announce::input::{ServiceKey, SmolStr};
use crate::metrics::Metrics;

/// Label naming the announcing node (MetalLB `LabelAnnounceNode`).
pub const LABEL_NODE: &str = "metallb.io/node";
/// Label naming the Service (MetalLB `LabelServiceName`).
pub const LABEL_SERVICE_NAME: &str = "metallb.io/service-name";
/// Label naming the Service's namespace (MetalLB `LabelServiceNamespace`).
pub const LABEL_SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";
/// Field manager of our writes.
pub const FIELD_MANAGER: &str = "ferrolb-speaker";

const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub use crate::protocol::{DesiredStatuses, Names};

/// A status kind the speaker writes, one object per (Service, node).
pub trait StatusKind:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The `status` type.
    type Status: serde::Serialize + Clone + Default + PartialEq + std::fmt::Debug;
    /// Prefix of [`object_name`] (MetalLB's `generateName`).
    const NAME_PREFIX: &'static str;
    /// The status node `node` writes for `service` with `report` (peers or interfaces).
    fn status_for(node: &str, service: &ServiceKey, report: &Names) -> Self::Status;
    /// The object's status, default when absent.
    fn current_status(&self) -> Self::Status;
    /// A new object with `meta` and no status.
    fn from_meta(meta: ObjectMeta) -> Self;
}

impl StatusKind for ServiceBGPStatus {
    type Status = ServiceBGPStatusStatus;
    const NAME_PREFIX: &'static str = "bgp-";
    fn status_for(node: &str, service: &ServiceKey, peers: &Names) -> Self::Status {
        status_for(node, service, peers)
    }
    fn current_status(&self) -> Self::Status {
        self.status.clone().unwrap_or_default()
    }
    fn from_meta(metadata: ObjectMeta) -> Self {
        Self {
            metadata,
            spec: Default::default(),
            status: None,
        }
    }
}

impl StatusKind for ServiceL2Status {
    type Status = ServiceL2StatusStatus;
    const NAME_PREFIX: &'static str = "l2-";
    fn status_for(node: &str, service: &ServiceKey, interfaces: &Names) -> Self::Status {
        ServiceL2StatusStatus {
            node: Some(node.to_string()),
            service_name: Some(service.name.to_string()),
            service_namespace: Some(service.namespace.to_string()),
            interfaces: interfaces
                .iter()
                .map(|name| InterfaceInfo {
                    name: Some(name.to_string()),
                })
                .collect(),
        }
    }
    fn current_status(&self) -> Self::Status {
        self.status.clone().unwrap_or_default()
    }
    fn from_meta(metadata: ObjectMeta) -> Self {
        Self {
            metadata,
            spec: Default::default(),
            status: None,
        }
    }
}

/// The name of node `node`'s object for `service`: the kind's prefix (`bgp-`, `l2-`) and 16 hex digits of SHA-256 over
/// the three names, NUL-separated (no name can contain NUL, so no two triples collide before
/// the hash does).
pub fn object_name<K: StatusKind>(node: &str, service: &ServiceKey) -> String {
    let mut h = Sha256::new();
    for part in [node, &service.namespace, &service.name] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", K::NAME_PREFIX)
}

/// The status node `node` writes for `service` announced to `peers`.
pub fn status_for(node: &str, service: &ServiceKey, peers: &Names) -> ServiceBGPStatusStatus {
    ServiceBGPStatusStatus {
        node: Some(node.to_string()),
        service_name: Some(service.name.to_string()),
        service_namespace: Some(service.namespace.to_string()),
        peers: peers.iter().map(str::to_string).collect(),
    }
}

/// One write to the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusWrite {
    /// Create object `name` (labels, owner) and then set its status.
    Create {
        /// Object name ([`object_name`]).
        name: String,
        /// The Service.
        service: ServiceKey,
        /// Its peers.
        peers: Names,
    },
    /// Set the status, and the labels and owner if needed, of existing object `name`.
    Update {
        /// Object name.
        name: String,
        /// The Service.
        service: ServiceKey,
        /// Its peers.
        peers: Names,
        /// Whether labels and owner must be rewritten too (a label missing, or another owner).
        metadata: bool,
    },
    /// Delete object `name`: its Service is no longer announced from this node, or it is a
    /// duplicate.
    Delete {
        /// Object name.
        name: String,
    },
}

/// The labels of ours on a status object (MetalLB's), as read; no others are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnLabels {
    /// [`LABEL_NODE`].
    pub node: Option<SmolStr>,
    /// [`LABEL_SERVICE_NAME`].
    pub service_name: Option<SmolStr>,
    /// [`LABEL_SERVICE_NAMESPACE`].
    pub service_namespace: Option<SmolStr>,
}

impl OwnLabels {
    /// Ours of `labels`.
    pub fn of(labels: &BTreeMap<String, String>) -> Self {
        let get = |key: &str| labels.get(key).map(SmolStr::new);
        Self {
            node: get(LABEL_NODE),
            service_name: get(LABEL_SERVICE_NAME),
            service_namespace: get(LABEL_SERVICE_NAMESPACE),
        }
    }

    /// What node `node`'s object for `service` carries.
    pub fn for_service(node: &str, service: &ServiceKey) -> Self {
        Self {
            node: Some(node.into()),
            service_name: Some(service.name.clone()),
            service_namespace: Some(service.namespace.clone()),
        }
    }
}

/// What [`plan_writes`] needs of an existing object: one is kept per object of this node, so
/// only what is compared (10k whole objects with their managedFields took ~10 MB).
#[derive(Debug, Clone, PartialEq)]
pub struct Existing<S> {
    /// `metadata.name`.
    pub name: SmolStr,
    /// Our labels of `metadata.labels`.
    pub labels: OwnLabels,
    /// UIDs of `metadata.ownerReferences`.
    pub owner_uids: Vec<String>,
    /// `status` (default when absent).
    pub status: S,
}

impl<S> Existing<S> {
    fn of<K: StatusKind<Status = S>>(o: &K) -> Self {
        let meta = o.meta();
        Self {
            name: SmolStr::new(meta.name.as_deref().unwrap_or_default()),
            labels: meta.labels.as_ref().map(OwnLabels::of).unwrap_or_default(),
            owner_uids: meta
                .owner_references
                .iter()
                .flatten()
                .map(|r| r.uid.clone())
                .collect(),
            status: o.current_status(),
        }
    }
}

fn labels_for(node: &str, service: &ServiceKey) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NODE.to_string(), node.to_string()),
        (LABEL_SERVICE_NAME.to_string(), service.name.to_string()),
        (
            LABEL_SERVICE_NAMESPACE.to_string(),
            service.namespace.to_string(),
        ),
    ])
}

/// The writes that turn `existing` into `desired` for node `node`, whose objects should be
/// owned by exactly the Pod with UID `owner_uid` when given. Pure.
///
/// Only objects labelled with this node count (other nodes' are theirs), and only those that
/// carry both Service labels (MetalLB ignores the others too). Per Service, the object named
/// [`object_name`] is kept if present, else the first by name (adopting MetalLB's); the rest
/// are deleted. Output: creates and updates in Service order, then deletes in name order.
pub fn plan_writes<'a, K: StatusKind>(
    node: &str,
    owner_uid: Option<&str>,
    desired: &DesiredStatuses,
    existing: impl IntoIterator<Item = &'a Existing<K::Status>>,
) -> Vec<StatusWrite>
where
    K::Status: 'a,
{
    let mut by_service: BTreeMap<ServiceKey, Vec<&Existing<K::Status>>> = BTreeMap::new();
    for e in existing {
        if e.labels.node.as_deref() != Some(node) {
            continue;
        }
        let (Some(name), Some(namespace)) = (&e.labels.service_name, &e.labels.service_namespace)
        else {
            continue;
        };
        by_service
            .entry(ServiceKey::new(namespace.clone(), name.clone()))
            .or_default()
            .push(e);
    }
    let mut writes = Vec::new();
    let mut deletes = BTreeSet::new();
    for (service, peers) in desired {
        let own = object_name::<K>(node, service);
        let mut objects = by_service.remove(service).unwrap_or_default();
        objects.sort_by(|a, b| (a.name != own, &a.name).cmp(&(b.name != own, &b.name)));
        let mut objects = objects.into_iter();
        match objects.next() {
            None => writes.push(StatusWrite::Create {
                name: own,
                service: service.clone(),
                peers: peers.clone(),
            }),
            Some(keep) => {
                // Its labels are right: it was found by them. Only its owner can be wrong.
                let metadata = owner_uid.is_some_and(|uid| keep.owner_uids != [uid]);
                if metadata || keep.status != K::status_for(node, service, peers) {
                    writes.push(StatusWrite::Update {
                        name: keep.name.to_string(),
                        service: service.clone(),
                        peers: peers.clone(),
                        metadata,
                    });
                }
            }
        }
        deletes.extend(objects.map(|e| e.name.clone()));
    }
    deletes.extend(by_service.into_values().flatten().map(|e| e.name.clone()));
    writes.extend(deletes.into_iter().map(|name| StatusWrite::Delete {
        name: name.to_string(),
    }));
    writes
}

/// Who writes the objects.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// This node.
    pub node: String,
    /// The speaker's namespace, where the objects live.
    pub namespace: String,
    /// The speaker Pod, set as (non-controller) owner of every object when known.
    pub owner: Option<OwnerReference>,
}

/// An owner reference to the speaker Pod `name` with `uid` (downward API `POD_NAME`/`POD_UID`).
pub fn pod_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: name.into(),
        uid: uid.into(),
        ..OwnerReference::default()
    }
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {namespace}/{name}: {op} failed: {source}")]
pub struct WriteError {
    /// `ServiceBGPStatus` or `ServiceL2Status`.
    pub kind: String,
    /// The object's namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// `create`, `apply status`, `patch metadata` or `delete`.
    pub op: &'static str,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Server-side apply as [`FIELD_MANAGER`], taking over fields another manager set (an adopted
/// MetalLB object's status).
fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

async fn execute<K: StatusKind>(
    api: &Api<K>,
    cfg: &WriterConfig,
    write: StatusWrite,
) -> Result<(), WriteError> {
    let fail = |name: &str, op, source| WriteError {
        kind: K::kind(&()).into_owned(),
        namespace: cfg.namespace.clone(),
        name: name.to_string(),
        op,
        source,
    };
    let (name, service, peers, metadata, create) = match write {
        StatusWrite::Delete { name } => {
            return match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(e) if is_status(&e, 404) => Ok(()),
                Err(e) => Err(fail(&name, "delete", e)),
            };
        }
        StatusWrite::Create {
            name,
            service,
            peers,
        } => (name, service, peers, true, true),
        StatusWrite::Update {
            name,
            service,
            peers,
            metadata,
        } => (name, service, peers, metadata, false),
    };
    let meta = ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(cfg.namespace.clone()),
        labels: Some(labels_for(&cfg.node, &service)),
        owner_references: cfg.owner.clone().map(|o| vec![o]),
        ..ObjectMeta::default()
    };
    if create {
        let object = K::from_meta(meta);
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            // Ours already (a retry, or our cache lagging our own create): set the status.
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(fail(&name, "create", e)),
        }
    } else if metadata {
        let mut patch = json!({"metadata": {"labels": meta.labels}});
        if let Some(owners) = &meta.owner_references {
            patch["metadata"]["ownerReferences"] = json!(owners);
        }
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| fail(&name, "patch metadata", e))?;
    }
    // Server-side apply under one field manager: we own `status`; `peers` has no
    // x-kubernetes-list-type in the CRD, so it is atomic and replaced whole.
    let status = json!({
        "apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "status": K::status_for(&cfg.node, &service, &peers),
    });
    api.patch_status(&name, &apply_params(), &Patch::Apply(&status))
        .await
        .map(|_| ())
        .map_err(|e| fail(&name, "apply status", e))
}

/// Keeps this node's objects of kind `K` equal to the newest value of `desired` (`None`
/// until the reconciler has a plan) until `cancel` or until the sender is gone.
pub async fn run_writer<K: StatusKind>(
    client: Client,
    cfg: WriterConfig,
    mut desired: watch::Receiver<Option<DesiredStatuses>>,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) {
    let api: Api<K> = Api::namespaced(client, &cfg.namespace);
    let kind = K::kind(&()).into_owned();
    // The existing objects as plan_writes reads them, not whole: at 10k Services a reflector
    // held 10k objects with their managedFields (docs/speaker.md, "10k VIPs").
    let mut store = ReducedStore::default();
    let selector = format!("{LABEL_NODE}={}", cfg.node);
    let mut events = watcher(api.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .boxed();
    let mut listed = false;
    let retry_backoff = Backoff::new(RETRY_MIN, RETRY_MAX);
    let mut retry_attempt = 0u32;
    let mut retry_at: Option<Instant> = None;
    let mut said_watch_error = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = desired.changed() => if changed.is_err() { return },
            ev = events.next() => match ev {
                None => return,
                Some(Ok(event)) => {
                    store.apply(&event, |o: &K| Existing::of(o));
                    match event {
                        watcher::Event::InitDone => listed = true,
                        watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                        watcher::Event::Apply(_) | watcher::Event::Delete(_) => {
                            said_watch_error = false
                        }
                    }
                }
                Some(Err(error)) => {
                    if !said_watch_error {
                        tracing::warn!(%error, %kind, "status watch failed; retrying");
                        said_watch_error = true;
                    }
                    continue;
                }
            },
            () = super::kube::sleep_until(retry_at), if retry_at.is_some() => retry_at = None,
        }
        if !listed || retry_at.is_some() {
            continue;
        }
        let writes = {
            let desired = desired.borrow_and_update();
            let Some(desired) = desired.as_ref() else {
                continue;
            };
            let owner_uid = cfg.owner.as_ref().map(|o| o.uid.as_str());
            plan_writes::<K>(&cfg.node, owner_uid, desired, store.values())
        };
        let mut failed = None;
        for write in writes {
            tracing::debug!(?write, %kind, "status write");
            let done = tokio::select! {
                r = execute(&api, &cfg, write) => r,
                () = cancel.cancelled() => return,
            };
            if let Err(error) = done {
                metrics.count_kube_write_error(kind_label(&kind));
                failed = Some(error);
            }
        }
        match failed {
            None => retry_attempt = 0,
            Some(error) => {
                let retry_in = retry_backoff.delay(retry_attempt);
                tracing::warn!(%error, ?retry_in, "status not written; retrying");
                retry_at = Some(Instant::now() + retry_in);
                retry_attempt = retry_attempt.saturating_add(1);
            }
        }
    }
}

/// The metric label of a kind (a `&'static str`, as the metric keeps it).
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "ServiceL2Status" => "ServiceL2Status",
        _ => "ServiceBGPStatus",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "node-a";

    fn svc(name: &str) -> ServiceKey {
        ServiceKey::new("default", name)
    }

    fn peers(names: &[&str]) -> Names {
        names.iter().copied().collect()
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn existing(
        name: &str,
        node: &str,
        service: &ServiceKey,
        peer_names: &[&str],
    ) -> Existing<ServiceBGPStatusStatus> {
        Existing {
            name: name.into(),
            labels: OwnLabels::for_service(node, service),
            owner_uids: Vec::new(),
            status: status_for(node, service, &peers(peer_names)),
        }
    }

    #[test]
    fn object_names_are_stable_distinct_and_valid() {
        let a = object_name::<ServiceBGPStatus>(NODE, &svc("a"));
        assert_eq!(a, object_name::<ServiceBGPStatus>(NODE, &svc("a")));
        assert_ne!(a, object_name::<ServiceBGPStatus>("node-b", &svc("a")));
        assert_ne!(a, object_name::<ServiceBGPStatus>(NODE, &svc("b")));
        // "ab"/"c" and "a"/"bc" must not collide: the parts are separated.
        assert_ne!(
            object_name::<ServiceBGPStatus>(NODE, &ServiceKey::new("ab", "c")),
            object_name::<ServiceBGPStatus>(NODE, &ServiceKey::new("a", "bc"))
        );
        assert!(a.starts_with("bgp-") && a.len() == 20, "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn a_newly_announced_service_is_created() {
        let desired = DesiredStatuses::from([(svc("a"), peers(&["r1", "r2"]))]);
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &[]),
            vec![StatusWrite::Create {
                name: object_name::<ServiceBGPStatus>(NODE, &svc("a")),
                service: svc("a"),
                peers: peers(&["r1", "r2"]),
            }]
        );
    }

    #[test]
    fn an_up_to_date_object_is_left_alone() {
        let desired = DesiredStatuses::from([(svc("a"), peers(&["r1"]))]);
        let have = [existing(
            &object_name::<ServiceBGPStatus>(NODE, &svc("a")),
            NODE,
            &svc("a"),
            &["r1"],
        )];
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &have),
            vec![]
        );
    }

    #[test]
    fn changed_peers_update_the_status_only() {
        let desired = DesiredStatuses::from([(svc("a"), peers(&["r1", "r2"]))]);
        let name = object_name::<ServiceBGPStatus>(NODE, &svc("a"));
        let have = [existing(&name, NODE, &svc("a"), &["r1"])];
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &have),
            vec![StatusWrite::Update {
                name,
                service: svc("a"),
                peers: peers(&["r1", "r2"]),
                metadata: false,
            }]
        );
    }

    #[test]
    fn a_service_no_longer_announced_is_deleted() {
        let have = [
            existing("bgp-x", NODE, &svc("gone"), &["r1"]),
            existing("bgp-y", NODE, &svc("kept"), &["r1"]),
        ];
        let desired = DesiredStatuses::from([(svc("kept"), peers(&["r1"]))]);
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &have),
            vec![StatusWrite::Delete {
                name: "bgp-x".into()
            }]
        );
    }

    #[test]
    fn names_are_sorted_and_unique() {
        let names: Names = ["r2", "r1", "r2"].into_iter().collect();
        assert_eq!(names.iter().collect::<Vec<_>>(), ["r1", "r2"]);
    }

    #[test]
    fn only_our_labels_are_read_and_they_say_whose_object_it_is() {
        let mut labels = labels_for(NODE, &svc("a"));
        labels.insert("app".into(), "x".into());
        assert_eq!(
            OwnLabels::of(&labels),
            OwnLabels::for_service(NODE, &svc("a"))
        );
        let mut stale = existing("bgp-a", NODE, &svc("a"), &["r1"]);
        stale.labels.node = Some(NODE.into());
        stale.labels.service_namespace = Some("default".into());
        let desired = DesiredStatuses::from([(svc("a"), peers(&["r1"]))]);
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &[stale.clone()]),
            vec![],
            "labels as written: nothing to do"
        );
        // Same node and name, another namespace label: that object is another Service's.
        stale.labels.service_namespace = Some("other".into());
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &[stale]),
            vec![
                StatusWrite::Create {
                    name: object_name::<ServiceBGPStatus>(NODE, &svc("a")),
                    service: svc("a"),
                    peers: peers(&["r1"]),
                },
                StatusWrite::Delete {
                    name: "bgp-a".into()
                },
            ]
        );
    }

    #[test]
    fn other_nodes_objects_and_unlabelled_ones_are_not_ours() {
        let mut unlabelled = existing("bgp-u", NODE, &svc("a"), &["r1"]);
        unlabelled.labels.service_name = None;
        let have = [existing("bgp-b", "node-b", &svc("a"), &["r1"]), unlabelled];
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &DesiredStatuses::new(), &have),
            vec![]
        );
    }

    #[test]
    fn metallbs_object_is_adopted_and_duplicates_deleted() {
        // MetalLB's names come from generateName "bgp-"; ours is kept if present, else the
        // first by name, and any other object for the same (Service, node) goes.
        let desired = DesiredStatuses::from([(svc("a"), peers(&["r1"]))]);
        let have = [
            existing("bgp-zzzzz", NODE, &svc("a"), &["r1"]),
            existing("bgp-abcde", NODE, &svc("a"), &["old"]),
        ];
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &have),
            vec![
                StatusWrite::Update {
                    name: "bgp-abcde".into(),
                    service: svc("a"),
                    peers: peers(&["r1"]),
                    metadata: false,
                },
                StatusWrite::Delete {
                    name: "bgp-zzzzz".into()
                },
            ]
        );
        let own = object_name::<ServiceBGPStatus>(NODE, &svc("a"));
        let have = [
            existing("bgp-abcde", NODE, &svc("a"), &["r1"]),
            existing(&own, NODE, &svc("a"), &["r1"]),
        ];
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &have),
            vec![StatusWrite::Delete {
                name: "bgp-abcde".into()
            }]
        );
    }

    #[test]
    fn an_object_of_another_pod_gets_this_pod_as_owner() {
        let desired = DesiredStatuses::from([(svc("a"), peers(&["r1"]))]);
        let name = object_name::<ServiceBGPStatus>(NODE, &svc("a"));
        let mut have = existing(&name, NODE, &svc("a"), &["r1"]);
        have.owner_uids = vec!["old-pod".into()];
        let update = StatusWrite::Update {
            name: name.clone(),
            service: svc("a"),
            peers: peers(&["r1"]),
            metadata: true,
        };
        let have = [have];
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, Some("new-pod"), &desired, &have),
            vec![update]
        );
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, Some("old-pod"), &desired, &have),
            vec![]
        );
        assert_eq!(
            plan_writes::<ServiceBGPStatus>(NODE, None, &desired, &have),
            vec![]
        );
    }

    #[test]
    fn desired_set_holds_only_services_with_peers() {
        use crate::announce::bgp::ServiceStatus;
        use crate::announce::reason::SkipReason;
        use crate::protocol::bgp::announced_from as desired_from;
        let statuses = BTreeMap::from([
            (
                svc("skipped"),
                ServiceStatus::Skipped(SkipReason::NoIpAssigned),
            ),
            (svc("novips"), ServiceStatus::Vips(Default::default())),
        ]);
        assert!(desired_from(&statuses).is_empty());
    }

    #[test]
    fn status_matches_metallbs_field_names() {
        let v =
            serde_json::to_value(status_for(NODE, &svc("a"), &peers(&["r2", "r1"]))).expect("json");
        assert_eq!(
            v,
            json!({"node": NODE, "serviceName": "a", "serviceNamespace": "default", "peers": ["r1", "r2"]})
        );
    }

    mod l2 {
        use super::*;
        use crate::advertiser::Interfaces;
        use crate::announce::reason::SkipReason;
        use crate::l2::election::{Election, L2ServiceStatus, L2VipStatus};
        use crate::protocol::l2::announced_from as desired_from_l2;

        fn l2_existing(
            name: &str,
            service: &ServiceKey,
            ifs: &[&str],
        ) -> Existing<ServiceL2StatusStatus> {
            Existing {
                name: name.into(),
                labels: OwnLabels::for_service(NODE, service),
                owner_uids: Vec::new(),
                status: ServiceL2Status::status_for(NODE, service, &peers(ifs)),
            }
        }

        fn vip(ip: &str, status: L2VipStatus) -> (std::net::IpAddr, (Election, L2VipStatus)) {
            let winner = match status {
                L2VipStatus::Owner { .. } => NODE,
                L2VipStatus::NotOwner(_) => "node-b",
            };
            (
                ip.parse().expect("ip"),
                (
                    Election {
                        ranking: vec![winner.into()],
                    },
                    status,
                ),
            )
        }

        #[test]
        fn only_services_with_a_vip_owned_here_are_desired_with_their_interfaces() {
            let statuses = BTreeMap::from([
                (
                    svc("skipped"),
                    L2ServiceStatus::Skipped(SkipReason::NoIpAssigned),
                ),
                (
                    svc("elsewhere"),
                    L2ServiceStatus::Vips(BTreeMap::from([vip(
                        "192.0.2.1",
                        L2VipStatus::NotOwner(SkipReason::NoIpAssigned),
                    )])),
                ),
                (
                    svc("named"),
                    L2ServiceStatus::Vips(BTreeMap::from([
                        vip(
                            "192.0.2.2",
                            L2VipStatus::Owner {
                                interfaces: Interfaces::Only(set(&["eth1", "eth0"])),
                            },
                        ),
                        vip(
                            "2001:db8::2",
                            L2VipStatus::Owner {
                                interfaces: Interfaces::Only(set(&["eth2"])),
                            },
                        ),
                    ])),
                ),
                (
                    svc("all"),
                    L2ServiceStatus::Vips(BTreeMap::from([vip(
                        "192.0.2.3",
                        L2VipStatus::Owner {
                            interfaces: Interfaces::All,
                        },
                    )])),
                ),
            ]);
            assert_eq!(
                desired_from_l2(&statuses),
                DesiredStatuses::from([
                    (svc("all"), Names::default()),
                    (svc("named"), peers(&["eth0", "eth1", "eth2"])),
                ])
            );
        }

        #[test]
        fn l2_objects_are_created_updated_and_deleted_under_their_own_prefix() {
            let own = object_name::<ServiceL2Status>(NODE, &svc("a"));
            assert!(own.starts_with("l2-") && own.len() == 19, "{own}");
            assert_ne!(own, object_name::<ServiceBGPStatus>(NODE, &svc("a")));
            let desired =
                DesiredStatuses::from([(svc("a"), peers(&["eth0"])), (svc("b"), peers(&[]))]);
            let have = [
                l2_existing(&own, &svc("a"), &["eth1"]),
                l2_existing("l2-gone", &svc("gone"), &[]),
            ];
            assert_eq!(
                plan_writes::<ServiceL2Status>(NODE, None, &desired, &have),
                vec![
                    StatusWrite::Update {
                        name: own,
                        service: svc("a"),
                        peers: peers(&["eth0"]),
                        metadata: false,
                    },
                    StatusWrite::Create {
                        name: object_name::<ServiceL2Status>(NODE, &svc("b")),
                        service: svc("b"),
                        peers: peers(&[]),
                    },
                    StatusWrite::Delete {
                        name: "l2-gone".into()
                    },
                ]
            );
        }

        #[test]
        fn l2_status_matches_metallbs_field_names() {
            let v = serde_json::to_value(ServiceL2Status::status_for(
                NODE,
                &svc("a"),
                &peers(&["eth0"]),
            ))
            .expect("json");
            assert_eq!(
                v,
                json!({"node": NODE, "serviceName": "a", "serviceNamespace": "default",
                       "interfaces": [{"name": "eth0"}]})
            );
        }
    }
}
