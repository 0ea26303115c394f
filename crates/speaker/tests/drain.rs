//! A node drain through the reconcile step. BGP: on the signal the routes stay, marked
//! GRACEFUL_SHUTDOWN with LOCAL_PREF 0 (RFC 8326 §4.1); the protocol's timer wakes the loop
//! when the drain period ends and the routes are withdrawn; without the signal they are
//! announced normally again. Layer 2: the next owner takes the VIP at once, the drained owner
//! answers until the period ends. On tokio's paused clock: no real waiting.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::source::{files::load_str, Resources};
use ferrolb_bgp::wire::attribute::Community;
use ferrolb_speaker::advertiser::testing::FakeAdvertiser;
use ferrolb_speaker::advertiser::L2Desired;
use ferrolb_speaker::announce::bgp::BgpDesired;
use ferrolb_speaker::announce::drain::DrainPhase;
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::channels::{SourceUpdate, Wake};
use ferrolb_speaker::daemon::reconcile::Reconciler;
use ferrolb_speaker::l2::election::rank_nodes;
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::protocol::bgp::BgpProtocol;
use ferrolb_speaker::protocol::l2::L2Protocol;

const PERIOD: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["198.51.100.0/24"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64500, peerAddress: 192.0.2.1}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv, namespace: metallb-system}
spec: {ipAddressPools: [pool], localPref: 150}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.1}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-x, namespace: default, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], nodeName: node-a, conditions: {ready: true}}]
"#;

fn snapshot(node_meta: &str, node_spec: &str) -> SourceUpdate {
    let text = format!(
        "{CONFIG}---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-a, {node_meta}}}\nspec: {{{node_spec}}}\n"
    );
    let res: Resources = load_str(&text, Path::new("test")).expect("test YAML");
    SourceUpdate::snapshot(res)
}

fn reconciler() -> (Reconciler, tokio::sync::mpsc::Receiver<Wake>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let r = Reconciler::new(
        SpeakerOptions::for_node("node-a"),
        Arc::new(Metrics::default()),
    )
    .with_protocol(
        BgpProtocol::new(
            SpeakerOptions::for_node("node-a"),
            FakeAdvertiser::default(),
        )
        .with_drain(PERIOD, tx),
    );
    (r, rx)
}

fn bgp(r: &Reconciler) -> &BgpProtocol<FakeAdvertiser<BgpDesired>> {
    r.protocol::<BgpProtocol<FakeAdvertiser<BgpDesired>>>()
        .expect("BGP registered")
}

/// (GRACEFUL_SHUTDOWN present, LOCAL_PREF) of the one route, or None when withdrawn.
fn route(r: &Reconciler) -> Option<(bool, Option<u32>)> {
    let d = bgp(r).advertiser().current().expect("a state");
    let p = d.peers.values().next().expect("one peer");
    p.routes.values().next().map(|r| {
        (
            r.communities.contains(&Community::GRACEFUL_SHUTDOWN),
            r.local_pref,
        )
    })
}

async fn drains_then_withdraws(node_meta: &str, node_spec: &str) {
    let (mut r, mut wakes) = reconciler();
    r.apply(snapshot("labels: {}", ""));
    assert_eq!(route(&r), Some((false, Some(150))), "announced normally");

    r.apply(snapshot(node_meta, node_spec));
    assert!(matches!(bgp(&r).drain_phase(), DrainPhase::Draining { .. }));
    assert_eq!(
        route(&r),
        Some((true, Some(0))),
        "GRACEFUL_SHUTDOWN, LOCAL_PREF 0"
    );

    // The protocol's timer wakes the loop at the end of the period.
    tokio::time::advance(PERIOD).await;
    let Wake(name) = wakes.recv().await.expect("a wake at the end of the drain");
    r.wake(name);
    assert_eq!(bgp(&r).drain_phase(), DrainPhase::Drained);
    assert_eq!(route(&r), None, "withdrawn after the drain period");

    r.apply(snapshot("labels: {}", ""));
    assert_eq!(bgp(&r).drain_phase(), DrainPhase::Serving);
    assert_eq!(
        route(&r),
        Some((false, Some(150))),
        "announced normally again"
    );
}

