//! The seam between the speaker's loop and what it announces with: a [`Protocol`] (BGP, Layer 2)
//! turns the validated configuration and the kept cluster into a desired state for its own
//! [`Advertiser`](crate::advertiser::Advertiser), and reports per Service in a form the loop can
//! pass on without knowing the protocol, the way MetalLB's speaker loops over its `Protocol`
//! handlers.
//!
//! ```text
//!  sources ──mpsc<SourceUpdate>──▶ daemon::run ─ Reconciler ─ config (last good), kept Cluster
//!                                     ▲  │   for each protocol:
//!  protocol tasks ──mpsc<Wake>────────┘  └─▶ Protocol::update(&Config, &Cluster, &ChangeSet)
//!  (L2: the gossip's live set        │          ├─▶ its Advertiser::set_desired (whole state)
//!   changed, see daemon::l2)         │          └─▶ its metrics
//!                                    └─▶ reports, for every protocol alike:
//!                                          status file: status_file_key() ─ status_entries()
//!                                          Kubernetes:  announced() ─ watch ─ kube_status writer
//! ```
//!
//! A source update changes the kept inputs and says what changed ([`ChangeSet`]); every
//! protocol is then updated with it. A protocol's own inputs (the Layer 2 live set) change
//! without any source update: the protocol's task sends a [`Wake`](crate::channels::Wake)
//! naming it, and the loop updates that protocol alone with [`ChangeSet::all`] and the kept
//! inputs. Both channels are read by the same loop, so a protocol never runs concurrently with
//! a change of the inputs it reads.
//!
//! Adding a protocol is implementing this trait and registering it with the reconciler; the
//! loop, the reports and the other protocols stay as they are.

pub mod bgp;
pub mod l2;

use std::any::Any;
use std::collections::BTreeMap;

use ferrolb_api::model::Config;
use serde_json::Value;

use crate::announce::change::ChangeSet;
use crate::announce::drain::{self, Drain, DrainPhase};
use crate::announce::input::{Cluster, ServiceKey, SmolStr};
use crate::announce::SpeakerOptions;
use crate::channels::Wake;

/// One way of making VIPs reachable via this node, driven by the reconcile loop.
pub trait Protocol: Send {
    /// A stable name (`"bgp"`, `"layer2"`): what a [`Wake`](crate::channels::Wake) names and
    /// what the reports are keyed by.
    fn name(&self) -> &'static str;

    /// Recomputes what `changes` may have changed, from the configuration in force and the kept
    /// cluster, hands the whole desired state to the protocol's advertiser when it differs from
    /// the last one accepted, and returns the Services whose report changed.
    fn update(
        &mut self,
        config: &Config,
        cluster: &Cluster,
        changes: &ChangeSet,
    ) -> Vec<ServiceKey>;

    /// Whether the advertiser has accepted a desired state. Kubernetes reports are written only
    /// after: before it, an empty set would delete every object a previous run wrote.
    fn has_plan(&self) -> bool;

    /// The key of this protocol's per-Service reports in the standalone status file.
    fn status_file_key(&self) -> &'static str;

    /// The per-Service reports as JSON, `namespace/name` first, built one at a time while the
    /// status file is written.
    fn status_entries(&self) -> Box<dyn Iterator<Item = (String, Value)> + '_>;

    /// The Services this node announces with this protocol and what the Kubernetes status
    /// object of each names (BGP: the peers; Layer 2: the interfaces).
    fn announced(&self) -> DesiredStatuses;

    /// For tests and callers that know the concrete type (the reconciler's `protocol::<P>()`).
    fn as_any(&self) -> &dyn Any;
}

/// Per Service this node announces: the names its status object lists (BGPPeers, or for L2
/// the interfaces, empty meaning every interface that can answer).
pub type DesiredStatuses = BTreeMap<ServiceKey, Names>;

/// A sorted set of names without duplicates, as compact as a list: one is kept per announced
/// Service, and 10k one-element `BTreeSet<String>`s took ~3 MB (docs/speaker.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names(Box<[SmolStr]>);

