//! The reconcile step: source snapshots in, one whole desired state out to the [`Advertiser`].
//!
//! ```text
//!  source (files / API) ──SourceUpdate──▶ Reconciler ── validate ─▶ ConfigState (last good)
//!                                              │ Cluster (this snapshot's objects; not kept)
//!                                              ▼
//!                                   compute_bgp (pure) ─▶ Advertiser::set_desired(whole state)
//!                                              └──────▶ per-Service status (log + file)
//! ```
//!
//! *Guarantees*: the advertiser only ever sees complete states, and only when they differ from
//! the last one accepted. [`SourceUpdate::Unavailable`] never changes what is announced: a
//! source outage is not a delete (only a snapshot that positively lacks an object withdraws
//! it). A snapshot whose configuration fails validation keeps the last good configuration,
//! combined with the snapshot's (readable) Services, EndpointSlices and Nodes.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrolb_api::source::Resources;
use ferrolb_api::state::{Applied, ConfigState};
use ferrolb_api::validate::{validate, IgnoredFieldsReport};

use super::status;
use crate::advertiser::Advertiser;
use crate::announce::bgp::{compute_bgp, BgpDesired, BgpPlan, ServiceStatus};
use crate::announce::input::{Cluster, ServiceKey};
use crate::announce::SpeakerOptions;
use crate::channels::SourceUpdate;
use crate::inputs::Inputs;
use crate::metrics::Metrics;

/// Turns the cluster objects of `res` into a [`Cluster`] ([`Inputs::cluster`] of the same
/// objects): the Cluster, warnings for objects left out, whether this node's Node was
/// synthesized.
pub fn cluster_from_resources(res: &Resources, node_name: &str) -> (Cluster, Vec<String>, bool) {
    Inputs::from_resources(res.clone()).cluster(node_name)
}

/// Holds the last good inputs and drives one [`Advertiser`].
pub struct Reconciler<A: Advertiser<Desired = BgpDesired>> {
    opts: SpeakerOptions,
    config: ConfigState,
    source_error: Option<String>,
    advertiser: A,
    applied: Option<BgpDesired>,
    statuses: BTreeMap<ServiceKey, ServiceStatus>,
    metrics: Arc<Metrics>,
    said_synthesized: bool,
    ignored: IgnoredFieldsReport,
    l2: Option<super::l2::L2Reconciler>,
}

impl<A: Advertiser<Desired = BgpDesired>> Reconciler<A> {
    /// A reconciler for `opts.node_name` with nothing in force yet.
    pub fn new(opts: SpeakerOptions, advertiser: A, metrics: Arc<Metrics>) -> Self {
        Self {
            opts,
            config: ConfigState::new(),
            source_error: None,
            advertiser,
            applied: None,
            statuses: BTreeMap::new(),
            metrics,
            said_synthesized: false,
            ignored: IgnoredFieldsReport::new(),
            l2: None,
        }
    }

    /// Also runs the Layer 2 election on every snapshot and liveness change.
    pub fn with_l2(mut self, l2: super::l2::L2Reconciler) -> Self {
        self.l2 = Some(l2);
        self
    }

    /// The Layer 2 part, when attached.
    pub fn l2(&self) -> Option<&super::l2::L2Reconciler> {
        self.l2.as_ref()
    }

    /// The advertiser (tests read the fake's history).
    pub fn advertiser(&self) -> &A {
        &self.advertiser
    }

    /// The last per-Service report.
    pub fn statuses(&self) -> &BTreeMap<ServiceKey, ServiceStatus> {
        &self.statuses
    }

    /// The desired state last accepted by the advertiser.
    pub fn applied(&self) -> Option<&BgpDesired> {
        self.applied.as_ref()
    }

    /// Why the newest configuration was rejected (empty when it is in force). Kubernetes mode
    /// publishes these as Events.
    pub fn config_errors(&self) -> &[ferrolb_api::error::ConfigError] {
        self.config.errors()
    }

    /// `ferrolb_config_stale`: the newest configuration is rejected or the source is unreadable.
    pub fn is_stale(&self) -> bool {
        self.config.is_stale() || self.source_error.is_some()
    }

