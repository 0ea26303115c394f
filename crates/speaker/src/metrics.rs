//! The daemon's metrics: a small shared state rendered as Prometheus text (exposition format
//! 0.0.4) on `/metrics`. Written by the reconcile loop (config staleness, readiness) and by the
//! BGP backend's event tasks (sessions, prefixes, UPDATEs); the Layer 2 gossip's counters are
//! read when rendered, and the L2 announcement state is set after each reconcile.

use ferrolb_api::ops_http::escape_label_value;
use ferrolb_api::state::Applied;
use ferrolb_runtime::config_metrics::ConfigMetrics;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use crate::counter_metrics::{render_bgp_messages, render_layer2, PeerMessages, VipCountsReader};
use crate::l2::memberlist::MemberlistCounters;

/// Reads the gossip's counters at render time.
pub type CountersReader = Box<dyn Fn() -> MemberlistCounters + Send + Sync>;

/// Reads the BFD sessions' counters at render time: per `peer` label (the peer's address, as
/// MetalLB labels its `metallb_bfd_*`), and the receive path's drops per reason.
pub type BfdReader = Box<
    dyn Fn() -> (
            Vec<(String, ferrolb_bfd::Counters)>,
            Vec<(&'static str, u64)>,
        ) + Send
        + Sync,
>;

/// One VIP this node announces (answers ARP/NDP for, or sends to a BGP peer): MetalLB's
/// `metallb_speaker_announced` labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct L2Announced {
    /// `namespace/name` of the Service (MetalLB's `service` label).
    pub service: String,
    /// The VIP.
    pub ip: std::net::IpAddr,
}

/// Counters and gauges of one BGP peer, labelled `peer="<address>"` like MetalLB's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetrics {
    /// `ferrolb_bgp_session_up`.
    pub session_up: bool,
    /// `ferrolb_bgp_announced_prefixes`: prefixes in the peer's Adj-RIB-Out.
    pub announced_prefixes: usize,
    /// `ferrolb_bgp_updates_sent_total`: UPDATE messages sent since the daemon started.
    pub updates_sent: u64,
    /// The `peer` label of MetalLB's `metallb_bgp_*` families: `address:port`, as MetalLB's
    /// native sessions write it. Empty: the address (this peer's key) is used.
    pub metallb_peer: String,
    /// `metallb_bgp_pending_prefixes_total`: prefixes this node wants the peer to have (the
    /// desired Adj-RIB-Out, whether sent yet or not), as MetalLB's native sessions set it
    /// before sending.
    pub pending_prefixes: usize,
}

#[derive(Debug, Default)]
struct State {
    config_stale: bool,
    /// MetalLB's `metallb_k8s_client_*`; its `stale` follows `config_stale`.
    config: ConfigMetrics,
    ready: bool,
    source_error: Option<String>,
    peers: BTreeMap<String, PeerMetrics>,
    kube_write_errors: BTreeMap<&'static str, u64>,
    node: String,
    l2_announced: BTreeSet<L2Announced>,
    bgp_announced: BTreeSet<L2Announced>,
    bgp_weights: BTreeMap<(String, String), f64>,
    members: Option<usize>,
}

