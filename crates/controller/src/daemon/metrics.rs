//! The controller's metrics, rendered as Prometheus text (exposition format 0.0.4) on `/metrics`.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `metallb_allocator_addresses_in_use_total` | gauge | `pool` | addresses held by at least one Service (MetalLB's name) |
//! | `metallb_allocator_addresses_total` | gauge | `pool` | addresses in the pool's ranges, all families (MetalLB's name) |
//! | `ferrolb_allocation_errors_total` | counter | `reason` | `AllocationFailed` outcomes, by [`ferrolb_allocator::AllocError::metric_label`] |
//! | `ferrolb_config_stale` | gauge | | 1 while the newest configuration is rejected or unreadable |
//! | `ferrolb_leader` | gauge | | 1 while this replica holds the Lease (standalone mode: always 1) |
//! | `metallb_k8s_client_*` | | | MetalLB's configuration metrics ([`ferrolb_runtime::config_metrics`]) |
//!
//! The pool gauges are exported by the leader only (a standby holds no allocator).

use ferrolb_api::state::Applied;
use ferrolb_runtime::config_metrics::ConfigMetrics;
use ferrolb_runtime::ops_http::escape_label_value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use ferrolb_allocator::PoolUsage;

#[derive(Debug, Default)]
struct State {
    config_stale: bool,
    /// MetalLB's `metallb_k8s_client_*`; its `stale` follows `config_stale`.
    config: ConfigMetrics,
    leader: bool,
    ready: bool,
    /// pool -> (in use, total), summed over families.
    pools: BTreeMap<String, (u128, u128)>,
    errors: BTreeMap<&'static str, u64>,
}

/// Shared metrics; cheap to lock, never held across an `.await`.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sets `ferrolb_config_stale` and `metallb_k8s_client_config_stale_bool`.
    pub fn set_config_stale(&self, stale: bool) {
        self.with(|s| {
            s.config_stale = stale;
            s.config.stale = stale;
        });
    }

    /// Counts one configuration snapshot applied with outcome `applied`
    /// (`metallb_k8s_client_updates_total`, `..._update_errors_total`); `loaded`: a valid
    /// configuration is in force afterwards (`metallb_k8s_client_config_loaded_bool`).
    pub fn count_config_update(&self, applied: Applied, loaded: bool) {
        self.with(|s| {
            s.config.count_update(applied);
            s.config.loaded = loaded;
        });
    }

    /// Sets `ferrolb_leader`.
    pub fn set_leader(&self, leader: bool) {
        self.with(|s| s.leader = leader);
    }

    /// Marks the caches synced: `/readyz` answers 200 from now on.
    pub fn set_ready(&self) {
        self.with(|s| s.ready = true);
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        self.with(|s| s.ready)
    }

    /// Replaces the pool gauges with `usage` (families of one pool are summed).
    pub fn set_pools(&self, usage: &[PoolUsage]) {
        let mut pools: BTreeMap<String, (u128, u128)> = BTreeMap::new();
        for u in usage {
            let e = pools.entry(u.pool.clone()).or_default();
            e.0 = e.0.saturating_add(u.in_use);
            e.1 = e.1.saturating_add(u.total);
        }
        self.with(|s| s.pools = pools);
    }

    /// Counts one allocation failure.
    pub fn count_error(&self, reason: &'static str) {
        self.with(|s| *s.errors.entry(reason).or_default() += 1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.with(|s| {
            let mut out = String::new();
            let mut family = |name: &str, help: &str, kind: &str| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            };
            family(
                "metallb_allocator_addresses_in_use_total",
                "Addresses of the pool held by at least one Service.",
                "gauge",
            );
            for (pool, (in_use, _)) in &s.pools {
                let _ = writeln!(
                    out,
                    "metallb_allocator_addresses_in_use_total{{pool=\"{}\"}} {in_use}",
                    escape_label_value(pool)
                );
            }
            let mut family = |name: &str, help: &str, kind: &str| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            };
            family(
                "metallb_allocator_addresses_total",
                "Addresses in the pool's ranges, all families.",
                "gauge",
            );
            for (pool, (_, total)) in &s.pools {
                let _ = writeln!(
                    out,
                    "metallb_allocator_addresses_total{{pool=\"{}\"}} {total}",
                    escape_label_value(pool)
                );
            }
            let _ = writeln!(
                out,
                "# HELP ferrolb_allocation_errors_total Allocation failures (AllocationFailed), by reason.\n# TYPE ferrolb_allocation_errors_total counter"
            );
            for (reason, n) in &s.errors {
                let _ = writeln!(out, "ferrolb_allocation_errors_total{{reason=\"{reason}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP ferrolb_config_stale 1 while the newest configuration is rejected or unreadable and the last good one is in force.\n# TYPE ferrolb_config_stale gauge\nferrolb_config_stale {}",
                u8::from(s.config_stale)
            );
            s.config.render(&mut out);
            let _ = writeln!(
                out,
                "# HELP ferrolb_leader 1 while this replica holds the leader Lease and writes.\n# TYPE ferrolb_leader gauge\nferrolb_leader {}",
                u8::from(s.leader)
            );
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::model::IpFamily;

    #[test]
    fn render_sums_families_per_pool_and_has_every_family() {
        let m = Metrics::default();
        m.set_pools(&[
            PoolUsage {
                pool: "p\"1".into(),
                family: IpFamily::V4,
                in_use: 2,
                free: 252,
                unusable: 2,
                total: 256,
            },
            PoolUsage {
                pool: "p\"1".into(),
                family: IpFamily::V6,
                in_use: 1,
                free: 15,
                unusable: 0,
                total: 16,
            },
        ]);
        m.count_error("exhausted");
        m.count_error("exhausted");
        m.set_config_stale(true);
        m.set_leader(true);
        let text = m.render();
        assert!(
            text.contains("metallb_allocator_addresses_in_use_total{pool=\"p\\\"1\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("metallb_allocator_addresses_total{pool=\"p\\\"1\"} 272\n"));
        assert!(text.contains("ferrolb_allocation_errors_total{reason=\"exhausted\"} 2\n"));
        assert!(text.contains("ferrolb_config_stale 1\n"));
        assert!(text.contains("ferrolb_leader 1\n"));
        m.set_pools(&[]);
        m.set_leader(false);
        let text = m.render();
        assert!(!text.contains("pool="), "{text}");
        assert!(text.contains("ferrolb_leader 0\n"));
    }

    #[test]
    fn metallb_names_types_and_values() {
        let m = Metrics::default();
        m.count_config_update(Applied::Changed, true);
        m.count_config_update(Applied::Rejected, true);
        m.set_config_stale(true);
        m.set_pools(&[PoolUsage {
            pool: "p".into(),
            family: IpFamily::V4,
            in_use: 1,
            free: 3,
            unusable: 0,
            total: 4,
        }]);
        let text = m.render();
        for line in [
            "# TYPE metallb_allocator_addresses_in_use_total gauge\n",
            "# TYPE metallb_allocator_addresses_total gauge\n",
            "metallb_allocator_addresses_total{pool=\"p\"} 4\n",
            "# TYPE metallb_k8s_client_updates_total counter\n",
            "metallb_k8s_client_updates_total 2\n",
            "metallb_k8s_client_update_errors_total 1\n",
            "# TYPE metallb_k8s_client_config_loaded_bool gauge\n",
            "metallb_k8s_client_config_loaded_bool 1\n",
            "metallb_k8s_client_config_stale_bool 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        m.set_config_stale(false);
        assert!(m
            .render()
            .contains("metallb_k8s_client_config_stale_bool 0\n"));
    }
}
