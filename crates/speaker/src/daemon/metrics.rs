//! The daemon's metrics: a small shared state rendered as Prometheus text (exposition format
//! 0.0.4) on `/metrics`. Written by the reconcile loop (config staleness, readiness) and by the
//! BGP backend's event tasks (sessions, prefixes, UPDATEs).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

/// Counters and gauges of one BGP peer, labelled `peer="<address>"` like MetalLB's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetrics {
    /// `ferrolb_bgp_session_up`.
    pub session_up: bool,
    /// `ferrolb_bgp_announced_prefixes`: prefixes in the peer's Adj-RIB-Out.
    pub announced_prefixes: usize,
    /// `ferrolb_bgp_updates_sent_total`: UPDATE messages sent since the daemon started.
    pub updates_sent: u64,
}

#[derive(Debug, Default)]
struct State {
    config_stale: bool,
    ready: bool,
    source_error: Option<String>,
    peers: BTreeMap<String, PeerMetrics>,
    kube_write_errors: BTreeMap<&'static str, u64>,
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

    /// Sets `ferrolb_config_stale`.
    pub fn set_config_stale(&self, stale: bool) {
        self.with(|s| s.config_stale = stale);
    }

    /// The current `ferrolb_config_stale`.
    pub fn config_stale(&self) -> bool {
        self.with(|s| s.config_stale)
    }

    /// Marks the daemon ready (`/readyz` 200): a configuration has been put in force.
    pub fn set_ready(&self) {
        self.with(|s| s.ready = true);
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        self.with(|s| s.ready)
    }

    /// Records whether the configuration source (the API watches, or the directory) can be
    /// read: `None` when it can, else why not. Sets `ferrolb_source_available` and `/readyz`.
    pub fn set_source_error(&self, error: Option<String>) {
        self.with(|s| s.source_error = error);
    }

    /// Why the source cannot be read, if it cannot.
    pub fn source_error(&self) -> Option<String> {
        self.with(|s| s.source_error.clone())
    }

    /// Counts one failed write to the Kubernetes API of `kind` (`ServiceBGPStatus`, `Event`):
    /// `ferrolb_kubernetes_write_errors_total{kind}`.
    pub fn count_kube_write_error(&self, kind: &'static str) {
        self.with(|s| {
            let n = s.kube_write_errors.entry(kind).or_default();
            *n = n.saturating_add(1);
        });
    }

    /// Updates one peer's values.
    pub fn update_peer(&self, peer: &str, f: impl FnOnce(&mut PeerMetrics)) {
        self.with(|s| f(s.peers.entry(peer.to_string()).or_default()));
    }

    /// Forgets a peer that is no longer configured (its series disappear).
    pub fn remove_peer(&self, peer: &str) {
        self.with(|s| s.peers.remove(peer));
    }

    /// A copy of one peer's values.
    pub fn peer(&self, peer: &str) -> Option<PeerMetrics> {
        self.with(|s| s.peers.get(peer).cloned())
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.with(|s| {
            let mut out = String::new();
            let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&PeerMetrics) -> String| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (peer, m) in &s.peers {
                    let _ = writeln!(out, "{name}{{peer=\"{}\"}} {}", escape(peer), value(m));
                }
            };
            family(
                "ferrolb_bgp_session_up",
                "gauge",
                "1 while the BGP session with the peer is Established.",
                &|m| u8::from(m.session_up).to_string(),
            );
            family(
                "ferrolb_bgp_announced_prefixes",
                "gauge",
                "Prefixes currently announced to the peer.",
                &|m| m.announced_prefixes.to_string(),
            );
            family(
                "ferrolb_bgp_updates_sent_total",
                "counter",
                "BGP UPDATE messages sent to the peer.",
                &|m| m.updates_sent.to_string(),
            );
            let _ = writeln!(
                out,
                "# HELP ferrolb_config_stale 1 while the newest configuration is rejected or unreadable and the last good one is in force.\n# TYPE ferrolb_config_stale gauge\nferrolb_config_stale {}",
                u8::from(s.config_stale)
            );
            let _ = writeln!(
                out,
                "# HELP ferrolb_source_available 1 while the configuration source (API watches or directory) can be read; 0 during an outage, when announcements stay as they were.\n# TYPE ferrolb_source_available gauge\nferrolb_source_available {}",
                u8::from(s.source_error.is_none())
            );
            let _ = writeln!(
                out,
                "# HELP ferrolb_kubernetes_write_errors_total Failed writes to the Kubernetes API (ServiceBGPStatus objects, Events).\n# TYPE ferrolb_kubernetes_write_errors_total counter"
            );
            for (kind, n) in &s.kube_write_errors {
                let _ = writeln!(out, "ferrolb_kubernetes_write_errors_total{{kind=\"{kind}\"}} {n}");
            }
            out
        })
    }
}

/// Label value escaping (exposition format: backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_peer_labels() {
        let m = Metrics::default();
        m.update_peer("192.0.2.1", |p| {
            p.session_up = true;
            p.announced_prefixes = 3;
            p.updates_sent = 7;
        });
        m.set_config_stale(true);
        let text = m.render();
        assert!(
            text.contains("ferrolb_bgp_session_up{peer=\"192.0.2.1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("ferrolb_bgp_announced_prefixes{peer=\"192.0.2.1\"} 3\n"));
        assert!(text.contains("ferrolb_bgp_updates_sent_total{peer=\"192.0.2.1\"} 7\n"));
        assert!(text.contains("ferrolb_config_stale 1\n"));
        assert!(text.contains("ferrolb_source_available 1\n"));
        m.set_source_error(Some("gone".into()));
        m.count_kube_write_error("Event");
        m.count_kube_write_error("Event");
        let text = m.render();
        assert!(text.contains("ferrolb_source_available 0\n"), "{text}");
        assert!(text.contains("ferrolb_kubernetes_write_errors_total{kind=\"Event\"} 2\n"));
        m.remove_peer("192.0.2.1");
        assert!(!m.render().contains("192.0.2.1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