/// Shared metrics; cheap to lock, never held across an `.await`.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
    memberlist: Mutex<Option<CountersReader>>,
    /// Per peer (the key of `State::peers`): where its message counts are read.
    bgp_messages: Mutex<BTreeMap<String, PeerMessages>>,
    /// Where the Layer 2 per-VIP counts are read, once the responder runs.
    layer2: Mutex<Option<VipCountsReader>>,
    bfd: Mutex<Option<BfdReader>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gossip = self
            .memberlist
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("Metrics")
            .field("state", &self.state)
            .field("memberlist_counters", &gossip)
            .finish()
    }
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

    /// Exports the gossip's counters (`ferrolb_memberlist_*`), read at each render.
    pub fn set_memberlist_counters(&self, reader: CountersReader) {
        *self
            .memberlist
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reader);
    }

    /// Exports the BFD sessions' counters (`metallb_bfd_*`), read at each render.
    pub fn set_bfd_counters(&self, reader: BfdReader) {
        *self.bfd.lock().unwrap_or_else(PoisonError::into_inner) = Some(reader);
    }

    /// Sets the Layer 2 state of node `node`: the VIPs it answers for and the number of live
    /// speakers the gossip sees (`None` when gossip is off or has not settled).
    pub fn set_l2(&self, node: &str, announced: BTreeSet<L2Announced>, members: Option<usize>) {
        self.with(|s| {
            node.clone_into(&mut s.node);
            s.l2_announced = announced;
            s.members = members;
        });
    }

    /// Sets the VIPs node `node` announces to at least one BGP peer
    /// (`metallb_speaker_announced{protocol="bgp"}`).
    pub fn set_bgp_announced(&self, node: &str, announced: BTreeSet<L2Announced>) {
        self.with(|s| {
            node.clone_into(&mut s.node);
            s.bgp_announced = announced;
        });
    }

    /// Sets the weights (weighted ECMP: the link bandwidth in endpoints) of the routes that
    /// carry one, per (peer address, prefix): `ferrolb_bgp_announced_weight`.
    pub fn set_bgp_weights(&self, weights: BTreeMap<(String, String), f64>) {
        self.with(|s| s.bgp_weights = weights);
    }

    /// Updates one peer's values.
    pub fn update_peer(&self, peer: &str, f: impl FnOnce(&mut PeerMetrics)) {
        self.with(|s| f(s.peers.entry(peer.to_string()).or_default()));
    }

    /// Forgets a peer that is no longer configured (its series disappear).
    pub fn remove_peer(&self, peer: &str) {
        self.with(|s| s.peers.remove(peer));
        self.bgp_messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(peer);
    }

    /// Exports the Layer 2 per-VIP counts (`metallb_layer2_*{ip}`), read at each render.
    pub fn set_layer2_counts(&self, reader: VipCountsReader) {
        *self.layer2.lock().unwrap_or_else(PoisonError::into_inner) = Some(reader);
    }

    /// Exports the message counts of peer `peer` (MetalLB's FRR-mode `metallb_bgp_opens_sent`
    /// and the rest, [`crate::counter_metrics`]), read at each render; replaces what was set.
    pub fn set_peer_messages(&self, peer: &str, messages: PeerMessages) {
        self.bgp_messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer.to_owned(), messages);
    }

    /// A copy of one peer's values.
    pub fn peer(&self, peer: &str) -> Option<PeerMetrics> {
        self.with(|s| s.peers.get(peer).cloned())
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = self.with(|s| {
            let mut out = String::new();
            let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&PeerMetrics) -> String| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (peer, m) in &s.peers {
                    // MetalLB's families carry MetalLB's `peer` label format.
                    let peer = if name.starts_with("metallb_") && !m.metallb_peer.is_empty() {
                        &m.metallb_peer
                    } else {
                        peer
                    };
                    let _ = writeln!(out, "{name}{{peer=\"{}\"}} {}", escape_label_value(peer), value(m));
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
            // MetalLB's names, types and meanings (its "Prometheus Metrics" page), so its
            // dashboards and alerts (`MetalLBBGPSessionDown`) work unchanged.
            family(
                "metallb_bgp_session_up",
                "gauge",
                "BGP session state (1 is up, 0 is down).",
                &|m| u8::from(m.session_up).to_string(),
            );
            family(
                "metallb_bgp_updates_total",
                "counter",
                "Number of BGP UPDATE messages sent.",
                &|m| m.updates_sent.to_string(),
            );
            family(
                "metallb_bgp_announced_prefixes_total",
                "gauge",
                "Number of prefixes currently being advertised on the BGP session.",
                &|m| m.announced_prefixes.to_string(),
            );
            family(
                "metallb_bgp_pending_prefixes_total",
                "gauge",
                "Number of prefixes that should be advertised on the BGP session.",
                &|m| m.pending_prefixes.to_string(),
            );
            let _ = writeln!(
                out,
                "# HELP ferrolb_config_stale 1 while the newest configuration is rejected or unreadable and the last good one is in force.\n# TYPE ferrolb_config_stale gauge\nferrolb_config_stale {}",
                u8::from(s.config_stale)
            );
            s.config.render(&mut out);
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
            // MetalLB's name and labels (internal/speaker: `metallb_speaker_announced{service,
            // protocol, node, ip}`), so its dashboards and alerts work unchanged.
            let _ = writeln!(
                out,
                "# HELP metallb_speaker_announced Services being announced from this node (desired state; ARP/NDP answering may still be starting).\n# TYPE metallb_speaker_announced gauge"
            );
            let announced = s
                .l2_announced
                .iter()
                .map(|a| ("layer2", a))
                .chain(s.bgp_announced.iter().map(|a| ("bgp", a)));
            for (protocol, a) in announced {
                let _ = writeln!(
                    out,
                    "metallb_speaker_announced{{service=\"{}\",protocol=\"{protocol}\",node=\"{}\",ip=\"{}\"}} 1",
                    escape_label_value(&a.service),
                    escape_label_value(&s.node),
                    a.ip
                );
            }
            let _ = writeln!(
                out,
                "# HELP ferrolb_bgp_announced_weight Weighted ECMP: the link bandwidth of the route to the prefix sent to the peer, in ready endpoints on this node (summed over the Services sharing the prefix).\n# TYPE ferrolb_bgp_announced_weight gauge"
            );
            for ((peer, prefix), weight) in &s.bgp_weights {
                let _ = writeln!(
                    out,
                    "ferrolb_bgp_announced_weight{{peer=\"{}\",prefix=\"{}\"}} {weight}",
                    escape_label_value(peer),
                    escape_label_value(prefix)
                );
            }
            if let Some(n) = s.members {
                let _ = writeln!(
                    out,
                    "# HELP ferrolb_memberlist_members Live speakers in the gossip, this one included.\n# TYPE ferrolb_memberlist_members gauge\nferrolb_memberlist_members {n}"
                );
            }
            out
        });
        let reader = self
            .memberlist
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = reader.as_ref().map(|read| read()) {
            render_memberlist(&mut text, &c);
        }
        drop(reader);
        render_bgp_messages(
            &mut text,
            self.bgp_messages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values(),
        );
        if let Some(read) = self
            .layer2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            render_layer2(&mut text, &read());
        }
        let bfd = self.bfd.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((sessions, drops)) = bfd.as_ref().map(|read| read()) {
            render_bfd(&mut text, &sessions, &drops);
        }
        text
    }
}

