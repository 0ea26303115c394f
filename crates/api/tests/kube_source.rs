//! `source::kube::snapshots` against a stub API server.
//!
//! Test double: `StubApiServer` is a tower service standing in for the Kubernetes API server.
//! It answers LIST requests for the watched collections from fixed objects (with a
//! resourceVersion) and answers each WATCH with the events queued for that collection (each
//! served once), then ends the stream, which the watcher answers by watching again. It does
//! not model pagination, errors, conflicts or resourceVersion semantics.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

const NS: &str = "metallb-system";

/// Test double, see the module doc.
#[derive(Clone, Default)]
struct StubApiServer {
    /// Collection path (`/apis/metallb.io/v1beta1/namespaces/ns/ipaddresspools`) → items.
    collections: BTreeMap<String, Vec<Value>>,
    /// Collection path → watch events (JSON lines) still to be served, once each.
    events: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
    /// Paths of every request seen.
    seen: Arc<Mutex<Vec<String>>>,
}

impl StubApiServer {
    fn respond(
        &self,
        req: &http::Request<kube::client::Body>,
    ) -> http::Response<kube::client::Body> {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(format!("{path}?{query}"));
        }
        if query.contains("watch=true") {
            let queued = self
                .events
                .lock()
                .ok()
                .and_then(|mut e| e.remove(&path))
                .unwrap_or_default();
            let mut body = Vec::new();
            for ev in queued {
                body.extend(serde_json::to_vec(&ev).unwrap());
                body.push(b'\n');
            }
            return http::Response::new(body.into());
        }
        let Some(items) = self.collections.get(&path) else {
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "NotFound", "code": 404, "message": format!("no stub for {path}")});
            let mut resp = http::Response::new(serde_json::to_vec(&status).unwrap().into());
            *resp.status_mut() = http::StatusCode::NOT_FOUND;
            return resp;
        };
        let list = json!({"apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": "1"}, "items": items});
        http::Response::new(serde_json::to_vec(&list).unwrap().into())
    }
}

fn object(api_version: &str, kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "1"}, "spec": spec})
}

fn stub() -> StubApiServer {
    let crd = |plural: &str, version: &str| {
        format!("/apis/metallb.io/{version}/namespaces/{NS}/{plural}")
    };
    let mut collections = BTreeMap::new();
    collections.insert(
        crd("ipaddresspools", "v1beta1"),
        vec![
            object(
                "metallb.io/v1beta1",
                "IPAddressPool",
                "zeta",
                json!({"addresses": ["10.0.1.0/24"]}),
            ),
            object(
                "metallb.io/v1beta1",
                "IPAddressPool",
                "alpha",
                json!({"addresses": ["10.0.0.0/24"]}),
            ),
        ],
    );
    collections.insert(
        crd("bgppeers", "v1beta2"),
        vec![object(
            "metallb.io/v1beta2",
            "BGPPeer",
            "peer",
            json!({"myASN": 64512, "peerASN": 64513,
            "peerAddress": "10.1.0.1", "passwordSecret": {"name": "bgp"}}),
        )],
    );
    collections.insert(
        crd("bgpadvertisements", "v1beta1"),
        vec![object(
            "metallb.io/v1beta1",
            "BGPAdvertisement",
            "adv",
            json!({}),
        )],
    );
    collections.insert(crd("l2advertisements", "v1beta1"), vec![]);
    collections.insert(crd("communities", "v1beta1"), vec![]);
    collections.insert(crd("bfdprofiles", "v1beta1"), vec![]);
    collections.insert(
        format!("/api/v1/namespaces/{NS}/secrets"),
        vec![
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
            "metadata": {"name": "bgp", "namespace": NS, "resourceVersion": "1"},
            "stringData": {"password": "pw"}}),
        ],
    );
    StubApiServer {
        collections,
        events: Arc::default(),
        seen: Arc::default(),
    }
}

#[tokio::test]
async fn first_snapshot_holds_every_watched_kind_sorted_and_validates() {
    let server = stub();
    let seen = server.seen.clone();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let resp = server.respond(&req);
        async move { Ok::<_, Infallible>(resp) }
    });
    let client = kube::Client::new(service, NS);
    let mut snapshots = Box::pin(ferrolb_api::source::kube::snapshots(client, NS));
    let first = tokio::time::timeout(Duration::from_secs(30), snapshots.next())
        .await
        .expect("a snapshot within the deadline")
        .expect("the stream yields")
        .unwrap_or_else(|e| panic!("watch error: {e}; requests: {:?}", seen.lock().unwrap()));
    let names: Vec<_> = first
        .ip_address_pools
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(first.bgp_peers.len(), 1);
    assert_eq!(first.bgp_advertisements.len(), 1);
    assert_eq!(first.secrets.len(), 1);
    let config = ferrolb_api::validate::validate(&first).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(config.bgp_peers["peer"].password.as_deref(), Some("pw"));
    assert_eq!(config.bgp_advertisements["adv"].pools.len(), 2);
}

#[tokio::test]
async fn a_watch_event_yields_a_new_snapshot_with_the_change() {
    let server = stub();
    let added = object(
        "metallb.io/v1beta1",
        "IPAddressPool",
        "beta",
        json!({"addresses": ["10.0.2.0/24"]}),
    );
    let mut ev = added.clone();
    ev["metadata"]["resourceVersion"] = json!("2");
    server.events.lock().unwrap().insert(
        format!("/apis/metallb.io/v1beta1/namespaces/{NS}/ipaddresspools"),
        vec![json!({"type": "ADDED", "object": ev})],
    );
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let resp = server.respond(&req);
        async move { Ok::<_, Infallible>(resp) }
    });
    let client = kube::Client::new(service, NS);
    let mut snapshots = Box::pin(ferrolb_api::source::kube::snapshots(client, NS));
    // Snapshots come after every change once all lists are done; wait (bounded) for one that
    // shows the added pool.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen_pools = Vec::new();
    for _ in 0..100 {
        let next = tokio::time::timeout_at(deadline, snapshots.next())
            .await
            .expect("a snapshot within the deadline")
            .expect("the stream yields")
            .expect("no watch error");
        seen_pools = next
            .ip_address_pools
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        if seen_pools.len() == 3 {
            break;
        }
    }
    assert_eq!(seen_pools, ["alpha", "beta", "zeta"]);
}
