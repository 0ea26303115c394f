//! Layer 2 mode in the daemon: the election re-run on every snapshot and every liveness change,
//! the gossip and the ARP/NDP backend started and stopped, and the per-Service L2 report.
//!
//! ```text
//!  Reconciler::on_snapshot ──(Config, Cluster)──▶ L2Reconciler ── compute_l2 ──▶ L2Advertiser
//!        │                                          ▲   │                         (backend::l2)
//!        │                  SourceUpdate::Liveness ─┘   └─ nodes: watch<NodeAddrs> ─▶ Memberlist
//!        └─ mpsc<SourceUpdate> ◀── forward_liveness ◀── live: watch<Liveness> ◀──────┘
//! ```
//!
//! Liveness arrives on the reconcile loop's own source channel, so it is ordered with
//! snapshots and the loop needs no second input.
//!
//! *Guarantees*: the L2 advertiser, like BGP's, sees only whole states and only when they
//! change. The Cluster of a snapshot is kept (to re-run the election when a speaker dies) only
//! while some L2Advertisement exists; BGP-only configurations keep nothing, as before.
//!
//! *Caveats*: the live set is this speaker's view; two speakers can briefly disagree while a
//! death spreads by gossip (tens of milliseconds here), during which two nodes may answer or
//! none does. The gratuitous announcements of the new owner settle the neighbours' caches.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use ferrolb_api::model::Config;
use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::advertiser::{Advertiser, Interfaces, L2Desired};
use crate::announce::input::{Cluster, ServiceKey};
use crate::announce::SpeakerOptions;
use crate::backend::l2::{L2Backend, L2BackendOptions};
use crate::channels::SourceUpdate;
use crate::l2::election::{compute_l2, L2ServiceStatus, L2VipStatus};
use crate::l2::memberlist::auth::{SecretError, SecretKey};
use crate::l2::memberlist::{Liveness, Memberlist, MemberlistConfig, NodeAddrs};

/// MetalLB's environment variable for the memberlist secret.
pub const SECRET_ENV: &str = "METALLB_ML_SECRET_KEY";

/// Holds what the Layer 2 election needs between snapshots and drives the L2 advertiser.
pub struct L2Reconciler {
    opts: SpeakerOptions,
    advertiser: Box<dyn Advertiser<Desired = L2Desired>>,
    /// The last snapshot's inputs, only while an L2Advertisement exists.
    inputs: Option<(Config, Cluster)>,
    live: Liveness,
    applied: Option<L2Desired>,
    statuses: BTreeMap<ServiceKey, L2ServiceStatus>,
    nodes_tx: Option<watch::Sender<NodeAddrs>>,
}

impl std::fmt::Debug for L2Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2Reconciler")
            .field("node", &self.opts.node_name)
            .field("live", &self.live)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

impl L2Reconciler {
    /// A reconciler for `opts.node_name`. `nodes_tx`, when set, receives the Nodes' addresses
    /// of every snapshot (the gossip's member list).
    pub fn new(
        opts: SpeakerOptions,
        advertiser: impl Advertiser<Desired = L2Desired> + 'static,
        nodes_tx: Option<watch::Sender<NodeAddrs>>,
    ) -> Self {
        Self {
            opts,
            advertiser: Box::new(advertiser),
            inputs: None,
            live: None,
            applied: None,
            statuses: BTreeMap::new(),
            nodes_tx,
        }
    }

    /// The last per-Service L2 report.
    pub fn statuses(&self) -> &BTreeMap<ServiceKey, L2ServiceStatus> {
        &self.statuses
    }

    /// The VIPs this node answers for, per Service, for `metallb_speaker_announced`.
    pub fn announced(&self) -> std::collections::BTreeSet<crate::metrics::L2Announced> {
        self.statuses
            .iter()
            .filter_map(|(key, st)| match st {
                L2ServiceStatus::Vips(vips) => Some((key, vips)),
                L2ServiceStatus::Skipped(_) => None,
            })
            .flat_map(|(key, vips)| {
                vips.iter()
                    .filter(|(_, (_, st))| matches!(st, L2VipStatus::Owner { .. }))
                    .map(move |(ip, _)| crate::metrics::L2Announced {
                        service: format!("{}/{}", key.namespace, key.name),
                        ip: *ip,
                    })
            })
            .collect()
    }

