//! Config apply-and-report: what both daemons do when a configuration snapshot arrives.
//!
//! ```text
//!  snapshot (Resources) ─▶ ConfigApplier::apply ─ validate ─▶ ConfigState (last good)
//!                              │ (pure) ApplyReport ─ log_lines ─▶ LogLine ─ emit ─▶ tracing
//!                              └─▶ Rejection (errors + UIDs) ─▶ events::rejection_events
//! ```
//!
//! One applier, one set of log lines: the same snapshot gives the same lines (level, message,
//! fields) from the controller and the speaker, because both call [`ConfigApplier::apply`] and
//! every line comes from [`LogLine`]. The lines are:
//!
//! - WARN `configuration field accepted but ignored` `ignored=<IgnoredField>`, one per field,
//!   when a configuration is put in force or its ignored fields change ([`IgnoredFieldsReport`]);
//! - INFO `configuration put in force` `generation=<n>` for a new, different configuration;
//! - ERROR `configuration rejected; the last good one stays in force` `error=<ConfigError>`,
//!   one per error, once per distinct error list (a rejected configuration resent with every
//!   Service change is not logged again; a different list, or the same one after a valid
//!   configuration, is). ERROR, as MetalLB logs a configuration it fails to parse.
//!
//! An unchanged valid configuration logs nothing.

use std::collections::BTreeMap;

use ferrolb_api::error::ConfigError;
use ferrolb_api::model::Config;
use ferrolb_api::source::Resources;
use ferrolb_api::state::{Applied, ConfigState};
use ferrolb_api::validate::{validate, IgnoredField, IgnoredFieldsReport};

use crate::events::{config_uids, Rejection};

/// The message of an accepted configuration.
pub const MSG_ACCEPTED: &str = "configuration put in force";
/// The message of each error of a rejected configuration.
pub const MSG_REJECTED: &str = "configuration rejected; the last good one stays in force";
/// The message of each accepted-but-ignored field.
pub const MSG_IGNORED: &str = "configuration field accepted but ignored";

/// Holds the configuration in force and what was already said about it. The same as calling
/// [`plan`] / [`apply_and_log`] on a [`ConfigState`] and an [`IgnoredFieldsReport`] of one's
/// own, plus the UIDs of the newest rejected snapshot's objects for the Events.
#[derive(Debug, Clone, Default)]
pub struct ConfigApplier {
    state: ConfigState,
    ignored: IgnoredFieldsReport,
    /// The UIDs of the configuration objects of the newest snapshot when it was rejected.
    uids: BTreeMap<crate::events::ObjectKey, String>,
}

/// What one snapshot did, and what to say about it. Pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// What the configuration state did.
    pub applied: Applied,
    /// Generation of the configuration in force after the snapshot.
    pub generation: u64,
    /// The accepted-but-ignored fields to warn about now.
    pub ignored: Vec<IgnoredField>,
    /// The errors to log now: the rejection's errors when they differ from those last logged,
    /// else empty.
    pub new_errors: Vec<ConfigError>,
}

/// One log line of a report, in order. [`emit`] writes it; tests compare these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// WARN [`MSG_IGNORED`] `ignored=...`.
    Ignored(IgnoredField),
    /// INFO [`MSG_ACCEPTED`] `generation=...`.
    Accepted {
        /// The new generation.
        generation: u64,
    },
    /// ERROR [`MSG_REJECTED`] `error=...`.
    Rejected(ConfigError),
}

impl LogLine {
    /// The level it is logged at.
    pub fn level(&self) -> tracing::Level {
        match self {
            LogLine::Ignored(_) => tracing::Level::WARN,
            LogLine::Accepted { .. } => tracing::Level::INFO,
            LogLine::Rejected(_) => tracing::Level::ERROR,
        }
    }

