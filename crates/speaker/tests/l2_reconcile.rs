//! The Layer 2 part of the reconcile loop: every speaker elects the same owner from the same
//! snapshot, a liveness change re-elects without a new snapshot, ETP Local keeps a VIP off
//! nodes without an endpoint, and a BGP-only configuration keeps no cluster for L2.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ferrolb_api::source::{files::load_str, Resources};
use ferrolb_speaker::advertiser::testing::FakeAdvertiser;
use ferrolb_speaker::advertiser::{Advertiser, AdvertiserError, L2Desired};
use ferrolb_speaker::announce::bgp::BgpDesired;
use ferrolb_speaker::announce::input::ServiceKey;
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::channels::SourceUpdate;
use ferrolb_speaker::daemon::reconcile::Reconciler;
use ferrolb_speaker::l2::election::rank_nodes;
use ferrolb_speaker::l2::memberlist::{Liveness, NodeAddrs};
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::protocol::bgp::BgpProtocol;
use ferrolb_speaker::protocol::l2::{self, service_json, L2Protocol};
use tokio::sync::watch;

/// Test double: records every L2 state it is given, shared with the test.
#[derive(Clone, Default)]
struct SharedFake(Arc<Mutex<Vec<L2Desired>>>);

impl SharedFake {
    fn current_vips(&self) -> BTreeSet<IpAddr> {
        self.0
            .lock()
            .expect("lock")
            .last()
            .map(|d| d.vips.keys().copied().collect())
            .unwrap_or_default()
    }
}

impl Advertiser for SharedFake {
    type Desired = L2Desired;
    fn set_desired(&mut self, desired: L2Desired) -> Result<(), AdvertiserError> {
        self.0.lock().expect("lock").push(desired);
        Ok(())
    }
}

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
const VIP: &str = "192.0.2.10";

fn node_yaml(name: &str, ip: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Node
metadata: {{name: {name}}}
status: {{addresses: [{{type: InternalIP, address: "{ip}"}}]}}
"#
    )
}

/// Three Nodes, an L2 pool (when `l2`), Service web at VIP with endpoints on `endpoint_nodes`.
fn snapshot(l2: bool, local: bool, endpoint_nodes: &[&str]) -> SourceUpdate {
    let mut text = String::from(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["192.0.2.0/24"]}
"#,
    );
    if l2 {
        text.push_str(
            r#"
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec: {ipAddressPools: [pool]}
"#,
        );
    }
    for (i, n) in NODES.iter().enumerate() {
        text.push_str(&node_yaml(n, &format!("10.1.0.{}", i + 1)));
    }
    let policy = if local { "Local" } else { "Cluster" };
    text.push_str(&format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, ports: [{{port: 80}}]}}