/// MetalLB's BFD families (FRR mode's collector: names, types, help and the `peer` label), so
/// its dashboards work unchanged; Echo is not implemented, so its counters stay 0. MetalLB's
/// `metallb_bfd_zebra_notifications` has no counterpart (there is no zebra).
fn render_bfd(
    out: &mut String,
    sessions: &[(String, ferrolb_bfd::Counters)],
    drops: &[(&'static str, u64)],
) {
    type Field = fn(&ferrolb_bfd::Counters) -> u64;
    let families: [(&str, &str, &str, Field); 7] = [
        (
            "metallb_bfd_session_up",
            "gauge",
            "BFD session state (1 is up, 0 is down)",
            |c| c.session_up,
        ),
        (
            "metallb_bfd_control_packet_input",
            "counter",
            "Number of received BFD control packets",
            |c| c.control_packet_input,
        ),
        (
            "metallb_bfd_control_packet_output",
            "counter",
            "Number of sent BFD control packets",
            |c| c.control_packet_output,
        ),
        (
            "metallb_bfd_echo_packet_input",
            "counter",
            "Number of received BFD echo packets",
            |c| c.echo_packet_input,
        ),
        (
            "metallb_bfd_echo_packet_output",
            "counter",
            "Number of sent BFD echo packets",
            |c| c.echo_packet_output,
        ),
        (
            "metallb_bfd_session_up_events",
            "counter",
            "Number of BFD session up events",
            |c| c.session_up_events,
        ),
        (
            "metallb_bfd_session_down_events",
            "counter",
            "Number of BFD session down events",
            |c| c.session_down_events,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (peer, c) in sessions {
            let _ = writeln!(
                out,
                "{name}{{peer=\"{}\"}} {}",
                escape_label_value(peer),
                value(c)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ferrolb_bfd_dropped_packets_total BFD datagrams dropped by the receive path, per reason.\n# TYPE ferrolb_bfd_dropped_packets_total counter"
    );
    for (reason, n) in drops {
        let _ = writeln!(
            out,
            "ferrolb_bfd_dropped_packets_total{{reason=\"{reason}\"}} {n}"
        );
    }
}

fn render_memberlist(out: &mut String, c: &MemberlistCounters) {
    let _ = writeln!(
        out,
        "# HELP ferrolb_memberlist_datagrams_received_total Gossip datagrams accepted.\n# TYPE ferrolb_memberlist_datagrams_received_total counter\nferrolb_memberlist_datagrams_received_total {}",
        c.received
    );
    let _ = writeln!(
        out,
        "# HELP ferrolb_memberlist_datagrams_sent_total Gossip datagrams sent.\n# TYPE ferrolb_memberlist_datagrams_sent_total counter\nferrolb_memberlist_datagrams_sent_total {}",
        c.sent
    );
    let _ = writeln!(
        out,
        "# HELP ferrolb_memberlist_datagrams_dropped_total Gossip datagrams dropped: bad or missing authentication tag (unauthenticated), or undecodable (malformed).\n# TYPE ferrolb_memberlist_datagrams_dropped_total counter\nferrolb_memberlist_datagrams_dropped_total{{reason=\"unauthenticated\"}} {}\nferrolb_memberlist_datagrams_dropped_total{{reason=\"malformed\"}} {}",
        c.dropped_unauthenticated, c.dropped_malformed
    );
    let _ = writeln!(
        out,
        "# HELP ferrolb_memberlist_send_errors_total Gossip datagrams that could not be sent.\n# TYPE ferrolb_memberlist_send_errors_total counter\nferrolb_memberlist_send_errors_total {}",
        c.send_errors
    );
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
    fn metallb_names_types_and_labels() {
        let m = Metrics::default();
        m.update_peer("192.0.2.1", |p| {
            p.session_up = true;
            p.announced_prefixes = 3;
            p.updates_sent = 7;
            p.metallb_peer = "192.0.2.1:179".into();
            p.pending_prefixes = 4;
        });
        m.update_peer("192.0.2.2", |_| {});
        m.count_config_update(Applied::Changed, true);
        m.count_config_update(Applied::Rejected, true);
        m.set_config_stale(true);
        let text = m.render();
        for line in [
            "# TYPE metallb_bgp_session_up gauge\n",
            "metallb_bgp_session_up{peer=\"192.0.2.1:179\"} 1\n",
            "metallb_bgp_session_up{peer=\"192.0.2.2\"} 0\n",
            "# TYPE metallb_bgp_updates_total counter\n",
            "metallb_bgp_updates_total{peer=\"192.0.2.1:179\"} 7\n",
            "# TYPE metallb_bgp_announced_prefixes_total gauge\n",
            "metallb_bgp_announced_prefixes_total{peer=\"192.0.2.1:179\"} 3\n",
            "# TYPE metallb_bgp_pending_prefixes_total gauge\n",
            "metallb_bgp_pending_prefixes_total{peer=\"192.0.2.1:179\"} 4\n",
            "ferrolb_bgp_session_up{peer=\"192.0.2.1\"} 1\n",
            "# TYPE metallb_k8s_client_updates_total counter\n",
            "metallb_k8s_client_updates_total 2\n",
            "metallb_k8s_client_update_errors_total 1\n",
            "metallb_k8s_client_config_loaded_bool 1\n",
            "# TYPE metallb_k8s_client_config_stale_bool gauge\n",
            "metallb_k8s_client_config_stale_bool 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        m.set_config_stale(false);
        assert!(m
            .render()
            .contains("metallb_k8s_client_config_stale_bool 0\n"));
        let vip = |ip: &str| L2Announced {
            service: "default/web".into(),
            ip: ip.parse().expect("ip"),
        };
        m.set_bgp_announced("node-a", [vip("198.51.100.1")].into());
        m.set_l2("node-a", [vip("192.0.2.10")].into(), None);
        let text = m.render();
        assert!(
            text.contains("# TYPE metallb_speaker_announced gauge\n"),
            "{text}"
        );
        assert!(text.contains("metallb_speaker_announced{service=\"default/web\",protocol=\"bgp\",node=\"node-a\",ip=\"198.51.100.1\"} 1\n"), "{text}");
        assert!(text.contains("metallb_speaker_announced{service=\"default/web\",protocol=\"layer2\",node=\"node-a\",ip=\"192.0.2.10\"} 1\n"), "{text}");
        m.set_bgp_announced("node-a", BTreeSet::new());
        assert!(!m.render().contains("protocol=\"bgp\""));
    }

    #[test]
    fn l2_announcements_and_gossip_counters_are_rendered() {
        let m = Metrics::default();
        let text = m.render();
        assert!(!text.contains("ferrolb_memberlist_members"), "{text}");
        assert!(!text.contains("ferrolb_memberlist_datagrams"), "{text}");
        let ip: std::net::IpAddr = "192.0.2.10".parse().expect("ip");
        m.set_l2(
            "node-a",
            BTreeSet::from([L2Announced {
                service: "default/web".into(),
                ip,
            }]),
            Some(3),
        );
        m.set_memberlist_counters(Box::new(|| MemberlistCounters {
            received: 5,
            sent: 6,
            dropped_unauthenticated: 2,
            dropped_malformed: 1,
            send_errors: 0,
        }));
        let text = m.render();
        for line in [
            "metallb_speaker_announced{service=\"default/web\",protocol=\"layer2\",node=\"node-a\",ip=\"192.0.2.10\"} 1\n",
            "ferrolb_memberlist_members 3\n",
            "ferrolb_memberlist_datagrams_received_total 5\n",
            "ferrolb_memberlist_datagrams_sent_total 6\n",
            "ferrolb_memberlist_datagrams_dropped_total{reason=\"unauthenticated\"} 2\n",
            "ferrolb_memberlist_datagrams_dropped_total{reason=\"malformed\"} 1\n",
            "ferrolb_memberlist_send_errors_total 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        m.set_l2("node-a", BTreeSet::new(), None);
        assert!(!m.render().contains("metallb_speaker_announced{"));
    }

    #[test]
    fn announced_weights_are_rendered_per_peer_and_prefix() {
        let m = Metrics::default();
        m.set_bgp_weights(BTreeMap::from([
            (("192.0.2.1".into(), "198.51.100.1/32".into()), 3.0),
            (("192.0.2.2".into(), "198.51.100.1/32".into()), 1.0),
        ]));
        let text = m.render();
        assert!(
            text.contains("# TYPE ferrolb_bgp_announced_weight gauge"),
            "{text}"
        );
        assert!(text.contains(
            "ferrolb_bgp_announced_weight{peer=\"192.0.2.1\",prefix=\"198.51.100.1/32\"} 3\n"
        ));
        assert!(text.contains(
            "ferrolb_bgp_announced_weight{peer=\"192.0.2.2\",prefix=\"198.51.100.1/32\"} 1\n"
        ));
        m.set_bgp_weights(BTreeMap::new());
        assert!(!m.render().contains("ferrolb_bgp_announced_weight{"));
    }

    #[test]
    fn bfd_families_carry_metallbs_names_types_and_peer_label() {
        let m = Metrics::default();
        assert!(!m.render().contains("metallb_bfd_"), "no BFD, no families");
        m.set_bfd_counters(Box::new(|| {
            let c = ferrolb_bfd::Counters {
                control_packet_input: 5,
                control_packet_output: 6,
                echo_packet_input: 0,
                echo_packet_output: 0,
                session_up_events: 2,
                session_down_events: 1,
                session_up: 1,
            };
            (vec![("192.0.2.1".to_owned(), c)], vec![("bad_ttl", 3)])
        }));
        let text = m.render();
        for line in [
            "# TYPE metallb_bfd_session_up gauge\n",
            "metallb_bfd_session_up{peer=\"192.0.2.1\"} 1\n",
            "# TYPE metallb_bfd_control_packet_input counter\n",
            "metallb_bfd_control_packet_input{peer=\"192.0.2.1\"} 5\n",
            "metallb_bfd_control_packet_output{peer=\"192.0.2.1\"} 6\n",
            "metallb_bfd_echo_packet_input{peer=\"192.0.2.1\"} 0\n",
            "metallb_bfd_echo_packet_output{peer=\"192.0.2.1\"} 0\n",
            "# TYPE metallb_bfd_session_up_events counter\n",
            "metallb_bfd_session_up_events{peer=\"192.0.2.1\"} 2\n",
            "metallb_bfd_session_down_events{peer=\"192.0.2.1\"} 1\n",
            "ferrolb_bfd_dropped_packets_total{reason=\"bad_ttl\"} 3\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