    /// The message.
    pub fn message(&self) -> &'static str {
        match self {
            LogLine::Ignored(_) => MSG_IGNORED,
            LogLine::Accepted { .. } => MSG_ACCEPTED,
            LogLine::Rejected(_) => MSG_REJECTED,
        }
    }
}

/// The log lines of `report`, in the order they are written: ignored fields first (they
/// describe the configuration about to be put in force), then the outcome.
pub fn log_lines(report: &ApplyReport) -> Vec<LogLine> {
    let mut out: Vec<LogLine> = report
        .ignored
        .iter()
        .cloned()
        .map(LogLine::Ignored)
        .collect();
    match report.applied {
        Applied::Changed => out.push(LogLine::Accepted {
            generation: report.generation,
        }),
        Applied::Unchanged => {}
        Applied::Rejected => out.extend(report.new_errors.iter().cloned().map(LogLine::Rejected)),
    }
    out
}

/// Writes one line to `tracing` (target `ferrolb_runtime::config` for both daemons).
pub fn emit(line: &LogLine) {
    match line {
        LogLine::Ignored(ignored) => tracing::warn!(%ignored, "{}", MSG_IGNORED),
        LogLine::Accepted { generation } => tracing::info!(generation, "{}", MSG_ACCEPTED),
        LogLine::Rejected(error) => tracing::error!(%error, "{}", MSG_REJECTED),
    }
}

/// Validates `res`, puts it in force in `state` or keeps the last good configuration, and
/// says what to log. Pure. The errors are news (in [`ApplyReport::new_errors`]) unless the
/// previous snapshot was rejected with the very same list: `state` itself remembers it.
pub fn plan(
    state: &mut ConfigState,
    ignored: &mut IgnoredFieldsReport,
    res: &Resources,
) -> ApplyReport {
    let before: Vec<ConfigError> = state.errors().to_vec();
    let applied = state.apply(validate(res));
    let ignored = ignored.to_report(applied, res);
    let new_errors = if applied == Applied::Rejected && state.errors() != before.as_slice() {
        state.errors().to_vec()
    } else {
        Vec::new()
    };
    ApplyReport {
        applied,
        generation: state.generation(),
        ignored,
        new_errors,
    }
}

/// Writes every line of `report` ([`log_lines`], [`emit`]).
pub fn log_report(report: &ApplyReport) {
    for line in log_lines(report) {
        emit(&line);
    }
}

/// [`plan`], then [`log_report`]: what a daemon calls when a snapshot arrives.
pub fn apply_and_log(
    state: &mut ConfigState,
    ignored: &mut IgnoredFieldsReport,
    res: &Resources,
) -> Applied {
    let report = plan(state, ignored, res);
    log_report(&report);
    report.applied
}

impl ConfigApplier {
    /// Nothing in force yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`plan`] on this applier's state. Pure: nothing is logged.
    pub fn plan(&mut self, res: &Resources) -> ApplyReport {
        let report = plan(&mut self.state, &mut self.ignored, res);
        if report.applied == Applied::Rejected {
            self.uids = config_uids(res);
        } else {
            self.uids.clear();
        }
        report
    }

    /// [`ConfigApplier::plan`], then logs its lines ([`log_lines`], [`emit`]).
    pub fn apply(&mut self, res: &Resources) -> Applied {
        let report = self.plan(res);
        log_report(&report);
        report.applied
    }

    /// The configuration state (last good configuration, current errors, generation).
    pub fn state(&self) -> &ConfigState {
        &self.state
    }

    /// The configuration in force, if any was ever valid.
    pub fn config(&self) -> Option<&Config> {
        self.state.config()
    }

    /// The newest configuration's errors (empty when it is in force).
    pub fn errors(&self) -> &[ConfigError] {
        self.state.errors()
    }

    /// True while the newest configuration is rejected.
    pub fn is_stale(&self) -> bool {
        self.state.is_stale()
    }

    /// Counts configurations put in force.
    pub fn generation(&self) -> u64 {
        self.state.generation()
    }