status: {{loadBalancer: {{ingress: [{{ip: {VIP}}}]}}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-x, namespace: default, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
endpoints: [{}]
"#,
        endpoint_nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!(
                "{{addresses: [10.0.0.{}], nodeName: {n}, conditions: {{ready: true}}}}",
                i + 1
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let res: Resources = load_str(&text, Path::new("test")).expect("test YAML");
    SourceUpdate::snapshot(res)
}

struct Speaker {
    reconciler: Reconciler,
    l2: SharedFake,
    nodes: watch::Receiver<NodeAddrs>,
    /// The gossip's live set, as the memberlist publishes it.
    live: watch::Sender<Liveness>,
}

impl Speaker {
    /// The gossip saw `live`: the L2 protocol is woken, as the liveness forwarder does.
    fn set_live(&mut self, live: Liveness) -> Vec<ServiceKey> {
        self.live.send_replace(live);
        self.reconciler.wake(l2::NAME)
    }

    fn l2_protocol(&self) -> &L2Protocol {
        self.reconciler.protocol::<L2Protocol>().expect("attached")
    }
}

fn speaker(node: &str) -> Speaker {
    let l2 = SharedFake::default();
    let (nodes_tx, nodes) = watch::channel(NodeAddrs::new());
    let (live, live_rx) = watch::channel(None);
    let reconciler = Reconciler::new(SpeakerOptions::for_node(node), Arc::new(Metrics::default()))
        .with_protocol(BgpProtocol::new(
            SpeakerOptions::for_node(node),
            FakeAdvertiser::<BgpDesired>::default(),
        ))
        .with_protocol(
            L2Protocol::new(SpeakerOptions::for_node(node), l2.clone(), Some(nodes_tx))
                .with_liveness(live_rx),
        );
    Speaker {
        reconciler,
        l2,
        nodes,
        live,
    }
}

fn vip() -> IpAddr {
    VIP.parse().expect("ip")
}

fn ranking() -> Vec<String> {
    rank_nodes(NODES.iter().map(|n| n.to_string()), vip())
}

fn live(nodes: &[&str]) -> Liveness {
    Some(nodes.iter().map(|n| n.to_string()).collect())
}

#[test]
fn every_speaker_elects_the_same_single_owner() {
    let mut owners = Vec::new();
    for n in NODES {
        let mut s = speaker(n);
        let changed = s.reconciler.apply(snapshot(true, false, &NODES));
        assert!(changed.contains(&ServiceKey::new("default", "web")));
        if s.l2.current_vips().contains(&vip()) {
            owners.push(n.to_string());
        }
        let status = s
            .l2_protocol()
            .statuses()
            .get(&ServiceKey::new("default", "web"))
            .map(service_json)
            .expect("web has an L2 report");
        assert_eq!(status["vips"][VIP]["node"], ranking()[0].as_str());
        assert_eq!(status["announcedHere"], ranking()[0] == n);
        // The gossip learns every Node's InternalIP from the snapshot.
        assert_eq!(s.nodes.borrow().len(), 3);
        assert_eq!(
            s.nodes.borrow().get("node-b"),
            Some(&vec!["10.1.0.2".parse::<IpAddr>().expect("ip")])
        );
    }
    assert_eq!(owners, vec![ranking()[0].clone()]);
}

#[test]
fn a_dead_owner_hands_the_vip_to_the_runner_up_without_a_new_snapshot() {
    let rank = ranking();
    let mut runner_up = speaker(&rank[1]);
    runner_up.reconciler.apply(snapshot(true, false, &NODES));
    assert!(!runner_up.l2.current_vips().contains(&vip()));

    let survivors: Vec<&str> = rank[1..].iter().map(String::as_str).collect();
    let changed = runner_up.set_live(live(&survivors));
    assert_eq!(changed, vec![ServiceKey::new("default", "web")]);
    assert!(runner_up.l2.current_vips().contains(&vip()));

    // The same live set again changes nothing and sends nothing.
    let sent = runner_up.l2.0.lock().expect("lock").len();
    assert!(runner_up.set_live(live(&survivors)).is_empty());
    assert_eq!(runner_up.l2.0.lock().expect("lock").len(), sent);

    // Liveness unknown again (gossip restarting): Node readiness says the owner is back.
    runner_up.set_live(None);
    assert!(!runner_up.l2.current_vips().contains(&vip()));
}

#[test]
fn etp_local_keeps_the_vip_off_nodes_without_an_endpoint() {
    // The endpoint is on the node ranked last, so the election must skip the first two.
    let rank = ranking();
    let holder = rank[2].as_str();
    for n in NODES {
        let mut s = speaker(n);
        s.reconciler.apply(snapshot(true, true, &[holder]));
        assert_eq!(
            s.l2.current_vips().contains(&vip()),
            n == holder,
            "node {n}, endpoint on {holder}"
        );
        // Even with the holder dead, nobody else takes it.
        let others: Vec<&str> = NODES.iter().copied().filter(|x| *x != holder).collect();
        if n != holder {
            s.set_live(live(&others));
            assert!(!s.l2.current_vips().contains(&vip()), "node {n}");
        }
    }
}

#[test]
fn a_bgp_only_configuration_gives_layer_2_nothing_to_do() {
    let mut s = speaker(&ranking()[0]);
    s.reconciler.apply(snapshot(true, false, &NODES));
    assert!(s.l2.current_vips().contains(&vip()));
    let changed = s.reconciler.apply(snapshot(false, false, &NODES));
    assert!(changed.contains(&ServiceKey::new("default", "web")));
    assert!(s.l2.current_vips().is_empty());
    assert!(s.l2_protocol().statuses().is_empty());
}
