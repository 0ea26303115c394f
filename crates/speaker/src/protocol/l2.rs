//! The Layer 2 [`Protocol`]: the owner election ([`compute_l2`]) over the kept inputs and the
//! gossip's live set, its desired state to the ARP/NDP [`Advertiser`] (backend::l2), and the
//! per-Service L2 report (status file section `l2`, ServiceL2Status objects).
//!
//! ```text
//!  Reconciler ──(Config, Cluster, ChangeSet)──▶ L2Protocol ── compute_l2 ──▶ L2Advertiser
//!                                                 ▲   │                        (backend::l2)
//!         live: watch<Liveness> (read at update) ─┘   └─ nodes: watch<NodeAddrs> ─▶ Memberlist
//!  Memberlist ─ live ─▶ daemon::l2::forward_liveness ─ mpsc<Wake("layer2")> ─▶ Reconciler
//! ```
//!
//! *Guarantees*: the L2 advertiser, like BGP's, sees only whole states and only when they
//! change. It keeps no cluster of its own: a liveness change wakes the loop, which updates it
//! with the inputs the loop keeps.
//!
//! *Caveats*: the live set is this speaker's view; two speakers can briefly disagree while a
//! death spreads by gossip (tens of milliseconds here), during which two nodes may answer or
//! none does. The gratuitous announcements of the new owner settle the neighbours' caches.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferrolb_api::model::Config;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::{log_reports, DesiredStatuses, DrainWatch, Protocol};
use crate::advertiser::{Advertiser, Interfaces, L2Desired};
use crate::announce::change::ChangeSet;
use crate::announce::drain::DrainPhase;
use crate::announce::input::{Cluster, ServiceKey};
use crate::announce::SpeakerOptions;
use crate::channels::Wake;
use crate::l2::election::{L2Announcer, L2ServiceStatus, L2VipStatus};
use crate::l2::memberlist::{Liveness, NodeAddrs};
use crate::metrics::{L2Announced, Metrics};

/// [`Protocol::name`] of Layer 2, what its [`Wake`](crate::channels::Wake)s name.
pub const NAME: &str = "layer2";

/// Drives the Layer 2 advertiser from the loop.
pub struct L2Protocol {
    opts: SpeakerOptions,
    advertiser: Box<dyn Advertiser<Desired = L2Desired>>,
    /// The gossip's live set, when gossip runs.
    live_rx: Option<watch::Receiver<Liveness>>,
    /// The live set of the last update.
    live: Liveness,
    applied: Option<L2Desired>,
    /// The election, kept up to date one Service at a time (its reference: `compute_l2`).
    announcer: L2Announcer,
    /// Whether the configuration had an L2Advertisement at the last update.
    elected: bool,
    nodes_tx: Option<watch::Sender<NodeAddrs>>,
    metrics: Option<Arc<Metrics>>,
    /// This node's drain: during the drain period it stays a candidate in its own election
    /// (it keeps answering) while every other speaker already leaves it out, so the next owner
    /// takes the VIPs and sends its gratuitous ARP / unsolicited NA first.
    drain: DrainWatch,
}

impl std::fmt::Debug for L2Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2Protocol")
            .field("node", &self.opts.node_name)
            .field("live", &self.live)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

impl L2Protocol {
    /// Layer 2 for `opts.node_name`. `nodes_tx`, when set, receives the Nodes' addresses at
    /// every update (the gossip's member list).
    pub fn new(
        opts: SpeakerOptions,
        advertiser: impl Advertiser<Desired = L2Desired> + 'static,
        nodes_tx: Option<watch::Sender<NodeAddrs>>,
    ) -> Self {
        Self {
            announcer: L2Announcer::new(opts.clone()),
            opts,
            advertiser: Box::new(advertiser),
            live_rx: None,
            live: None,
            applied: None,
            elected: false,
            nodes_tx,
            metrics: None,
            drain: DrainWatch::new(NAME),
        }
    }

    /// Drains take `period`, and `wake` gets a [`Wake`] for this protocol when one ends.
    pub fn with_drain(
        mut self,
        period: std::time::Duration,
        wake: tokio::sync::mpsc::Sender<Wake>,
    ) -> Self {
        self.drain.set(period, wake);
        self
    }

    /// The drain phase at the last update.
    pub fn drain_phase(&self) -> DrainPhase {
        self.drain.phase()
    }

    /// Elects among the speakers `live` says are alive (the gossip's view), read at each
    /// update; without it, Node readiness alone decides.
    pub fn with_liveness(mut self, live: watch::Receiver<Liveness>) -> Self {
        self.live_rx = Some(live);
        self
    }

    /// Publishes `metallb_speaker_announced` and `ferrolb_memberlist_members` after each
    /// update.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The last per-Service L2 report.
    pub fn statuses(&self) -> &BTreeMap<ServiceKey, L2ServiceStatus> {
        self.announcer.statuses()
    }