    /// How many speakers the gossip sees alive (`None`: gossip off or not settled).
    pub fn live_members(&self) -> Option<usize> {
        self.live.as_ref().map(std::collections::BTreeSet::len)
    }

    /// The desired state last accepted by the advertiser.
    pub fn applied(&self) -> Option<&L2Desired> {
        self.applied.as_ref()
    }

    /// A new snapshot (with its configuration in force). Returns the Services whose L2 report
    /// changed.
    pub fn on_snapshot(&mut self, config: &Config, cluster: Cluster) -> Vec<ServiceKey> {
        if let Some(tx) = &self.nodes_tx {
            let nodes: NodeAddrs = cluster
                .nodes
                .values()
                .map(|n| (n.name.to_string(), n.internal_addresses.clone()))
                .collect();
            tx.send_if_modified(|cur| {
                let changed = *cur != nodes;
                *cur = nodes;
                changed
            });
        }
        self.inputs = (!config.l2_advertisements.is_empty()).then(|| (config.clone(), cluster));
        self.recompute()
    }

    /// The gossip's live set changed. Returns the Services whose L2 report changed.
    pub fn on_liveness(&mut self, live: Liveness) -> Vec<ServiceKey> {
        if self.live == live {
            return Vec::new();
        }
        self.live = live;
        self.recompute()
    }

    fn recompute(&mut self) -> Vec<ServiceKey> {
        let (desired, statuses) = match &self.inputs {
            Some((config, cluster)) => {
                let plan = compute_l2(config, cluster, &self.opts, self.live.as_ref());
                (plan.desired, plan.services)
            }
            None => (L2Desired::default(), BTreeMap::new()),
        };
        if self.applied.as_ref() != Some(&desired) {
            match self.advertiser.set_desired(desired.clone()) {
                Ok(()) => {
                    tracing::info!(vips = ?desired.vips.keys().collect::<Vec<_>>(), "l2: answering for");
                    self.applied = Some(desired);
                }
                Err(error) => tracing::error!(%error, kind = error.metric_label(),
                    "l2 advertiser did not accept the desired state"),
            }
        }
        let mut changed = Vec::new();
        for (key, st) in &statuses {
            if self.statuses.get(key) != Some(st) {
                let span =
                    tracing::info_span!("service", namespace = %key.namespace, name = %key.name);
                span.in_scope(|| tracing::info!(l2 = %summary(st), "service l2 status"));
                changed.push(key.clone());
            }
        }
        changed.extend(
            self.statuses
                .keys()
                .filter(|k| !statuses.contains_key(*k))
                .cloned(),
        );
        self.statuses = statuses;
        changed
    }
}

