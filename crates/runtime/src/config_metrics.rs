//! MetalLB's configuration metrics (`metallb_k8s_client_*`), kept by both daemons in both modes
//! so that MetalLB users' dashboards and alerts (`MetalLBStaleConfig`,
//! `MetalLBConfigNotLoaded`) work unchanged. Names, types and meanings follow MetalLB's
//! "Prometheus Metrics" page:
//!
//! | name | type | meaning here |
//! |---|---|---|
//! | `metallb_k8s_client_updates_total` | counter | configuration snapshots applied (in force, unchanged or rejected) |
//! | `metallb_k8s_client_update_errors_total` | counter | of those, the rejected ones |
//! | `metallb_k8s_client_config_loaded_bool` | gauge | 1 while a valid configuration is in force |
//! | `metallb_k8s_client_config_stale_bool` | gauge | 1 while the newest configuration is rejected or the source unreadable |
//!
//! Pure data plus a renderer; the daemons keep one inside their own metrics state.

use ferrolb_api::state::Applied;
use std::fmt::Write as _;

/// The four `metallb_k8s_client_*` values.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConfigMetrics {
    /// `metallb_k8s_client_updates_total`.
    pub updates: u64,
    /// `metallb_k8s_client_update_errors_total`.
    pub update_errors: u64,
    /// `metallb_k8s_client_config_loaded_bool`.
    pub loaded: bool,
    /// `metallb_k8s_client_config_stale_bool`.
    pub stale: bool,
}

impl ConfigMetrics {
    /// Counts one configuration snapshot that was applied with outcome `applied`: a rejected
    /// one is also an update error (MetalLB counts an update its handler refused as an error).
    pub fn count_update(&mut self, applied: Applied) {
        self.updates = self.updates.saturating_add(1);
        if applied == Applied::Rejected {
            self.update_errors = self.update_errors.saturating_add(1);
        }
    }

    /// Appends the four families in Prometheus text format (exposition format 0.0.4).
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP metallb_k8s_client_updates_total Number of configuration updates that have been processed.\n# TYPE metallb_k8s_client_updates_total counter\nmetallb_k8s_client_updates_total {}",
            self.updates
        );
        let _ = writeln!(
            out,
            "# HELP metallb_k8s_client_update_errors_total Number of configuration updates that failed (rejected).\n# TYPE metallb_k8s_client_update_errors_total counter\nmetallb_k8s_client_update_errors_total {}",
            self.update_errors
        );
        let _ = writeln!(
            out,
            "# HELP metallb_k8s_client_config_loaded_bool 1 if a valid configuration is in force.\n# TYPE metallb_k8s_client_config_loaded_bool gauge\nmetallb_k8s_client_config_loaded_bool {}",
            u8::from(self.loaded)
        );
        let _ = writeln!(
            out,
            "# HELP metallb_k8s_client_config_stale_bool 1 while the newest configuration is rejected or its source unreadable, and an older one (or none) is in force.\n# TYPE metallb_k8s_client_config_stale_bool gauge\nmetallb_k8s_client_config_stale_bool {}",
            u8::from(self.stale)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_updates_and_rejections() {
        let mut m = ConfigMetrics::default();
        m.count_update(Applied::Changed);
        m.count_update(Applied::Unchanged);
        m.count_update(Applied::Rejected);
        assert_eq!((m.updates, m.update_errors), (3, 1));
    }

    #[test]
    fn renders_metallb_names_and_types() {
        let m = ConfigMetrics {
            updates: 4,
            update_errors: 1,
            loaded: true,
            stale: true,
        };
        let mut text = String::new();
        m.render(&mut text);
        for line in [
            "# TYPE metallb_k8s_client_updates_total counter\n",
            "metallb_k8s_client_updates_total 4\n",
            "# TYPE metallb_k8s_client_update_errors_total counter\n",
            "metallb_k8s_client_update_errors_total 1\n",
            "# TYPE metallb_k8s_client_config_loaded_bool gauge\n",
            "metallb_k8s_client_config_loaded_bool 1\n",
            "# TYPE metallb_k8s_client_config_stale_bool gauge\n",
            "metallb_k8s_client_config_stale_bool 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
