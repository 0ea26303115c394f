//! The real `ferrolb-controller` binary in Kubernetes mode against the API-server test double
//! (`ferrolb_e2e::apiserver`), over loopback only: no root, no network namespaces.
//!
//! Covered: statuses (ip + ipMode VIP), the pool annotation and Events appear; a
//! deleted Service releases its IP with an Event; a restarted controller moves no IP; of two
//! controllers exactly one holds the Lease and writes, and the other takes over after the
//! leader is killed; a 409 injected on a status write is retried and lands; an invalid config
//! keeps the last good one, with a Warning Event and `ferrolb_config_stale 1`.
//!
//! Object waits use `ApiServer::wait_for_object` (woken by store changes). Events have
//! generated names and `/metrics` is another process's state, so those are polled with
//! `wait_for` (bounded).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::fixture::{self, yaml};
use ferrolb_e2e::ours::{http_get, wait_http, ApiLab, FlbCommand};
use ferrolb_e2e::{wait_for, workspace_bin, Daemon};
use serde_json::{json, Value};

const NS: &str = "metallb-system";
const LEASE: &str = "ferrolb-controller";
const T: Duration = Duration::from_secs(20);

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "web"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    })
}

fn status_ips(svc: &Value) -> Vec<String> {
    svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ip"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A controller process and its metrics address.
struct Controller {
    daemon: Daemon,
    metrics: SocketAddr,
    identity: String,
}

fn start(dir: &Path, identity: &str) -> Controller {
    let bin = workspace_bin("ferrolb-controller").expect("build ferrolb-controller first");
    let daemon = FlbCommand::new(bin)
        .controller_kube(&dir.join("kubeconfig"), NS, identity)
        .args(["--log-level", "info,ferrolb_controller=debug"])
        .spawn(identity, dir)
        .expect("spawn controller");
    let metrics = daemon
        .metrics_addr(T)
        .expect("the controller logs its metrics address");
    Controller {
        daemon,
        metrics,
        identity: identity.to_string(),
    }
}

fn metrics(c: &Controller) -> String {
    http_get(c.metrics, "/metrics").unwrap_or_default()
}

fn setup() -> (ApiServer, tempfile::TempDir) {
    let ApiLab { api, dir, .. } = ApiLab::start();
    api.apply_yaml(&yaml(&[
        fixture::namespace(NS),
        fixture::namespace("web"),
        fixture::pool("lab", &["192.0.2.0/29"]),
    ]))
    .expect("fixtures");
    (api, dir)
}

/// The double with the fixtures, a controller `identity`, and Service `a` with its IP.
fn with_a(identity: &str) -> (ApiServer, tempfile::TempDir, Controller, Value) {
    let (api, dir) = setup();
    let ctl = start(dir.path(), identity);
    api.apply(service("a"));
    let a = wait_ips(&api, "a", "first allocation");
    (api, dir, ctl, a)
}

fn wait_ips(api: &ApiServer, name: &str, what: &str) -> Value {
    api.wait_for_object("v1", "Service", Some("web"), name, T, |s| {
        !status_ips(s).is_empty()
    })
    .unwrap_or_else(|| panic!("{what}: web/{name} got no status IP within {T:?}"))
}

/// Service `b` is applied and gets an IP other than `a`'s, and `a` keeps its own; returns `b`.
fn b_allocated_and_a_kept(api: &ApiServer, a: &Value, what: &str) -> Value {
    api.apply(service("b"));
    let b = wait_ips(api, "b", what);
    assert_ne!(status_ips(&b), status_ips(a), "{what}");
    let after = api.get("v1", "Service", Some("web"), "a").expect("a");
    assert_eq!(status_ips(&after), status_ips(a), "a moved: {what}");
    b
}

fn events(api: &ApiServer) -> Vec<Value> {
    api.list("events.k8s.io/v1", "Event")
}

fn events_for<'a>(all: &'a [Value], name: &str, reason: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|e| e["regarding"]["name"] == name && e["reason"] == reason)
        .collect()
}

