//! Counters read at scrape time from where they are kept (atomics in crates/bgp's peer tasks,
//! crates/arp's responder), rendered under MetalLB's names so its dashboards work unchanged.
//!
//! ```text
//!  crates/bgp peer task ── Arc<MessageCounters> ── Speaker::message_counts ─┐
//!  backend/bgp.rs registers a PeerMessages per session (peer label, vrf, reader) ─┴─▶ render
//!  crates/arp Responder ── VipCountsReader (per VIP it answers for) ─────────────────▶ render
//! ```
//!
//! MetalLB's FRR-mode collector (`frr-tools/metrics/collector/bgp.go`) exports the message
//! counts per neighbor with labels `peer` (`address:port`) and `vrf` (`default` outside a VRF),
//! all counters; [`BGP_MESSAGE_FAMILIES`] is its list, names and help texts. Its Layer 2
//! counters (`internal/layer2/stats.go`) are [`LAYER2_FAMILIES`], labelled `ip`.

use std::fmt::Write as _;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_api::ops_http::escape_label_value;
use ferrolb_arp::VipCounts;
use ferrolb_bgp::counters::MessageCounts;

/// Reads the Layer 2 counts of every VIP this node answers for.
pub type VipCountsReader = Box<dyn Fn() -> BTreeMap<IpAddr, VipCounts> + Send + Sync>;

/// One exported per-VIP family: name, help, and the count it shows.
type VipFamily = (&'static str, &'static str, fn(&VipCounts) -> u64);

/// MetalLB's Layer 2 counters, per VIP (`ip`).
pub const LAYER2_FAMILIES: [VipFamily; 3] = [
    (
        "metallb_layer2_requests_received",
        "Number of layer2 requests received for owned IPs",
        |c| c.requests_received,
    ),
    (
        "metallb_layer2_responses_sent",
        "Number of layer2 responses sent for owned IPs in response to requests",
        |c| c.responses_sent,
    ),
    (
        "metallb_layer2_gratuitous_sent",
        "Number of gratuitous layer2 packets sent for owned IPs as a result of failovers",
        |c| c.gratuitous_sent,
    ),
];

/// Appends [`LAYER2_FAMILIES`] for `counts` (a VIP this node no longer answers for has no
/// series).
pub fn render_layer2(out: &mut String, counts: &BTreeMap<IpAddr, VipCounts>) {
    for (name, help, value) in LAYER2_FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
        for (ip, c) in counts {
            let _ = writeln!(out, "{name}{{ip=\"{ip}\"}} {}", value(c));
        }
    }
}

/// Reads one session's message counts; `None` while the session has no peer task.
pub type MessageReader = Box<dyn Fn() -> Option<MessageCounts> + Send + Sync>;

/// One BGP session whose message counts are exported.
pub struct PeerMessages {
    /// MetalLB's `peer` label: `address:port`.
    pub peer: String,
    /// MetalLB's `vrf` label: the BGPPeer's VRF, `default` without one.
    pub vrf: String,
    /// Where the counts are read.
    pub read: MessageReader,
}

impl std::fmt::Debug for PeerMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerMessages")
            .field("peer", &self.peer)
            .field("vrf", &self.vrf)
            .finish_non_exhaustive()
    }
}

/// One exported family: name, help, and the count it shows.
type Family = (&'static str, &'static str, fn(&MessageCounts) -> u64);

/// MetalLB's FRR-mode per-neighbor message counters, in its order. `metallb_bgp_updates_total`
/// (UPDATEs sent) is exported with the native-mode families, labelled `peer` only.
pub const BGP_MESSAGE_FAMILIES: [Family; 9] = [
    (
        "metallb_bgp_opens_sent",
        "Number of BGP open messages sent",
        |c| c.sent.opens,
    ),
    (
        "metallb_bgp_opens_received",
        "Number of BGP open messages received",
        |c| c.received.opens,
    ),
    (
        "metallb_bgp_notifications_sent",
        "Number of BGP notification messages sent",
        |c| c.sent.notifications,
    ),
    (
        "metallb_bgp_updates_total_received",
        "Number of BGP UPDATE messages received",
        |c| c.received.updates,
    ),
    (
        "metallb_bgp_keepalives_sent",
        "Number of BGP keepalive messages sent",
        |c| c.sent.keepalives,
    ),
    (
        "metallb_bgp_keepalives_received",
        "Number of BGP keepalive messages received",
        |c| c.received.keepalives,
    ),
    (
        "metallb_bgp_route_refresh_sent",
        "Number of BGP route refresh messages sent",
        |c| c.sent.route_refreshes,
    ),
    (
        "metallb_bgp_total_sent",
        "Number of total BGP messages sent",
        |c| c.sent.total,
    ),
    (
        "metallb_bgp_total_received",
        "Number of total BGP messages received",
        |c| c.received.total,
    ),
];