/// One line for the log.
pub fn summary(status: &L2ServiceStatus) -> String {
    match status {
        L2ServiceStatus::Skipped(reason) => format!("not announced: {reason}"),
        L2ServiceStatus::Vips(vips) => vips
            .iter()
            .map(|(ip, (election, st))| match st {
                L2VipStatus::Owner { .. } => format!("{ip}: announced here"),
                L2VipStatus::NotOwner(reason) => match election.winner() {
                    Some(w) => format!("{ip}: announced by {w}"),
                    None => format!("{ip}: not announced: {reason}"),
                },
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// One Service's L2 report as JSON:
/// `{"announcedHere": bool, "vips": {"<ip>": {"node": "<winner>"|null, "announcedHere": bool,
/// "interfaces": "all"|[..], "reason"?, "reasonCode"?}}}` or `{"announcedHere": false,
/// "reason", "reasonCode"}` when the Service is skipped as a whole.
pub fn service_json(status: &L2ServiceStatus) -> Value {
    match status {
        L2ServiceStatus::Skipped(reason) => json!({
            "announcedHere": false,
            "reason": reason.to_string(),
            "reasonCode": reason.label(),
        }),
        L2ServiceStatus::Vips(vips) => {
            let mut here = false;
            let vips: serde_json::Map<String, Value> = vips
                .iter()
                .map(|(ip, (election, st))| {
                    let v = match st {
                        L2VipStatus::Owner { interfaces } => {
                            here = true;
                            json!({
                                "node": election.winner(),
                                "announcedHere": true,
                                "interfaces": match interfaces {
                                    Interfaces::All => json!("all"),
                                    Interfaces::Only(names) => json!(names),
                                },
                            })
                        }
                        L2VipStatus::NotOwner(reason) => json!({
                            "node": election.winner(),
                            "announcedHere": false,
                            "reason": reason.to_string(),
                            "reasonCode": reason.label(),
                        }),
                    };
                    (ip.to_string(), v)
                })
                .collect();
            json!({ "announcedHere": here, "vips": vips })
        }
    }
}

/// A status document with the L2 reports added under `"l2"` (absent without Layer 2), written
/// one Service at a time like the document it wraps.
pub struct WithL2<'a, D> {
    /// The BGP document ([`super::status::StatusDoc`]); must serialize as a map.
    pub doc: D,
    /// The L2 reports, when Layer 2 runs.
    pub l2: Option<&'a BTreeMap<ServiceKey, L2ServiceStatus>>,
}

struct L2Services<'a>(&'a BTreeMap<ServiceKey, L2ServiceStatus>);

impl Serialize for L2Services<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(self.0.len()))?;
        for (key, status) in self.0 {
            map.serialize_entry(&key.to_string(), &service_json(status))?;
        }
        map.end()
    }
}

impl<D: Serialize> Serialize for WithL2<'_, D> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat<'b, D> {
            #[serde(flatten)]
            doc: &'b D,
            #[serde(skip_serializing_if = "Option::is_none")]
            l2: Option<L2Services<'b>>,
        }
        Flat {
            doc: &self.doc,
            l2: self.l2.map(L2Services),
        }
        .serialize(ser)
    }
}

/// The daemon's Layer 2 settings (flags).
#[derive(Debug, Clone, Default)]
pub struct L2Settings {
    /// UDP port of the gossip; 0 disables it (liveness from Node readiness only).
    pub memberlist_port: u16,
    /// Bind the gossip here instead of the wildcard of the node address's family.
    pub memberlist_bind: Option<SocketAddr>,
    /// File holding the shared secret; else `METALLB_ML_SECRET_KEY`; else none.
    pub memberlist_secret_file: Option<PathBuf>,
    /// Backend settings.
    pub backend: L2BackendOptions,
}

/// Why Layer 2 could not start.
#[derive(Debug, thiserror::Error)]
pub enum L2StartError {
    /// The secret file cannot be read.
    #[error("reading memberlist secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The secret is unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The secret from `file`, else from `env_value` (the environment variable's value).
pub fn load_secret(
    file: Option<&std::path::Path>,
    env_value: Option<std::ffi::OsString>,
) -> Result<Option<SecretKey>, L2StartError> {
    if let Some(path) = file {
        let bytes = std::fs::read(path).map_err(|source| L2StartError::SecretFile {
            path: path.to_path_buf(),
            source,
        })?;
        return Ok(Some(SecretKey::from_bytes(
            &bytes,
            &format!("--memberlist-secret-file {}", path.display()),
        )?));
    }
    match env_value {
        Some(v) if !v.is_empty() => Ok(Some(SecretKey::from_bytes(
            v.as_encoded_bytes(),
            SECRET_ENV,
        )?)),
        _ => Ok(None),
    }
}

/// The running Layer 2 tasks, for shutdown.
#[derive(Debug)]
pub struct L2Running {
    memberlist: Option<Memberlist>,
    backend: L2Backend,
    forwarder: Option<JoinHandle<()>>,
}

impl L2Running {
    /// The gossip's counters for `/metrics`, when gossip runs.
    pub fn memberlist_counters(&self) -> Option<crate::metrics::CountersReader> {
        self.memberlist
            .as_ref()
            .map(|m| Box::new(m.counters_reader()) as crate::metrics::CountersReader)
    }