#[tokio::test(start_paused = true)]
async fn the_drain_annotation_drains_then_withdraws() {
    drains_then_withdraws("annotations: {ferrolb.io/drain: \"true\"}", "").await;
}

#[tokio::test(start_paused = true)]
async fn the_exclusion_label_drains_then_withdraws() {
    drains_then_withdraws(
        "labels: {node.kubernetes.io/exclude-from-external-load-balancers: \"\"}",
        "",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_autoscaler_taint_drains_then_withdraws() {
    drains_then_withdraws(
        "labels: {}",
        "taints: [{key: ToBeDeletedByClusterAutoscaler, value: \"1\", effect: NoSchedule}]",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_node_signalled_from_the_start_announces_nothing() {
    // kubeadm labels control-plane nodes excluded for good: a speaker starting there must not
    // announce for a drain period first.
    let (mut r, _wakes) = reconciler();
    r.apply(snapshot(
        "labels: {node.kubernetes.io/exclude-from-external-load-balancers: \"\"}",
        "",
    ));
    assert_eq!(bgp(&r).drain_phase(), DrainPhase::Drained);
    assert_eq!(route(&r), None);
}

#[tokio::test(start_paused = true)]
async fn a_cordon_is_no_drain() {
    let (mut r, _wakes) = reconciler();
    r.apply(snapshot("labels: {}", "unschedulable: true"));
    assert_eq!(bgp(&r).drain_phase(), DrainPhase::Serving);
    assert_eq!(route(&r), Some((false, Some(150))));
}

const L2_CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["192.168.50.200/32"]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 192.168.50.200}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-x, namespace: default, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], nodeName: node-a, conditions: {ready: true}}]
"#;

/// Both Nodes; `drained` carries the drain annotation.
fn l2_snapshot(drained: Option<&str>) -> SourceUpdate {
    let mut text = L2_CONFIG.to_owned();
    for n in ["node-a", "node-b"] {
        let ann = if drained == Some(n) {
            "annotations: {ferrolb.io/drain: \"true\"}"
        } else {
            "labels: {}"
        };
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: {n}, {ann}}}\n"
        ));
    }
    let res: Resources = load_str(&text, Path::new("test")).expect("test YAML");
    SourceUpdate::snapshot(res)
}

fn l2_speaker(node: &str) -> (Reconciler, tokio::sync::mpsc::Receiver<Wake>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let r = Reconciler::new(SpeakerOptions::for_node(node), Arc::new(Metrics::default()))
        .with_protocol(
            L2Protocol::new(
                SpeakerOptions::for_node(node),
                FakeAdvertiser::<L2Desired>::default(),
                None,
            )
            .with_drain(PERIOD, tx),
        );
    (r, rx)
}

fn answers(r: &Reconciler) -> bool {
    r.protocol::<L2Protocol>()
        .expect("L2 registered")
        .applied()
        .is_some_and(|d| !d.vips.is_empty())
}

#[tokio::test(start_paused = true)]
async fn l2_the_next_owner_takes_over_at_once_while_the_drained_owner_answers_until_the_period_ends(
) {
    let vip = "192.168.50.200".parse().expect("ip");
    let ranking = rank_nodes(["node-a".to_owned(), "node-b".to_owned()], vip);
    let (owner, next) = (ranking[0].clone(), ranking[1].clone());
    let (mut old, mut wakes) = l2_speaker(&owner);
    let (mut new, _new_wakes) = l2_speaker(&next);
    old.apply(l2_snapshot(None));
    new.apply(l2_snapshot(None));
    assert!(answers(&old) && !answers(&new), "{owner} owns the VIP");

    old.apply(l2_snapshot(Some(&owner)));
    new.apply(l2_snapshot(Some(&owner)));
    // The next owner answers (and sends its gratuitous ARP) at once; the drained one goes on
    // answering through the drain period, so no client is left without an answer.
    assert!(answers(&new), "{next} took over");
    assert!(
        answers(&old),
        "{owner} still answers during its drain period"
    );

    tokio::time::advance(PERIOD).await;
    let Wake(name) = wakes.recv().await.expect("a wake at the end of the drain");
    old.wake(name);
    assert!(
        !answers(&old),
        "{owner} stopped answering after the drain period"
    );
    assert!(answers(&new));
}