    /// The VIPs this node answers for, per Service, for `metallb_speaker_announced`.
    pub fn announced_vips(&self) -> BTreeSet<L2Announced> {
        self.announcer
            .statuses()
            .iter()
            .filter_map(|(key, st)| match st {
                L2ServiceStatus::Vips(vips) => Some((key, vips)),
                L2ServiceStatus::Skipped(_) => None,
            })
            .flat_map(|(key, vips)| {
                vips.iter()
                    .filter(|(_, (_, st))| matches!(st, L2VipStatus::Owner { .. }))
                    .map(move |(ip, _)| L2Announced {
                        service: format!("{}/{}", key.namespace, key.name),
                        ip: *ip,
                    })
            })
            .collect()
    }

    /// How many speakers the gossip sees alive (`None`: gossip off or not settled).
    pub fn live_members(&self) -> Option<usize> {
        self.live.as_ref().map(BTreeSet::len)
    }

    /// The desired state last accepted by the advertiser.
    pub fn applied(&self) -> Option<&L2Desired> {
        self.applied.as_ref()
    }

    /// L2 whose last report is `statuses` (the status file's tests).
    #[cfg(test)]
    pub(crate) fn with_statuses(
        opts: SpeakerOptions,
        advertiser: impl Advertiser<Desired = L2Desired> + 'static,
        statuses: BTreeMap<ServiceKey, L2ServiceStatus>,
    ) -> Self {
        Self {
            announcer: L2Announcer::with_statuses(opts.clone(), statuses),
            ..Self::new(opts, advertiser, None)
        }
    }
}

impl Protocol for L2Protocol {
    fn name(&self) -> &'static str {
        NAME
    }

    fn update(
        &mut self,
        config: &Config,
        cluster: &Cluster,
        changes: &ChangeSet,
    ) -> Vec<ServiceKey> {
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
        // A liveness change moves owners of any Service: everything is re-elected then, and
        // also when the configuration gains or loses its L2Advertisements.
        let mut changes = std::borrow::Cow::Borrowed(changes);
        if let Some(rx) = &self.live_rx {
            let live = rx.borrow().clone();
            if live != self.live {
                self.live = live;
                changes = std::borrow::Cow::Owned(ChangeSet::all());
            }
        }
        if let Some(draining) = self.drain.observe(cluster, &self.opts) {
            self.announcer = L2Announcer::new(SpeakerOptions {
                draining,
                ..self.opts.clone()
            });
            changes = std::borrow::Cow::Owned(ChangeSet::all());
        }
        let elect = !config.l2_advertisements.is_empty();
        if elect != self.elected {
            self.elected = elect;
            changes = std::borrow::Cow::Owned(ChangeSet::all());
        }
        let changed = if elect {
            self.announcer
                .update(config, cluster, self.live.as_ref(), &changes)
        } else if changes.all {
            // Nothing to elect: a BGP-only configuration reports no Service here.
            let gone: Vec<ServiceKey> = self.announcer.statuses().keys().cloned().collect();
            self.announcer = L2Announcer::new(self.opts.clone());
            gone
        } else {
            Vec::new()
        };
        let desired = if elect {
            self.announcer.desired().clone()
        } else {
            L2Desired::default()
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
        log_reports(NAME, &changed, self.announcer.statuses(), summary);
        if let Some(metrics) = &self.metrics {
            metrics.set_l2(
                &self.opts.node_name,
                self.announced_vips(),
                self.live_members(),
            );
        }
        changed
    }

    fn has_plan(&self) -> bool {
        self.applied.is_some()
    }

    fn status_file_key(&self) -> &'static str {
        "l2"
    }

    fn status_entries(&self) -> Box<dyn Iterator<Item = (String, Value)> + '_> {
        Box::new(
            self.announcer
                .statuses()
                .iter()
                .map(|(key, st)| (key.to_string(), service_json(st))),
        )
    }

    fn announced(&self) -> DesiredStatuses {
        announced_from(self.announcer.statuses())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The ServiceL2Status set of a per-Service report: Services with at least one VIP this node owns, with the interfaces named by the
/// L2Advertisements (empty when any applies to every interface, as the set is then decided
/// by the interfaces usable at answer time).
pub fn announced_from(statuses: &BTreeMap<ServiceKey, L2ServiceStatus>) -> DesiredStatuses {
    statuses
        .iter()
        .filter_map(|(key, st)| {
            let L2ServiceStatus::Vips(vips) = st else {
                return None;
            };
            let mut owned = false;
            let mut all = false;
            let mut names = BTreeSet::new();
            for (_, vip) in vips.values() {
                if let L2VipStatus::Owner { interfaces } = vip {
                    owned = true;
                    match interfaces {
                        Interfaces::All => all = true,
                        Interfaces::Only(only) => names.extend(only.iter().cloned()),
                    }
                }
            }
            if all {
                names.clear();
            }
            owned.then(|| (key.clone(), names.into_iter().collect()))
        })
        .collect()
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