    /// Feeds one source update. Returns the Services whose report changed (empty when nothing
    /// was recomputed).
    pub fn apply(&mut self, update: SourceUpdate) -> Vec<ServiceKey> {
        let changed = match update {
            SourceUpdate::Unavailable(error) => {
                if self.source_error.as_deref() != Some(error.as_str()) {
                    tracing::error!(
                        %error,
                        "configuration source unreadable; keeping the last good state (routes stay)"
                    );
                }
                self.source_error = Some(error);
                Vec::new()
            }
            SourceUpdate::Snapshot(res) => {
                if self.source_error.take().is_some() {
                    tracing::info!("configuration source readable again");
                }
                self.on_snapshot(&res)
            }
            SourceUpdate::Liveness(live) => self
                .l2
                .as_mut()
                .map(|l2| l2.on_liveness(live))
                .unwrap_or_default(),
        };
        self.metrics.set_config_stale(self.is_stale());
        changed
    }

    fn on_snapshot(&mut self, inputs: &Inputs) -> Vec<ServiceKey> {
        let res = inputs.config();
        let applied = self.config.apply(validate(res));
        // Issue 9: accepted-but-ignored fields are said once per configuration change.
        for ignored in self.ignored.to_report(applied, res) {
            tracing::warn!(%ignored, "configuration field accepted but ignored");
        }
        match applied {
            Applied::Changed => tracing::info!(
                generation = self.config.generation(),
                "configuration put in force"
            ),
            Applied::Unchanged => {}
            Applied::Rejected => {
                for error in self.config.errors() {
                    tracing::error!(%error, "configuration rejected; the last good one stays in force");
                }
            }
        }
        let (cluster, warnings, synthesized) = inputs.cluster(&self.opts.node_name);
        for warning in warnings {
            tracing::warn!(%warning, "object ignored");
        }
        if synthesized && !self.said_synthesized {
            tracing::info!(
                node = %self.opts.node_name,
                "no Node object for this node in the source; using one with no labels"
            );
        }
        self.said_synthesized = synthesized;
        // The cluster is not kept: only a snapshot recomputes, and it brings a whole new one.
        // Keeping it cost ~8 MiB at 10k Services (docs/speaker.md).
        let Some(config) = self.config.config() else {
            return Vec::new();
        };
        let plan: BgpPlan = compute_bgp(config, &cluster, &self.opts);
        // Layer 2 keeps the cluster (only with an L2Advertisement) to re-elect on liveness.
        let l2_changed = match &mut self.l2 {
            Some(l2) => l2.on_snapshot(config, cluster),
            None => Vec::new(),
        };
        let mut changed = self.put_in_force(plan);
        changed.extend(l2_changed);
        changed
    }

    fn put_in_force(&mut self, plan: BgpPlan) -> Vec<ServiceKey> {
        self.metrics.set_ready();
        for c in &plan.conflicts {
            tracing::warn!(peer = %c.peer, prefix = %c.prefix, chosen = ?c.chosen,
                "advertisements disagree on localPref; announcing the highest");
        }
        if self.applied.as_ref() != Some(&plan.desired) {
            match self.advertiser.set_desired(plan.desired.clone()) {
                Ok(()) => self.applied = Some(plan.desired),
                Err(error) => tracing::error!(%error, kind = error.metric_label(),
                    "advertiser did not accept the desired state"),
            }
        }
        let mut changed = Vec::new();
        for (key, st) in &plan.services {
            if self.statuses.get(key) != Some(st) {
                let span =
                    tracing::info_span!("service", namespace = %key.namespace, name = %key.name);
                span.in_scope(|| tracing::info!(status = %status::summary(st), "service status"));
                changed.push(key.clone());
            }
        }
        for key in self.statuses.keys() {
            if !plan.services.contains_key(key) {
                let span =
                    tracing::info_span!("service", namespace = %key.namespace, name = %key.name);
                span.in_scope(|| tracing::info!("service gone; withdrawn"));
                changed.push(key.clone());
            }
        }
        self.statuses = plan.services;
        changed
    }
}
