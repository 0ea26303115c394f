//! Kubernetes mode, and a rejected config emitting an Event, end to end without root: the real `ferrolb-speaker` binary with `--kubeconfig` pointed at the API-server test
//! double (`ferrolb_e2e::apiserver`), announcing to an in-process crates/bgp listener on
//! 127.0.0.1 (collector mode, or a configured peer with TCP-MD5).
//!
//! ```text
//!  test ── ApiServer::apply/delete ──▶ double (HTTP, 127.0.0.1) ◀── list/watch ── ferrolb-speaker
//!   │                                     ▲ ServiceBGPStatus, Events           │ BGP
//!   ├── kube watcher (test's own view) ───┘                                    ▼
//!   └── listener events (UPDATEs) ◀────────────────────────── ferrolb_bgp::Speaker (passive)
//! ```
//!
//! Waits are on events: BGP UPDATEs from the listener, watch events for API objects. Only
//! `/metrics` and `/readyz`, which have no event, are polled with a deadline. Skips loudly when
//! the binary is not built (`cargo build -p ferrolb-speaker`; `scripts/test.sh` builds the
//! workspace).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::fsm::DownReason;
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::error::{cease_subcode, ErrorCode};
use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::fixture::{self, yaml, Object};
use ferrolb_e2e::ours::{wait_http, ApiLab, FlbCommand};
use ferrolb_e2e::{recv_until, Daemon};
use futures::StreamExt;
use ipnet::IpNet;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::Value;
use tokio::sync::mpsc;

/// Every wait is bounded by this.
const LIMIT: Duration = Duration::from_secs(30);
const NS: &str = "metallb-system";
const NODE: &str = "node-a";
const MY_AS: u32 = 64500;
const ROUTER_AS: u32 = 64512;

/// The listener: a passive crates/bgp speaker on 127.0.0.1. With
/// `md5`, it only talks to a configured peer 127.0.0.1 with that TCP-MD5 key (RFC 2385), so
/// a session proves the speaker used the same password.
async fn router(md5: Option<&str>) -> (Speaker, mpsc::Receiver<SpeakerEvent>, u16) {
    let mut cfg = SpeakerConfig::new(ROUTER_AS);
    cfg.router_id = Some(Ipv4Addr::new(10, 255, 0, 1));
    let peer = PeerConfig {
        passive: true,
        peer_as: None,
        deliver_updates: true,
        md5_password: md5.map(str::to_string),
        ..PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    };
    if md5.is_none() {
        cfg.accept_unknown = Some(peer.clone());
    }
    // BGPPeer.spec.peerPort is at most 16384 (MetalLB's CRD), below the kernel's ephemeral
    // range: try ports in 10000..16384 from a per-process, per-call offset.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = (std::process::id() as usize).wrapping_mul(31) + call * 1_009;
    let mut started = None;
    for i in 0..64usize {
        let port = 10_000 + (start.wrapping_add(i * 101) % 6_384) as u16;
        cfg.listen = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))];
        if let Ok(s) = Speaker::start(cfg.clone()).await {
            started = Some(s);
            break;
        }
    }
    let (speaker, events) = started.expect("a free port for the listener in 10000..16384");
    if md5.is_some() {
        speaker.set_peers(vec![peer]).expect("peer with MD5");
    }
    let port = speaker
        .listen_addrs()
        .first()
        .map(SocketAddr::port)
        .expect("bound");
    (speaker, events, port)
}

/// Starts `ferrolb-speaker` in Kubernetes mode (with `extra` arguments) and learns its metrics
/// address from its log. `pod` is (name, uid) as the downward API would set them.
fn spawn_speaker(
    bin: &FlbCommand,
    lab: &Lab,
    pod: Option<(&str, &str)>,
    extra: &[&str],
) -> (Daemon, SocketAddr) {
    let mut cmd = bin
        .clone()
        .speaker_kube(&lab.kubeconfig, NODE, NS)
        .args(extra);
    if let Some((name, uid)) = pod {
        cmd = cmd.env("POD_NAME", name).env("POD_UID", uid);
    }
    let daemon = cmd
        .spawn("speaker", lab.dir.path())
        .expect("spawn ferrolb-speaker");
    let metrics = daemon
        .metrics_addr(LIMIT)
        .expect("the speaker logs its metrics address");
    (daemon, metrics)
}