impl Names {
    /// The names in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(SmolStr::as_str)
    }

    /// No name.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Into<SmolStr>> FromIterator<T> for Names {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut names: Vec<SmolStr> = iter.into_iter().map(Into::into).collect();
        names.sort();
        names.dedup();
        Self(names.into_boxed_slice())
    }
}

/// Logs the report of each Service in `changed` (as the incremental engines return them): its
/// new status, or that it is gone.
pub(crate) fn log_reports<S>(
    protocol: &str,
    changed: &[ServiceKey],
    statuses: &BTreeMap<ServiceKey, S>,
    describe: impl Fn(&S) -> String,
) {
    for key in changed {
        let span = tracing::info_span!("service", namespace = %key.namespace, name = %key.name);
        match statuses.get(key) {
            Some(st) => {
                span.in_scope(|| tracing::info!(protocol, status = %describe(st), "service status"))
            }
            None => span.in_scope(|| tracing::info!(protocol, "service gone; withdrawn")),
        }
    }
}

/// A protocol's view of its node's drain (announce::drain): the phase at the last update, and
/// the timer that wakes the loop (a [`Wake`] naming the protocol) when the drain period ends.
#[derive(Debug)]
pub(crate) struct DrainWatch {
    protocol: &'static str,
    drain: Drain,
    phase: DrainPhase,
    wake: Option<tokio::sync::mpsc::Sender<Wake>>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl DrainWatch {
    /// No drain yet; drains take [`drain::DEFAULT_DRAIN_PERIOD`] and wake nobody until
    /// [`DrainWatch::set`].
    pub(crate) fn new(protocol: &'static str) -> Self {
        Self {
            protocol,
            drain: Drain::new(drain::DEFAULT_DRAIN_PERIOD),
            phase: DrainPhase::Serving,
            wake: None,
            timer: None,
        }
    }

    /// Drains take `period`; `wake` is told when one ends.
    pub(crate) fn set(
        &mut self,
        period: std::time::Duration,
        wake: tokio::sync::mpsc::Sender<Wake>,
    ) {
        self.drain = Drain::new(period);
        self.wake = Some(wake);
    }

    /// The phase at the last [`DrainWatch::observe`].
    pub(crate) fn phase(&self) -> DrainPhase {
        self.phase
    }

    /// Takes the node's drain signal from `cluster` (tokio's clock, std's outside a runtime, so
    /// tests can run a drain on a paused clock). Returns `Some(draining)` when the node
    /// entered or left its drain period: the caller decides every Service again with
    /// [`SpeakerOptions::draining`] set so.
    pub(crate) fn observe(&mut self, cluster: &Cluster, opts: &SpeakerOptions) -> Option<bool> {
        let now = tokio::time::Instant::now().into_std();
        let requested = cluster
            .nodes
            .get(opts.node_name.as_str())
            .map(|n| drain::drain_requested(n, opts.ignore_exclude_lb));
        let phase = self.drain.observe(requested, now);
        if phase == self.phase {
            return None;
        }
        let protocol = self.protocol;
        match phase {
            DrainPhase::Serving => {
                tracing::info!(protocol, "drain signal gone: announcing normally")
            }
            DrainPhase::Draining { ends } => {
                tracing::info!(
                    protocol,
                    seconds = self.drain.period.as_secs(),
                    "drain signal: handing over, withdrawing after the drain period"
                );
                self.wake_at(ends);
            }
            DrainPhase::Drained if matches!(self.phase, DrainPhase::Draining { .. }) => {
                tracing::info!(protocol, "drain period over: withdrawn")
            }
            DrainPhase::Drained => {
                tracing::info!(
                    protocol,
                    "drain signal present from the start: not announcing"
                )
            }
        }
        let was = matches!(self.phase, DrainPhase::Draining { .. });
        let draining = matches!(phase, DrainPhase::Draining { .. });
        self.phase = phase;
        (was != draining).then_some(draining)
    }

    /// Wakes the loop at `ends` (a deadline a task awaits), replacing an earlier timer.
    fn wake_at(&mut self, ends: std::time::Instant) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        let (Some(wake), Ok(rt)) = (self.wake.clone(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let name = self.protocol;
        self.timer = Some(rt.spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(ends)).await;
            let _ = wake.send(Wake(name)).await;
        }));
    }
}
