//! The reconcile step with the test double advertiser: what reaches the advertiser, and what
//! does not, for each kind of source update.

use std::path::Path;
use std::sync::Arc;

use ferrolb_api::source::{files::load_str, Resources};
use ferrolb_e2e::fixture;
use ferrolb_speaker::advertiser::testing::FakeAdvertiser;
use ferrolb_speaker::announce::bgp::BgpDesired;
use ferrolb_speaker::announce::input::ServiceKey;
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::channels::SourceUpdate;
use ferrolb_speaker::daemon::reconcile::{cluster_from_resources, Reconciler};
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::protocol::bgp::BgpProtocol;

const CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["198.51.100.0/24"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64512, peerAddress: 192.0.2.1}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv, namespace: metallb-system}
spec: {ipAddressPools: [pool]}
"#;

const BAD_POOL: &str = r#"
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad, namespace: metallb-system}
spec: {addresses: ["nope"]}
"#;

/// A Service at `ip` with one ready endpoint on node-a, to append to a YAML stream.
fn service(name: &str, ip: &str) -> String {
    let docs = fixture::service_with_endpoints(name, &[ip], "Cluster", &["node-a"]);
    format!("\n---\n{docs}")
}

fn snapshot(text: &str) -> SourceUpdate {
    let res: Resources = load_str(text, Path::new("test")).expect("test YAML");
    SourceUpdate::snapshot(res)
}

fn prefixes(d: &BgpDesired) -> Vec<String> {
    d.peers
        .values()
        .flat_map(|p| p.routes.keys().map(ToString::to_string))
        .collect()
}

fn reconciler() -> (Reconciler, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let r = Reconciler::new(SpeakerOptions::for_node("node-a"), Arc::clone(&metrics))
        .with_protocol(BgpProtocol::new(
            SpeakerOptions::for_node("node-a"),
            FakeAdvertiser::default(),
        ));
    (r, metrics)
}

/// The BGP protocol's fake advertiser.
fn advertiser(r: &Reconciler) -> &FakeAdvertiser<BgpDesired> {
    r.protocol::<BgpProtocol<FakeAdvertiser<BgpDesired>>>()
        .expect("BGP registered")
        .advertiser()
}

#[test]
fn a_snapshot_reaches_the_advertiser_as_one_whole_state() {
    let (mut r, metrics) = reconciler();
    let changed = r.apply(snapshot(&format!(
        "{CONFIG}{}",
        service("a", "198.51.100.1")
    )));
    assert_eq!(changed, vec![ServiceKey::new("default", "a")]);
    let current = advertiser(&r).current().expect("a state");
    assert_eq!(prefixes(current), vec!["198.51.100.1/32"]);
    assert!(metrics.ready());
    assert!(!metrics.config_stale());
}

#[test]
fn the_same_snapshot_twice_is_not_sent_twice() {
    let (mut r, _) = reconciler();
    let text = format!("{CONFIG}{}", service("a", "198.51.100.1"));
    r.apply(snapshot(&text));
    let changed = r.apply(snapshot(&text));
    assert!(changed.is_empty());
    assert_eq!(advertiser(&r).history.len(), 1);
}

#[test]
fn an_unavailable_source_keeps_routes_and_sets_stale() {
    let (mut r, metrics) = reconciler();
    r.apply(snapshot(&format!(
        "{CONFIG}{}",
        service("a", "198.51.100.1")
    )));
    let changed = r.apply(SourceUpdate::Unavailable("permission denied".into()));
    assert!(changed.is_empty());
    assert_eq!(
        advertiser(&r).history.len(),
        1,
        "nothing sent: an outage is not a delete"
    );
    assert!(metrics.config_stale());
    // Readable again: stale clears, nothing changes on the wire.
    r.apply(snapshot(&format!(
        "{CONFIG}{}",
        service("a", "198.51.100.1")
    )));
    assert!(!metrics.config_stale());
    assert_eq!(advertiser(&r).history.len(), 1);
}

#[test]
fn a_service_gone_from_a_readable_snapshot_is_withdrawn() {
    let (mut r, _) = reconciler();
    r.apply(snapshot(&format!(
        "{CONFIG}{}{}",
        service("a", "198.51.100.1"),
        service("b", "198.51.100.2")
    )));
    let changed = r.apply(snapshot(&format!(
        "{CONFIG}{}",
        service("a", "198.51.100.1")
    )));
    assert_eq!(changed, vec![ServiceKey::new("default", "b")]);
    let current = advertiser(&r).current().expect("a state");
    assert_eq!(prefixes(current), vec!["198.51.100.1/32"]);
}

#[test]
fn an_invalid_config_keeps_the_last_good_one_and_sets_stale() {
    let (mut r, metrics) = reconciler();
    r.apply(snapshot(&format!(
        "{CONFIG}{}",
        service("a", "198.51.100.1")
    )));
    r.apply(snapshot(&format!(
        "{CONFIG}{BAD_POOL}{}{}",
        service("a", "198.51.100.1"),
        service("b", "198.51.100.2")
    )));
    assert!(metrics.config_stale());
    let current = advertiser(&r).current().expect("a state");
    assert_eq!(
        prefixes(current),
        vec!["198.51.100.1/32", "198.51.100.2/32"],
        "the last good config announces the snapshot's Services"
    );
}

#[test]
fn no_valid_config_ever_sends_nothing() {
    let (mut r, metrics) = reconciler();
    r.apply(snapshot(&format!(
        "{CONFIG}{BAD_POOL}{}",
        service("a", "198.51.100.1")
    )));
    assert!(advertiser(&r).history.is_empty());
    assert!(metrics.config_stale());
    assert!(!metrics.ready());
}

#[test]
fn a_missing_node_is_synthesized_without_labels() {
    let res = load_str(CONFIG, Path::new("test")).expect("yaml");
    let (cluster, warnings, synthesized) = cluster_from_resources(&res, "node-a");
    assert!(synthesized);
    assert!(warnings.is_empty());
    assert!(cluster.nodes.get("node-a").expect("node").labels.is_empty());
    let with_node = format!(
        "{CONFIG}\n---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-a, labels: {{rack: r1}}}}\n"
    );
    let res = load_str(&with_node, Path::new("test")).expect("yaml");
    let (cluster, _, synthesized) = cluster_from_resources(&res, "node-a");
    assert!(!synthesized);
    assert_eq!(
        cluster
            .nodes
            .get("node-a")
            .expect("node")
            .labels
            .get("rack")
            .map(String::as_str),
        Some("r1")
    );
}