/// One lab: the double, the listener, a kubeconfig and a client of our own.
struct Lab {
    server: ApiServer,
    client: Client,
    events: mpsc::Receiver<SpeakerEvent>,
    _router: Speaker,
    port: u16,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
    rib: BTreeSet<IpNet>,
}

async fn lab(md5: Option<&str>) -> Lab {
    let ApiLab {
        api: server,
        dir,
        kubeconfig,
    } = ApiLab::start();
    let url = server.url().parse().expect("a URI");
    let client = Client::try_from(Config::new(url)).expect("client");
    let (router, events, port) = router(md5).await;
    Lab {
        server,
        client,
        events,
        _router: router,
        port,
        dir,
        kubeconfig,
        rib: BTreeSet::new(),
    }
}

/// The pool, the peer (the listener on `port`), the advertisement and the Node.
fn config(port: u16) -> [Object; 4] {
    [
        fixture::pool("pool", &["198.51.100.0/24"]),
        fixture::bgp_peer("router", MY_AS, ROUTER_AS, "127.0.0.1", "10.255.0.2")
            .set("spec.peerPort", port),
        fixture::bgp_advertisement("adv", &["pool"]),
        fixture::node(NODE, &["127.0.0.1"]),
    ]
}

fn config_yaml(port: u16) -> String {
    yaml(&config(port))
}

/// A LoadBalancer Service with `ip` assigned and one ready endpoint on `endpoint_node`.
fn service_yaml(name: &str, ip: &str, policy: &str, endpoint_node: &str) -> String {
    fixture::service_with_endpoints(name, &[ip], policy, &[endpoint_node])
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn set(ips: &[&str]) -> BTreeSet<IpNet> {
    ips.iter()
        .map(|ip| IpNet::from(ip.parse::<IpAddr>().expect("test literal")))
        .collect()
}

impl Lab {
    fn apply(&self, yaml: &str) {
        self.server.apply_yaml(yaml).expect("fixture applies");
    }

    /// Applies the listener's UPDATEs until the RIB equals `want`; fails on a withdraw of any
    /// prefix in `keep` on the way (so "stays announced" is checked by order, not by time).
    async fn await_rib(&mut self, want: &[&str], keep: &[&str]) {
        let (want, keep) = (set(want), set(keep));
        if self.rib == want {
            return;
        }
        let rib = &mut self.rib;
        let reached = recv_until(&mut self.events, LIMIT, "the listener's RIB", |ev| {
            if let EventKind::UpdateReceived {
                update: Some(u), ..
            } = ev.kind
            {
                for p in u.withdrawn_prefixes() {
                    assert!(!keep.contains(&p), "{p} withdrawn but must stay announced");
                    rib.remove(&p);
                }
                for p in u.announced() {
                    rib.insert(p);
                }
            }
            (*rib == want).then_some(())
        })
        .await;
        if let Err(e) = reached {
            panic!("{e}; listener holds {:?}, want {want:?}", self.rib);
        }
    }

    /// Waits (on watch events) until the objects of `ar` in `namespace` satisfy `done`;
    /// returns them by name.
    async fn await_objects(
        &self,
        ar: &ApiResource,
        namespace: &str,
        what: &str,
        done: impl Fn(&BTreeMap<String, Value>) -> bool,
    ) -> BTreeMap<String, Value> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, ar);
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        let mut seen: BTreeMap<String, Value> = BTreeMap::new();
        let mut listing: BTreeMap<String, Value> = BTreeMap::new();
        let mut listed = false;
        let watch = async {
            while let Some(ev) = stream.next().await {
                let to_value = |o: &DynamicObject| serde_json::to_value(o).unwrap_or_default();
                let name = |o: &DynamicObject| o.metadata.name.clone().unwrap_or_default();
                match ev {
                    Ok(watcher::Event::Init) => listing.clear(),
                    Ok(watcher::Event::InitApply(o)) => {
                        listing.insert(name(&o), to_value(&o));
                    }
                    Ok(watcher::Event::InitDone) => {
                        seen = std::mem::take(&mut listing);
                        listed = true;
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        seen.insert(name(&o), to_value(&o));
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        seen.remove(&name(&o));
                    }
                    Err(e) => eprintln!("test watch of {what}: {e}"),
                }
                if listed && done(&seen) {
                    return seen.clone();
                }
            }
            panic!("watch of {what} ended");
        };
        match tokio::time::timeout(LIMIT, watch).await {
            Ok(objects) => objects,
            Err(_) => panic!("timed out waiting for {what}; have {seen:#?}"),
        }
    }

    /// The metallb.io/v1beta1 status objects of `kind` in the FerroLB namespace, once `done`.
    async fn await_statuses(
        &self,
        kind: &str,
        what: &str,
        done: impl Fn(&BTreeMap<String, Value>) -> bool,
    ) -> BTreeMap<String, Value> {
        let ar = ApiResource {
            group: "metallb.io".into(),
            version: "v1beta1".into(),
            api_version: "metallb.io/v1beta1".into(),
            kind: kind.into(),
            plural: format!("{}es", kind.to_lowercase()),
        };
        self.await_objects(&ar, NS, what, done).await
    }
}