fn lease_holder(api: &ApiServer) -> Option<String> {
    api.get("coordination.k8s.io/v1", "Lease", Some(NS), LEASE)
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

#[test]
fn allocates_releases_survives_restart_and_retries_a_conflict() {
    let (api, dir) = setup();
    let mut ctl = start(dir.path(), "ctl-a");
    api.apply(service("a"));
    api.apply(service("b"));

    let a = wait_ips(&api, "a", "first allocation");
    let b = wait_ips(&api, "b", "first allocation");
    let (ip_a, ip_b) = (status_ips(&a), status_ips(&b));
    assert_eq!(ip_a.len(), 1);
    assert_ne!(ip_a, ip_b, "two Services, one IP");
    for svc in [&a, &b] {
        assert_eq!(svc["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
        let pool = api.wait_for_object(
            "v1",
            "Service",
            Some("web"),
            svc["metadata"]["name"].as_str().unwrap_or(""),
            T,
            |s| s["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"] == "lab",
        );
        assert!(pool.is_some(), "pool annotation missing: {svc}");
    }
    // Events are recorded before the status is patched, so they exist by now.
    let all = events(&api);
    let allocated = events_for(&all, "a", "IPAllocated");
    assert_eq!(allocated.len(), 1, "{all:#?}");
    assert_eq!(allocated[0]["type"], "Normal");
    assert!(allocated[0]["note"]
        .as_str()
        .unwrap_or("")
        .contains(&ip_a[0]));
    assert_eq!(allocated[0]["reportingInstance"], "ctl-a");
    assert_eq!(lease_holder(&api).as_deref(), Some("ctl-a"));

    // Delete: the IP is released with an Event.
    assert!(api.delete("v1", "Service", Some("web"), "b"));
    wait_for(T, "IPReleased for web/b", || {
        let all = events(&api);
        let released = events_for(&all, "b", "IPReleased");
        released
            .first()
            .filter(|e| e["note"].as_str().unwrap_or("").contains(&ip_b[0]))
            .map(|_| ())
    });

    // A 409 on the next status write: re-read, re-planned, and it lands.
    api.fail_next("PATCH", "/namespaces/web/services/c/status", 409, 1);
    api.apply(service("c"));
    let c = wait_ips(&api, "c", "after an injected 409");
    let patches = api
        .requests_matching("PATCH", "/namespaces/web/services/c/status")
        .len();
    assert!(
        patches >= 2,
        "the 409 was not retried: {patches} status PATCHes"
    );
    let ip_c = status_ips(&c);
    assert_ne!(ip_c, ip_a);

    // No longer a LoadBalancer: released, with the reason.
    let mut e = service("e");
    api.apply(e.clone());
    let ip_e = status_ips(&wait_ips(&api, "e", "before the type change"));
    e["spec"]["type"] = json!("ClusterIP");
    api.apply(e);
    wait_for(T, "IPReleased for web/e", || {
        let all = events(&api);
        let released = events_for(&all, "e", "IPReleased");
        released
            .first()
            .filter(|ev| {
                let note = ev["note"].as_str().unwrap_or("");
                note.contains(&ip_e[0]) && note.contains("no longer of type LoadBalancer")
            })
            .map(|_| ())
    });

    // Restart: a Service created while the controller is down gets a new IP; none moves.
    ctl.daemon.stop();
    assert!(
        ctl.daemon.log().contains("released the Lease"),
        "SIGTERM did not release the Lease:\n{}",
        ctl.daemon.log()
    );
    api.apply(service("d"));
    let _ctl = start(dir.path(), "ctl-a");
    let d = wait_ips(&api, "d", "after restart");
    let ip_d = status_ips(&d);
    for (name, before) in [("a", &ip_a), ("c", &ip_c)] {
        let now = api
            .get("v1", "Service", Some("web"), name)
            .map(|s| status_ips(&s))
            .unwrap_or_default();
        assert_eq!(&now, before, "web/{name} moved on restart");
        assert_ne!(&ip_d, before, "web/d took web/{name}'s IP");
    }
    assert_eq!(
        events_for(&events(&api), "a", "IPAllocated").len(),
        1,
        "a re-allocated"
    );
}

#[test]
fn two_controllers_one_leader_and_takeover_after_kill() {
    let (api, dir) = setup();
    let mut one = start(dir.path(), "ctl-1");
    let mut two = start(dir.path(), "ctl-2");
    let lease = api
        .wait_for_object("coordination.k8s.io/v1", "Lease", Some(NS), LEASE, T, |l| {
            l["spec"]["holderIdentity"].is_string()
        })
        .expect("a Lease with a holder");
    let holder = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let (leader, standby) = if holder == one.identity {
        (&mut one, &mut two)
    } else {
        (&mut two, &mut one)
    };
    assert_eq!(holder, leader.identity);

    api.apply(service("a"));
    let a = wait_ips(&api, "a", "leader allocation");
    wait_for(T, "ferrolb_leader on both", || {
        let (l, s) = (metrics(leader), metrics(standby));
        (l.contains("ferrolb_leader 1\n") && s.contains("ferrolb_leader 0\n")).then_some(())
    });
    let all = events(&api);
    assert!(!all.is_empty());
    for e in &all {
        assert_eq!(
            e["reportingInstance"],
            leader.identity.as_str(),
            "standby wrote: {e}"
        );
    }
    assert!(
        !metrics(standby).contains("metallb_allocator_addresses_in_use_total{"),
        "a standby exports no pool gauges"
    );

    // Kill the leader without a chance to release: the standby takes over within the lease
    // duration (2 s) plus its retry period, and serves new Services.
    leader.daemon.kill();
    let killed = std::time::Instant::now();
    let taken = api.wait_for_object("coordination.k8s.io/v1", "Lease", Some(NS), LEASE, T, |l| {
        l["spec"]["holderIdentity"] == standby.identity.as_str()
    });
    assert!(taken.is_some(), "standby did not take the Lease");
    // A measurement for docs/controller.md, not an assertion.
    eprintln!(
        "takeover: Lease acquired {:?} after SIGKILL",
        killed.elapsed()
    );
    b_allocated_and_a_kept(&api, &a, "allocation by the new leader");
    let all = events(&api);
    let b_events = events_for(&all, "b", "IPAllocated");
    assert_eq!(b_events.len(), 1);
    assert_eq!(b_events[0]["reportingInstance"], standby.identity.as_str());
    assert_eq!(
        events_for(&all, "a", "IPAllocated").len(),
        1,
        "a re-allocated on takeover"
    );
}

#[test]
fn invalid_config_keeps_the_last_good_one_with_an_event_and_stale_metric() {
    let (api, _dir, ctl, a) = with_a("ctl-x");
    wait_http(ctl.metrics, "/metrics", "ferrolb_config_stale 0\n", T);

    let mut bad: Value = api
        .get("metallb.io/v1beta1", "IPAddressPool", Some(NS), "lab")
        .expect("pool");
    bad["spec"]["addresses"] = json!(["not-a-cidr"]);
    api.apply(bad);
    wait_http(ctl.metrics, "/metrics", "ferrolb_config_stale 1\n", T);
    wait_for(T, "a Warning Event on the pool", || {
        let all = events(&api);
        all.iter()
            .find(|e| {
                e["regarding"]["kind"] == "IPAddressPool"
                    && e["regarding"]["name"] == "lab"
                    && e["type"] == "Warning"
                    && e["note"].as_str().unwrap_or("").contains("not-a-cidr")
            })
            .map(|_| ())
    });
    // The last good pool still serves: a new Service gets an IP from it, a keeps its own.
    let b = b_allocated_and_a_kept(&api, &a, "allocation under a stale config");
    assert!(status_ips(&b)[0].starts_with("192.0.2."), "{b}");
    wait_for(T, "2 addresses of 8 in use", || {
        let text = metrics(&ctl);
        let in_use = text.contains("metallb_allocator_addresses_in_use_total{pool=\"lab\"} 2\n");
        let total = text.contains("metallb_allocator_addresses_total{pool=\"lab\"} 8\n");
        (in_use && total).then_some(())
    });
    assert!(http_get(ctl.metrics, "/readyz")
        .unwrap_or_default()
        .starts_with("HTTP/1.1 200"));
}

#[test]
fn a_relist_after_dropped_watches_moves_no_ip_and_repeats_no_event() {
    let (api, _dir, _ctl, a) = with_a("ctl-r");

    // Watches end and the history is gone: every watch gets 410 and re-lists, and the
    // controller resyncs the allocator from the new lists.
    api.compact_history();
    api.drop_watches();
    b_allocated_and_a_kept(&api, &a, "allocation after the re-list");
    let all = events(&api);
    assert_eq!(events_for(&all, "a", "IPAllocated").len(), 1, "{all:#?}");
    assert!(events_for(&all, "a", "IPReleased").is_empty(), "{all:#?}");
    let lists = api
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/services") && !r.contains("watch=true"))
        .count();
    assert!(
        lists >= 2,
        "the Services were not re-listed: {:#?}",
        api.requests()
    );
}

#[test]
fn labelling_a_namespace_opens_a_pool_restricted_by_namespace_selector() {
    let ApiLab { api, dir, .. } = ApiLab::start();
    api.apply_yaml(&yaml(&[
        fixture::namespace("web"),
        fixture::pool("team-x", &["198.51.100.8/29"]).set(
            "spec.serviceAllocation.namespaceSelectors",
            json!([{"matchLabels": {"team": "x"}}]),
        ),
    ]))
    .expect("fixtures");
    let _ctl = start(dir.path(), "ctl-n");
    api.apply(service("a"));
    wait_for(T, "AllocationFailed for web/a", || {
        let all = events(&api);
        events_for(&all, "a", "AllocationFailed")
            .first()
            .filter(|e| e["type"] == "Warning")
            .map(|_| ())
    });
    api.apply(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "web", "labels": {"team": "x"}},
    }));
    let a = wait_ips(&api, "a", "after labelling the namespace");
    assert!(status_ips(&a)[0].starts_with("198.51.100."), "{a}");
}