    /// Leaves the gossip (the others move our VIPs at once) and closes the ARP/NDP sockets.
    pub async fn shutdown(self) {
        if let Some(f) = self.forwarder {
            f.abort();
        }
        if let Some(m) = self.memberlist {
            m.leave().await;
        }
        self.backend.shutdown().await;
    }
}

/// Starts the L2 backend and (unless port 0) the gossip, whose live set is forwarded into the
/// reconcile loop's `source`. Returns the [`L2Reconciler`] to attach to the reconciler.
pub fn start(
    settings: &L2Settings,
    opts: SpeakerOptions,
    source: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
) -> Result<(L2Reconciler, L2Running), L2StartError> {
    let (advertiser, backend) = L2Backend::start(settings.backend.clone());
    if settings.memberlist_port == 0 {
        tracing::info!(
            "memberlist disabled (--memberlist-port 0): L2 liveness from Node readiness"
        );
        let reconciler = L2Reconciler::new(opts, advertiser, None);
        return Ok((
            reconciler,
            L2Running {
                memberlist: None,
                backend,
                forwarder: None,
            },
        ));
    }
    let secret = load_secret(
        settings.memberlist_secret_file.as_deref(),
        std::env::var_os(SECRET_ENV),
    )?;
    let (nodes_tx, nodes_rx) = watch::channel(NodeAddrs::new());
    let config = MemberlistConfig {
        port: settings.memberlist_port,
        bind: settings.memberlist_bind,
        secret,
        ..MemberlistConfig::new(opts.node_name.clone())
    };
    let memberlist = Memberlist::spawn(config, nodes_rx);
    let forwarder = tokio::spawn(forward_liveness(memberlist.live(), source, cancel));
    let reconciler = L2Reconciler::new(opts, advertiser, Some(nodes_tx));
    Ok((
        reconciler,
        L2Running {
            memberlist: Some(memberlist),
            backend,
            forwarder: Some(forwarder),
        },
    ))
}

/// Sends each new live set into the reconcile loop until `cancel` or either side closes.
pub async fn forward_liveness(
    mut live: watch::Receiver<Liveness>,
    source: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            changed = live.changed() => if changed.is_err() { return },
            () = cancel.cancelled() => return,
        }
        let now = live.borrow_and_update().clone();
        if source.send(SourceUpdate::Liveness(now)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::reason::SkipReason;

    #[test]
    fn the_l2_report_is_added_next_to_the_bgp_document_and_absent_without_l2() {
        let bgp = json!({"node": "a", "configStale": false, "services": {}});
        let mut l2 = BTreeMap::new();
        l2.insert(
            ServiceKey::new("ns", "web"),
            L2ServiceStatus::Skipped(SkipReason::NoEndpoints),
        );
        let with: Value = serde_json::to_value(WithL2 {
            doc: &bgp,
            l2: Some(&l2),
        })
        .expect("json");
        assert_eq!(with["node"], "a");
        assert_eq!(with["l2"]["ns/web"]["reasonCode"], "noEndpoints");
        let without: Value = serde_json::to_value(WithL2 {
            doc: &bgp,
            l2: None,
        })
        .expect("json");
        assert_eq!(without, bgp);
    }

    #[test]
    fn the_secret_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").expect("write");
        let from_file = load_secret(Some(&path), Some("from-env".into())).expect("ok");
        assert_eq!(
            from_file,
            Some(SecretKey::from_bytes(b"from-file", "t").expect("key"))
        );
        let from_env = load_secret(None, Some("from-env".into())).expect("ok");
        assert_eq!(
            from_env,
            Some(SecretKey::from_bytes(b"from-env", "t").expect("key"))
        );
        assert_eq!(load_secret(None, None).expect("ok"), None);
        assert!(load_secret(Some(&dir.path().join("missing")), None).is_err());
    }
}