/// Polls `path` until its response contains `needle` (no event exists for it), with a deadline.
async fn await_http(addr: SocketAddr, path: &'static str, needle: &str) {
    let needle = needle.to_owned();
    let polled = tokio::task::spawn_blocking(move || wait_http(addr, path, &needle, LIMIT)).await;
    if let Err(e) = polled {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A lab with the configuration and Service `a` (198.51.100.1, Cluster, endpoint here), and a
/// speaker that has announced it.
async fn announcing_a(bin: &FlbCommand) -> (Lab, Daemon, SocketAddr) {
    let mut lab = lab(None).await;
    lab.apply(&config_yaml(lab.port));
    lab.apply(&service_yaml("a", "198.51.100.1", "Cluster", NODE));
    let (speaker, metrics) = spawn_speaker(bin, &lab, None, &[]);
    lab.await_rib(&["198.51.100.1"], &[]).await;
    (lab, speaker, metrics)
}

/// The ServiceBGPStatus objects by Service name (`metallb.io/service-name` label).
fn by_service(objects: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    objects
        .values()
        .filter_map(|o| {
            let svc = o["metadata"]["labels"]["metallb.io/service-name"].as_str()?;
            Some((svc.to_string(), o.clone()))
        })
        .collect()
}

fn has_peers(o: Option<&Value>, peers: &[&str]) -> bool {
    o.is_some_and(|o| o["status"]["peers"] == serde_json::json!(peers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_from_the_api_are_announced_reported_and_withdrawn() {
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let mut lab = lab(None).await;
    lab.apply(&config_yaml(lab.port));
    // a: Cluster policy, endpoint elsewhere: announced. b: Local, endpoint only on node-b:
    // not announced from node-a. c: Local, endpoint here: announced.
    lab.apply(&service_yaml("a", "198.51.100.1", "Cluster", "node-b"));
    lab.apply(&service_yaml("b", "198.51.100.2", "Local", "node-b"));
    lab.apply(&service_yaml("c", "198.51.100.3", "Local", NODE));
    // The first ServiceBGPStatus create fails: the writer must retry it.
    lab.server.fail_next("POST", "/servicebgpstatuses", 500, 1);
    let (speaker, metrics) = spawn_speaker(&bin, &lab, Some(("speaker-x1", "uid-1234")), &[]);

    lab.await_rib(&["198.51.100.1", "198.51.100.3"], &[]).await;
    let statuses = lab
        .await_statuses("ServiceBGPStatus", "ServiceBGPStatus for a and c", |o| {
            let s = by_service(o);
            s.len() == 2 && has_peers(s.get("a"), &["router"]) && has_peers(s.get("c"), &["router"])
        })
        .await;
    for (name, o) in &statuses {
        assert!(name.starts_with("bgp-"), "{name}");
        let labels = &o["metadata"]["labels"];
        assert_eq!(labels["metallb.io/node"], NODE, "{o:#}");
        assert_eq!(labels["metallb.io/service-namespace"], "default", "{o:#}");
        let svc = labels["metallb.io/service-name"].clone();
        assert_eq!(o["status"]["serviceName"], svc, "{o:#}");
        assert_eq!(o["status"]["serviceNamespace"], "default", "{o:#}");
        assert_eq!(o["status"]["node"], NODE, "{o:#}");
        let owner = &o["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["name"], &owner["uid"]),
            (&"Pod".into(), &"speaker-x1".into(), &"uid-1234".into()),
            "{o:#}"
        );
    }
    let posts = lab
        .server
        .requests_matching("POST", "/servicebgpstatuses")
        .len();
    assert!(
        posts >= 3,
        "two creates plus the failed one; requests: {posts}"
    );
    await_http(
        metrics,
        "/metrics",
        "ferrolb_bgp_session_up{peer=\"127.0.0.1\"} 1",
    )
    .await;
    await_http(metrics, "/readyz", "HTTP/1.1 200").await;

    // The endpoint of b moves here: now announced, and reported.
    lab.apply(&service_yaml("b", "198.51.100.2", "Local", NODE));
    lab.await_rib(
        &["198.51.100.1", "198.51.100.2", "198.51.100.3"],
        &["198.51.100.1", "198.51.100.3"],
    )
    .await;
    lab.await_statuses("ServiceBGPStatus", "ServiceBGPStatus for b", |o| {
        by_service(o).contains_key("b")
    })
    .await;

    // Service a deleted: withdrawn, and its status object deleted.
    assert!(lab.server.delete("v1", "Service", Some("default"), "a"));
    lab.await_rib(
        &["198.51.100.2", "198.51.100.3"],
        &["198.51.100.2", "198.51.100.3"],
    )
    .await;
    let left = lab
        .await_statuses("ServiceBGPStatus", "a's ServiceBGPStatus deleted", |o| {
            !by_service(o).contains_key("a")
        })
        .await;
    assert_eq!(
        by_service(&left).keys().collect::<Vec<_>>(),
        ["b", "c"],
        "{left:#?}"
    );

    // A restarted speaker (a new Pod) keeps the objects: same names, nothing deleted and
    // recreated; it only takes them over as owner (else the garbage collector would delete
    // them with the old Pod). After it reports one more Service, exactly one object was
    // created and none deleted.
    drop(speaker);
    let status_writes = |server: &ApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| {
                (r.starts_with("POST") || r.starts_with("DELETE"))
                    && r.contains("/servicebgpstatuses")
            })
            .count()
    };
    let before = status_writes(&lab.server);
    let _speaker = spawn_speaker(&bin, &lab, Some(("speaker-x2", "uid-5678")), &[]);
    lab.apply(&service_yaml("g", "198.51.100.7", "Cluster", NODE));
    lab.await_statuses("ServiceBGPStatus", "b, c, g owned by the new Pod", |o| {
        let s = by_service(o);
        s.len() == 3
            && s.contains_key("g")
            && s.values()
                .all(|o| o["metadata"]["ownerReferences"][0]["uid"] == "uid-5678")
    })
    .await;
    assert_eq!(
        status_writes(&lab.server) - before,
        1,
        "{:#?}",
        lab.server.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_keeps_routes_and_a_change_after_it_is_acted_on() {
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (mut lab, speaker, metrics) = announcing_a(&bin).await;
    await_http(metrics, "/readyz", "HTTP/1.1 200").await;

    // Outage: every request 503, every watch ended. Stale and not ready, routes kept.
    lab.server.set_available(false);
    await_http(metrics, "/metrics", "ferrolb_source_available 0").await;
    await_http(metrics, "/metrics", "ferrolb_config_stale 1").await;
    await_http(metrics, "/readyz", "HTTP/1.1 503").await;
    await_http(
        metrics,
        "/metrics",
        "ferrolb_bgp_announced_prefixes{peer=\"127.0.0.1\"} 1",
    )
    .await;

    // Back: fresh and ready again (the probe notices; nothing changed), then a change is acted
    // on with no withdraw of a on the way (checked by order in await_rib).
    lab.server.set_available(true);
    await_http(metrics, "/metrics", "ferrolb_source_available 1").await;
    await_http(metrics, "/metrics", "ferrolb_config_stale 0").await;
    await_http(metrics, "/readyz", "HTTP/1.1 200").await;
    lab.apply(&service_yaml("d", "198.51.100.4", "Cluster", NODE));
    lab.await_rib(&["198.51.100.1", "198.51.100.4"], &["198.51.100.1"])
        .await;

    // Watches dropped (an API server restart): they resume and the next change arrives.
    lab.server.drop_watches();
    lab.apply(&service_yaml("e", "198.51.100.5", "Cluster", NODE));
    lab.await_rib(
        &["198.51.100.1", "198.51.100.4", "198.51.100.5"],
        &["198.51.100.1", "198.51.100.4"],
    )
    .await;
    // A history compaction on top (410 Gone on resume): a full re-list, still no withdraw.
    lab.server.compact_history();
    lab.server.drop_watches();
    assert!(lab.server.delete("v1", "Service", Some("default"), "e"));
    lab.await_rib(
        &["198.51.100.1", "198.51.100.4"],
        &["198.51.100.1", "198.51.100.4"],
    )
    .await;

    // SIGTERM during another outage (API probes and write retries in flight): the speaker
    // still sends Cease 6/2 (RFC 4486 §4) and exits 0.
    lab.server.set_available(false);
    await_http(metrics, "/metrics", "ferrolb_source_available 0").await;
    let mut speaker = speaker;
    ferrolb_e2e::signal(speaker.pid(), "TERM").expect("kill -TERM");
    let reason = recv_until(
        &mut lab.events,
        LIMIT,
        "the session going down",
        |ev| match ev.kind {
            EventKind::Down { reason, .. } => Some(reason),
            _ => None,
        },
    )
    .await
    .expect("session down in time");
    match reason {
        DownReason::NotificationReceived(n) => {
            assert_eq!(n.code, ErrorCode::CEASE, "{n}");
            assert_eq!(n.subcode, cease_subcode::ADMINISTRATIVE_SHUTDOWN, "{n}");
        }
        other => panic!("expected a Cease 6/2, got {other}"),
    }
    let status = tokio::task::spawn_blocking(move || speaker.wait_exit(LIMIT).expect("exits"))
        .await
        .expect("join");
    assert_eq!(status, "exit status: 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_keeps_the_last_good_one_and_emits_an_event() {
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (mut lab, _speaker, metrics) = announcing_a(&bin).await;
    // MetalLB v0.15: this speaker's ConfigurationState, `speaker-<node>`, says Valid.
    let state = speaker_state(&lab.server, |s| s["status"]["result"] == "Valid")
        .expect("ConfigurationState speaker-node-a Valid");
    assert_eq!(
        state["metadata"]["labels"]["metallb.io/component-type"],
        "speaker"
    );
    assert_eq!(state["metadata"]["labels"]["metallb.io/node-name"], NODE);

    lab.apply(&fixture::pool("bad", &["not-an-address", "10.9.9.9/33"]).yaml());
    let events = ApiResource {
        group: "events.k8s.io".into(),
        version: "v1".into(),
        api_version: "events.k8s.io/v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    };
    let seen = lab
        .await_objects(&events, NS, "two ConfigurationRejected Events", |o| {
            let about_bad = |e: &&Value| {
                e["regarding"]["kind"] == "IPAddressPool" && e["regarding"]["name"] == "bad"
            };
            o.values().filter(about_bad).count() == 2
        })
        .await;
    // One Event per error, each naming its own field and value (two errors on one object
    // must not collapse into one Event series with the first note).
    let pool_uid = lab
        .server
        .get("metallb.io/v1beta1", "IPAddressPool", Some(NS), "bad")
        .map(|p| p["metadata"]["uid"].clone())
        .expect("the pool exists");
    let mut notes: Vec<&str> = seen
        .values()
        .inspect(|e| {
            // kubectl describe lists an object's Events by its UID.
            assert_eq!(e["regarding"]["uid"], pool_uid, "{e:#}");
            assert_eq!(e["type"], "Warning", "{e:#}");
            assert_eq!(e["reason"], "ConfigurationRejected", "{e:#}");
            assert_eq!(e["reportingController"], "ferrolb-speaker", "{e:#}");
        })
        .filter_map(|e| e["note"].as_str())
        .collect();
    notes.sort();
    assert!(
        notes[0].contains("spec.addresses[0]") && notes[0].contains("not-an-address"),
        "the note names field and value: {notes:?}"
    );
    assert!(
        notes[1].contains("spec.addresses[1]") && notes[1].contains("10.9.9.9/33"),
        "the note names field and value: {notes:?}"
    );
    await_http(metrics, "/metrics", "ferrolb_config_stale 1").await;
    // The ConfigurationState names the newest configuration's errors.
    let state = speaker_state(&lab.server, |s| s["status"]["result"] == "Invalid")
        .expect("ConfigurationState speaker-node-a Invalid");
    let summary = state["status"]["errorSummary"].as_str().unwrap_or("");
    assert!(
        summary.contains("not-an-address") && summary.contains("10.9.9.9/33"),
        "{summary:?}"
    );

    // The last good configuration stays in force: a new Service in its pool is announced,
    // and nothing is withdrawn on the way.
    lab.apply(&service_yaml("f", "198.51.100.6", "Cluster", NODE));
    lab.await_rib(&["198.51.100.1", "198.51.100.6"], &["198.51.100.1"])
        .await;
    // That snapshot had the same errors: no further Event was created for them.
    let event_posts = lab.server.requests_matching("POST", "/events").len();
    assert_eq!(event_posts, 2, "{:#?}", lab.server.requests());

    // Fixed: fresh again.
    assert!(lab
        .server
        .delete("metallb.io/v1beta1", "IPAddressPool", Some(NS), "bad"));
    await_http(metrics, "/metrics", "ferrolb_config_stale 0").await;
    let state = speaker_state(&lab.server, |s| s["status"]["result"] == "Valid")
        .expect("ConfigurationState speaker-node-a Valid again");
    assert!(state["status"]["errorSummary"].is_null(), "{state:#}");
}

/// This speaker's ConfigurationState once `pred` holds (the double's store is watched; the
/// wait blocks, so it runs where blocking is allowed).
fn speaker_state(server: &ApiServer, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    tokio::task::block_in_place(|| {
        server.wait_for_object(
            "metallb.io/v1beta1",
            "ConfigurationState",
            Some(NS),
            &format!("speaker-{NODE}"),
            LIMIT,
            pred,
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bgp_password_is_read_from_the_peers_secret() {
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let mut lab = lab(Some("s3cret-from-secret")).await;
    let [pool, peer, adv, node] = config(lab.port);
    let peer = peer.set(
        "spec.passwordSecret",
        serde_json::json!({"name": "router-pw", "namespace": NS}),
    );
    lab.apply(&yaml(&[pool, peer, adv, node]));
    lab.apply(&service_yaml("a", "198.51.100.1", "Cluster", NODE));
    let (_speaker, metrics) = spawn_speaker(&bin, &lab, None, &[]);
    // Without the Secret the configuration is rejected (the reference is dangling): stale.
    await_http(metrics, "/metrics", "ferrolb_config_stale 1").await;

    // The Secret arrives (type basic-auth, as MetalLB requires): the session comes up with
    // its password (the listener's kernel drops segments without the right MD5 signature)
    // and the route arrives.
    lab.apply(
        &Object::new("v1", "Secret", "router-pw", Some(NS))
            .set("type", "kubernetes.io/basic-auth")
            .set("data.password", "czNjcmV0LWZyb20tc2VjcmV0")
            .yaml(),
    );
    lab.await_rib(&["198.51.100.1"], &[]).await;
    await_http(metrics, "/metrics", "ferrolb_config_stale 0").await;
}

/// The api-to-route measurement in Kubernetes mode: from a Service (with its EndpointSlice) written to
/// the API to its route at the listener, one Service at a time, 100 times. Prints p50/p99 (a
/// timing is never asserted); asserts that every route arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_to_route_latency_over_100_services() {
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let mut lab = lab(None).await;
    lab.apply(&config_yaml(lab.port));
    lab.apply(&service_yaml("s0", "198.51.100.100", "Cluster", NODE));
    let _speaker = spawn_speaker(&bin, &lab, None, &[]);
    let mut want = vec!["198.51.100.100".to_string()];
    lab.await_rib(&as_refs(&want), &[]).await;
    let mut took = Vec::new();
    for i in 1..=100u32 {
        let ip = format!("198.51.{}.{}", 100 + (i + 100) / 256, (i + 100) % 256);
        let start = Instant::now();
        lab.apply(&service_yaml(&format!("s{i}"), &ip, "Cluster", NODE));
        want.push(ip);
        let keep = as_refs(&want[..want.len() - 1]);
        lab.await_rib(&as_refs(&want), &keep).await;
        took.push(start.elapsed());
    }
    took.sort();
    let pick = |q: usize| took[(took.len() * q / 100).min(took.len() - 1)];
    eprintln!(
        "MEASURED api-to-route over {} Services: p50 {:?}, p99 {:?}, max {:?}",
        took.len(),
        pick(50),
        pick(99),
        took[took.len() - 1]
    );
}

/// Layer 2 in Kubernetes mode: the election's result is reported as a ServiceL2Status (with
/// MetalLB's labels and status fields) and on /metrics, and the object goes when the Service
/// does. The L2Advertisement has no `spec` at all (valid for MetalLB; it used to fail the whole
/// watch list). Gossip is off (`--memberlist-port 0`, liveness from Node readiness); without
/// root the ARP/NDP responder cannot open its sockets, which must not stop the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_l2_owner_is_reported_as_a_service_l2_status() {
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let lab = lab(None).await;
    lab.apply(&config_yaml(lab.port));
    lab.apply(&yaml(&[
        fixture::l2_advertisement("l2", &[]),
        fixture::node(NODE, &["127.0.0.1"]).set(
            "status.conditions",
            serde_json::json!([{"type": "Ready", "status": "True"}]),
        ),
    ]));
    lab.apply(&service_yaml("web", "198.51.100.7", "Cluster", NODE));
    let (_daemon, metrics) = spawn_speaker(&bin, &lab, None, &["--memberlist-port", "0"]);
    let objects = lab
        .await_statuses("ServiceL2Status", "ServiceL2Status for web", |o| {
            o.values().any(|v| v["status"]["serviceName"] == "web")
        })
        .await;
    assert_eq!(objects.len(), 1, "{objects:#?}");
    let (name, o) = objects.iter().next().expect("one object");
    assert!(name.starts_with("l2-"), "{name}");
    assert_eq!(o["status"]["node"], NODE, "{o:#}");
    assert_eq!(o["status"]["serviceNamespace"], "default", "{o:#}");
    let labels = &o["metadata"]["labels"];
    assert_eq!(labels["metallb.io/node"], NODE, "{o:#}");
    assert_eq!(labels["metallb.io/service-name"], "web", "{o:#}");
    assert_eq!(labels["metallb.io/service-namespace"], "default", "{o:#}");
    await_http(
        metrics,
        "/metrics",
        "metallb_speaker_announced{service=\"default/web\",protocol=\"layer2\",node=\"node-a\",ip=\"198.51.100.7\"} 1",
    )
    .await;

    assert!(lab.server.delete("v1", "Service", Some("default"), "web"));
    lab.await_statuses("ServiceL2Status", "web's ServiceL2Status deleted", |o| {
        o.is_empty()
    })
    .await;
}

/// Measurement, not a test: the speaker's RSS in Kubernetes mode with 10k announced
/// VIPs, against the API-server double. Run with
/// `FERROLB_SPEAKER_BIN=target/release/ferrolb-speaker cargo test -p ferrolb-e2e --test
/// speaker_kube -- --ignored --nocapture kubernetes_mode_rss`; the figure goes to
/// docs/speaker.md. Nothing about the size is asserted; that every route arrives is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; see the doc comment"]
async fn kubernetes_mode_rss_with_10k_services() {
    let bin = match std::env::var_os("FERROLB_SPEAKER_BIN") {
        Some(p) => FlbCommand::new(std::env::current_dir().expect("cwd").join(p)),
        None => match FlbCommand::find("ferrolb-speaker") {
            Some(c) => c,
            None => return,
        },
    };
    const N: usize = 10_000;
    let mut lab = lab(None).await;
    let [_, peer, adv, node] = config(lab.port);
    lab.apply(&yaml(&[
        fixture::pool("pool", &["100.64.0.0/16"]),
        peer,
        adv,
        node,
    ]));
    let mut yaml = String::new();
    let mut want = Vec::with_capacity(N);
    for i in 0..N {
        let ip = format!("100.64.{}.{}", (i + 1) / 256, (i + 1) % 256);
        yaml.push_str("---\n");
        yaml.push_str(&service_yaml(&format!("s{i}"), &ip, "Cluster", NODE));
        want.push(ip);
    }
    lab.apply(&yaml);
    let start = Instant::now();
    let (speaker, _) = spawn_speaker(&bin, &lab, None, &["--memberlist-port", "0"]);
    lab.await_rib(&as_refs(&want), &[]).await;
    let took = start.elapsed();
    // Let the ServiceBGPStatus writer and the allocator settle before reading.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", speaker.pid())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.trim_start_matches(name).trim().to_string())
            .unwrap_or_default()
    };
    // How the RSS splits: heap and stacks (anonymous) against code pages (file-backed).
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", speaker.pid()))
        .unwrap_or_default();
    let kb = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_default()
    };
    eprintln!(
        "MEASURED Kubernetes mode, {N} Services: all routes {took:?} after start; VmRSS {}, \
         VmHWM {} (anonymous {} kB, file-backed {} kB; {})",
        field("VmRSS:"),
        field("VmHWM:"),
        kb("Anonymous:"),
        kb("Rss:").saturating_sub(kb("Anonymous:")),
        bin.program().display()
    );
}