    /// The newest configuration's errors with the UIDs of the objects of its snapshot, for
    /// [`crate::events::rejection_events`] (empty when it is in force).
    pub fn rejection(&self) -> Rejection {
        Rejection {
            errors: self.state.errors().to_vec(),
            uids: self.uids.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(yaml: &str) -> Resources {
        ferrolb_api::source::files::load_str(yaml, Path::new("t.yaml")).expect("loads")
    }

    const GOOD: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system, uid: u-p}\nspec: {addresses: [192.0.2.0/29]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: metallb-system}\nspec: {ipAddressPools: [p], preferredNodeSelectors: [{weight: 10, preference: {matchLabels: {a: b}}}]}\n";
    const BAD: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system, uid: u-p}\nspec: {addresses: [not-a-cidr, 10.0.0.0/33]}\n";

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                let field = match l {
                    LogLine::Ignored(i) => format!("ignored={i}"),
                    LogLine::Accepted { generation } => format!("generation={generation}"),
                    LogLine::Rejected(e) => format!("error={e}"),
                };
                format!("{} {} {field}", l.level(), l.message())
            })
            .collect()
    }

    #[test]
    fn accepted_then_unchanged_then_rejected_once_per_error_list() {
        let mut a = ConfigApplier::new();
        let first = a.plan(&load(GOOD));
        assert_eq!(first.applied, Applied::Changed);
        let lines = texts(&log_lines(&first));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("WARN configuration field accepted but ignored ignored=L2Advertisement metallb-system/l2: spec.preferredNodeSelectors"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "INFO configuration put in force generation=1");

        let again = a.plan(&load(GOOD));
        assert_eq!(again.applied, Applied::Unchanged);
        assert!(log_lines(&again).is_empty(), "an unchanged config is quiet");

        let bad = a.plan(&load(BAD));
        assert_eq!(bad.applied, Applied::Rejected);
        let lines = texts(&log_lines(&bad));
        assert_eq!(lines.len(), 2, "one line per error: {lines:?}");
        assert!(lines.iter().all(|l| l.starts_with(
            "ERROR configuration rejected; the last good one stays in force error=IPAddressPool metallb-system/p: spec.addresses["
        )), "{lines:?}");
        assert!(a.is_stale());
        assert_eq!(a.generation(), 1, "the last good one stays");
        assert!(a.config().is_some());
        let rejection = a.rejection();
        assert_eq!(rejection.errors.len(), 2);
        assert_eq!(
            rejection.uids.get(&(
                "IPAddressPool".to_string(),
                "metallb-system".to_string(),
                "p".to_string()
            )),
            Some(&"u-p".to_string())
        );

        // The same rejection again (a Service changed meanwhile): not logged again.
        assert!(log_lines(&a.plan(&load(BAD))).is_empty());
        // After a valid one, the same rejection is news again.
        assert_eq!(log_lines(&a.plan(&load(GOOD))), vec![]);
        assert_eq!(log_lines(&a.plan(&load(BAD))).len(), 2);
        assert!(a.plan(&load(GOOD)).new_errors.is_empty());
        assert!(a.rejection().errors.is_empty() && a.rejection().uids.is_empty());
    }

    #[test]
    fn levels_and_messages_are_fixed_per_kind() {
        let e = ConfigError {
            kind: "BGPPeer".into(),
            namespace: "ns".into(),
            name: "r".into(),
            path: "spec.peerASN".into(),
            value: String::new(),
            reason: ferrolb_api::Reason::Required,
        };
        let line = LogLine::Rejected(e);
        assert_eq!(line.level(), tracing::Level::ERROR);
        assert_eq!(line.message(), MSG_REJECTED);
        let acc = LogLine::Accepted { generation: 3 };
        assert_eq!(acc.level(), tracing::Level::INFO);
        assert_eq!(acc.message(), MSG_ACCEPTED);
    }
}