/// Appends the families of [`BGP_MESSAGE_FAMILIES`] for `sessions` (each read once). A
/// session without a peer task has no series.
pub fn render_bgp_messages<'a>(
    out: &mut String,
    sessions: impl IntoIterator<Item = &'a PeerMessages>,
) {
    let read: Vec<(&PeerMessages, MessageCounts)> = sessions
        .into_iter()
        .filter_map(|s| (s.read)().map(|c| (s, c)))
        .collect();
    for (name, help, value) in BGP_MESSAGE_FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
        for (s, c) in &read {
            let _ = writeln!(
                out,
                "{name}{{peer=\"{}\",vrf=\"{}\"}} {}",
                escape_label_value(&s.peer),
                escape_label_value(&s.vrf),
                value(c)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer2_families_per_ip() {
        let counts = BTreeMap::from([(
            "192.0.2.10".parse().expect("ip"),
            VipCounts {
                requests_received: 3,
                responses_sent: 2,
                gratuitous_sent: 4,
            },
        )]);
        let mut text = String::new();
        render_layer2(&mut text, &counts);
        for line in [
            "# TYPE metallb_layer2_requests_received counter\n",
            "metallb_layer2_requests_received{ip=\"192.0.2.10\"} 3\n",
            "# TYPE metallb_layer2_responses_sent counter\n",
            "metallb_layer2_responses_sent{ip=\"192.0.2.10\"} 2\n",
            "# TYPE metallb_layer2_gratuitous_sent counter\n",
            "metallb_layer2_gratuitous_sent{ip=\"192.0.2.10\"} 4\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
    use ferrolb_bgp::counters::{MessageCounters, MessageType};
    use std::sync::Arc;

    #[test]
    fn every_family_with_peer_and_vrf_labels() {
        let counters = Arc::new(MessageCounters::default());
        counters.count_sent(MessageType::Open, 1);
        counters.count_sent(MessageType::Keepalive, 4);
        counters.count_sent(MessageType::Notification, 1);
        counters.count_sent(MessageType::RouteRefresh, 1);
        counters.count_received(Some(MessageType::Open));
        counters.count_received(Some(MessageType::Update));
        counters.count_received(Some(MessageType::Keepalive));
        let c = Arc::clone(&counters);
        let sessions = [
            PeerMessages {
                peer: "192.0.2.1:179".into(),
                vrf: "default".into(),
                read: Box::new(move || Some(c.snapshot())),
            },
            PeerMessages {
                peer: "192.0.2.2:179".into(),
                vrf: "red".into(),
                read: Box::new(|| None),
            },
        ];
        let mut text = String::new();
        render_bgp_messages(&mut text, &sessions);
        for line in [
            "# TYPE metallb_bgp_opens_sent counter\n",
            "metallb_bgp_opens_sent{peer=\"192.0.2.1:179\",vrf=\"default\"} 1\n",
            "metallb_bgp_opens_received{peer=\"192.0.2.1:179\",vrf=\"default\"} 1\n",
            "metallb_bgp_notifications_sent{peer=\"192.0.2.1:179\",vrf=\"default\"} 1\n",
            "metallb_bgp_updates_total_received{peer=\"192.0.2.1:179\",vrf=\"default\"} 1\n",
            "metallb_bgp_keepalives_sent{peer=\"192.0.2.1:179\",vrf=\"default\"} 4\n",
            "metallb_bgp_keepalives_received{peer=\"192.0.2.1:179\",vrf=\"default\"} 1\n",
            "metallb_bgp_route_refresh_sent{peer=\"192.0.2.1:179\",vrf=\"default\"} 1\n",
            "metallb_bgp_total_sent{peer=\"192.0.2.1:179\",vrf=\"default\"} 7\n",
            "metallb_bgp_total_received{peer=\"192.0.2.1:179\",vrf=\"default\"} 3\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // No task, no series (the families' HELP and TYPE stay).
        assert!(!text.contains("192.0.2.2"), "{text}");
        assert_eq!(text.matches("# TYPE ").count(), 9);
    }
}
