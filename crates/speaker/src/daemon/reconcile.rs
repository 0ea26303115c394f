//! The reconcile step: source updates in, every [`Protocol`] updated, knowing no protocol.
//!
//! ```text
//!  source (files / API) ──SourceUpdate──▶ Reconciler ── validate ─▶ ConfigState (last good)
//!                                              │ kept Cluster
//!  protocol task ──Wake(name)────────────────▶ │
//!                                              ▼
//!                     for each Protocol: update(&Config, &Cluster, &ChangeSet)
//!                                              └──────▶ per-Service reports (log, file, API)
//! ```
//!
//! *Guarantees*: [`SourceUpdate::Unavailable`] never changes what is announced: a source
//! outage is not a delete (only a snapshot that positively lacks an object withdraws it). A
//! snapshot whose configuration fails validation keeps the last good configuration, combined
//! with the snapshot's (readable) Services, EndpointSlices and Nodes. Protocols are updated
//! only while a configuration is in force, and only when something changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use ferrolb_api::crd::configuration_state::ConfigurationStateStatus;
use ferrolb_api::source::Resources;
use ferrolb_api::state::{Applied, ConfigState};
use ferrolb_api::validate::IgnoredFieldsReport;

use crate::announce::change::ChangeSet;
use crate::announce::input::{Cluster, ServiceKey};
use crate::announce::SpeakerOptions;
use crate::channels::SourceUpdate;
use crate::inputs::kept::{KeptCluster, WatchChanges};
use crate::inputs::Inputs;
use crate::metrics::Metrics;
use crate::protocol::Protocol;

/// Turns the cluster objects of `res` into a [`Cluster`] ([`Inputs::cluster`] of the same
/// objects): the Cluster, warnings for objects left out, whether this node's Node was
/// synthesized.
pub fn cluster_from_resources(res: &Resources, node_name: &str) -> (Cluster, Vec<String>, bool) {
    Inputs::from_resources(res.clone()).cluster(node_name)
}

/// Holds the configuration in force and the kept cluster, and drives every [`Protocol`].
pub struct Reconciler {
    opts: SpeakerOptions,
    config: ConfigState,
    source_error: Option<String>,
    kept: KeptCluster,
    protocols: Vec<Box<dyn Protocol>>,
    metrics: Arc<Metrics>,
    said_synthesized: bool,
    ignored: IgnoredFieldsReport,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("node", &self.opts.node_name)
            .field("generation", &self.config.generation())
            .field(
                "protocols",
                &self.protocols.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// A reconciler for `opts.node_name` with nothing in force and no protocol yet.
    pub fn new(opts: SpeakerOptions, metrics: Arc<Metrics>) -> Self {
        Self {
            config: ConfigState::new(),
            source_error: None,
            kept: KeptCluster::new(opts.node_name.as_str()),
            protocols: Vec::new(),
            metrics,
            said_synthesized: false,
            ignored: IgnoredFieldsReport::new(),
            opts,
        }
    }

    /// Adds a protocol, updated after the ones added before it.
    pub fn with_protocol(mut self, protocol: impl Protocol + 'static) -> Self {
        self.protocols.push(Box::new(protocol));
        self
    }

    /// Every protocol, in the order they were added.
    pub fn protocols(&self) -> &[Box<dyn Protocol>] {
        &self.protocols
    }

    /// The protocol of type `P`, when one was added (tests, the demo).
    pub fn protocol<P: Protocol + 'static>(&self) -> Option<&P> {
        self.protocols
            .iter()
            .find_map(|p| p.as_any().downcast_ref::<P>())
    }

    /// The kept cluster.
    pub fn cluster(&self) -> &Cluster {
        self.kept.cluster()
    }

    /// Whether a configuration is in force.
    pub fn has_config(&self) -> bool {
        self.config.config().is_some()
    }

    /// Why the newest configuration was rejected (empty when it is in force). Kubernetes mode
    /// publishes these as Events.
    pub fn config_errors(&self) -> &[ferrolb_api::error::ConfigError] {
        self.config.errors()
    }

    /// The ConfigurationState status this speaker reports: `Valid`, `Invalid` with the errors
    /// of the newest (rejected) configuration, or `Unknown` before any configuration was read.
    pub fn configuration_state(&self) -> ConfigurationStateStatus {
        ConfigurationStateStatus::from_state(&self.config)
    }

    /// `ferrolb_config_stale`: the newest configuration is rejected or the source is unreadable.
    pub fn is_stale(&self) -> bool {
        self.config.is_stale() || self.source_error.is_some()
    }

    /// Feeds one source update. Returns the Services whose report changed in any protocol
    /// (sorted, empty when nothing was recomputed).
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
            SourceUpdate::Snapshot(inputs) => {
                self.readable();
                let mut changes = self.on_config(inputs.config());
                let (cluster, warnings) = self.kept.load(&inputs);
                changes.merge(cluster);
                self.said(warnings);
                self.update_protocols(None, &changes)
            }
            SourceUpdate::Changes(mut watched) => {
                self.readable();
                let changes = self.on_changes(&mut watched);
                self.update_protocols(None, &changes)
            }
        };
        self.metrics.set_config_stale(self.is_stale());
        changed
    }

    /// Protocol `name` asked for a recompute (its own input changed). Returns the Services
    /// whose report changed.
    pub fn wake(&mut self, name: &str) -> Vec<ServiceKey> {
        self.update_protocols(Some(name), &ChangeSet::all())
    }

    fn readable(&mut self) {
        if self.source_error.take().is_some() {
            tracing::info!("configuration source readable again");
        }
    }

    /// Validates the configuration objects `res` of an update; everything changed when a new
    /// configuration is put in force.
    fn on_config(&mut self, res: &Resources) -> ChangeSet {
        // Validated, put in force or rejected, and logged exactly as the controller does it
        // (accepted-but-ignored fields once per configuration change, each rejection once).
        let applied =
            ferrolb_runtime::config::apply_and_log(&mut self.config, &mut self.ignored, res);
        self.metrics
            .count_config_update(applied, self.config.config().is_some());
        match applied {
            Applied::Changed => ChangeSet::all(),
            Applied::Unchanged | Applied::Rejected => ChangeSet::default(),
        }
    }

    fn on_changes(&mut self, watched: &mut WatchChanges) -> ChangeSet {
        let mut changes = match &watched.config {
            Some(res) => self.on_config(res),
            None => ChangeSet::default(),
        };
        let (cluster, warnings) = self.kept.apply(watched);
        changes.merge(cluster);
        self.said(warnings);
        changes
    }

    /// Logs the objects left out, and a synthesized Node once.
    fn said(&mut self, warnings: Vec<String>) {
        for warning in warnings {
            tracing::warn!(%warning, "object ignored");
        }
        let synthesized = self.kept.synthesized();
        if synthesized && !self.said_synthesized {
            tracing::info!(
                node = %self.opts.node_name,
                "no Node object for this node in the source; using one with no labels"
            );
        }
        self.said_synthesized = synthesized;
    }

    /// Updates every protocol (or only `only`) with `changes`, while a configuration is in
    /// force and something changed.
    fn update_protocols(&mut self, only: Option<&str>, changes: &ChangeSet) -> Vec<ServiceKey> {
        let Some(config) = self.config.config() else {
            return Vec::new();
        };
        if changes.is_empty() {
            return Vec::new();
        }
        self.metrics.set_ready();
        let mut changed = BTreeSet::new();
        for p in &mut self.protocols {
            if only.is_none_or(|name| name == p.name()) {
                changed.extend(p.update(config, self.kept.cluster(), changes));
            }
        }
        changed.into_iter().collect()
    }
}
