//! The API-server test double against the real `kube` client and
//! `kube_runtime::watcher`: what FerroLB's controller and speaker rely on.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{json, Value};

use ferrolb_e2e::apiserver::ApiServer;

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

fn client(server: &ApiServer) -> Client {
    let url = server.url().parse().expect("double URL is a URI");
    Client::try_from(Config::new(url)).expect("kube client for the double")
}

fn service(name: &str, labels: Value) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    }))
    .expect("valid Service")
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The next item of `stream`, or a panic naming `what` after [`WAIT`].
/// The double, a client for Services in `default`, and Service `web` created there with
/// `labels`.
async fn with_web(labels: Value) -> (ApiServer, Api<Service>, Service) {
    let server = ApiServer::start().expect("start double");
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let created = api
        .create(&PostParams::default(), &service("web", labels))
        .await
        .expect("create");
    (server, api, created)
}

async fn next<S: Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("stream ended while waiting for {what}"))
}

#[tokio::test]
async fn create_get_and_stale_replace_conflicts() {
    let (_server, api, created) = with_web(json!({})).await;
    let rv1 = created
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion set");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());

    let err = api
        .create(&PostParams::default(), &service("web", json!({})))
        .await
        .expect_err("duplicate create");
    assert_eq!(api_error(err), (409, "AlreadyExists".into()));

    let mut fresh = api.get("web").await.expect("get");
    fresh.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    let replaced = api
        .replace("web", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );

    // `fresh` still carries rv1: a second replace is stale.
    let err = api
        .replace("web", &PostParams::default(), &fresh)
        .await
        .expect_err("stale replace");
    assert_eq!(api_error(err), (409, "Conflict".into()));

    let err = api.get("absent").await.expect_err("get absent");
    assert_eq!(api_error(err), (404, "NotFound".into()));
}

#[tokio::test]
async fn status_subresource_and_main_resource_change_only_their_part() {
    let (server, api, _) = with_web(json!({})).await;

    let status_patch = json!({
        "spec": {"type": "ClusterIP"},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
    });
    let patched = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .expect("patch_status");
    let ingress = patched
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .expect("ingress");
    assert_eq!(ingress[0].ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(
        patched.spec.and_then(|s| s.type_).as_deref(),
        Some("LoadBalancer")
    );

    let main_patch = json!({
        "metadata": {"annotations": {"x": "y"}},
        "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}},
    });
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&main_patch))
        .await
        .expect("patch main");
    assert_eq!(patched.metadata.annotations.expect("annotations")["x"], "y");
    let stored = server
        .get("v1", "Service", Some("default"), "web")
        .expect("stored");
    assert_eq!(
        stored["status"]["loadBalancer"]["ingress"][0]["ip"],
        "192.0.2.10"
    );
}

#[tokio::test]
async fn server_side_apply_creates_then_merges_and_needs_a_field_manager() {
    let server = ApiServer::start().expect("start double");
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let params = PatchParams::apply("ferrolb-test").force();
    let applied = api
        .patch(
            "web",
            &params,
            &Patch::Apply(service("web", json!({"app": "web"}))),
        )
        .await
        .expect("apply creates");
    assert_eq!(applied.metadata.labels.expect("labels")["app"], "web");

    let partial = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "annotations": {"metallb.io/address-pool": "p"}},
    });
    // Another manager's apply merges: the first manager's labels stay.
    let merged = api
        .patch(
            "web",
            &PatchParams::apply("annotator").force(),
            &Patch::Apply(&partial),
        )
        .await
        .expect("apply merges");
    assert_eq!(
        merged.metadata.annotations.expect("annotations")["metallb.io/address-pool"],
        "p"
    );
    assert_eq!(merged.metadata.labels.expect("labels kept")["app"], "web");

    let status = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
    });
    let with_status = api
        .patch_status("web", &params, &Patch::Apply(&status))
        .await
        .expect("apply status");
    assert!(with_status.status.and_then(|s| s.load_balancer).is_some());

    let no_manager = api
        .patch("web", &PatchParams::default(), &Patch::Apply(&partial))
        .await;
    assert_eq!(api_error(no_manager.expect_err("no fieldManager")).0, 400);
}

#[tokio::test]
async fn server_side_apply_removes_fields_the_same_manager_stops_applying() {
    let (server, api, _) = with_web(json!({"app": "web"})).await;
    let apply = |status: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "status": status});
    let ctl = PatchParams::apply("ferrolb-controller").force();
    let other = PatchParams::apply("someone-else").force();
    let ingress = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}, "conditions": []});
    api.patch_status("web", &ctl, &Patch::Apply(apply(ingress)))
        .await
        .expect("apply ingress");
    let theirs = json!({"extra": "kept"});
    api.patch_status("web", &other, &Patch::Apply(apply(theirs)))
        .await
        .expect("other manager");
    // The controller releases the IP by no longer applying loadBalancer.
    let released = api
        .patch_status("web", &ctl, &Patch::Apply(apply(json!({"conditions": []}))))
        .await
        .expect("apply without ingress");
    let stored = server
        .get("v1", "Service", Some("default"), "web")
        .expect("stored");
    assert!(stored["status"].get("loadBalancer").is_none(), "{stored:#}");
    assert_eq!(
        stored["status"]["extra"], "kept",
        "another manager's field stays"
    );
    assert!(released.metadata.labels.is_some_and(|l| l["app"] == "web"));
}

#[tokio::test]
async fn json_patch_applies_and_a_failed_test_is_rejected() {
    let (_server, api, _) = with_web(json!({"app": "web"})).await;
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/app", "value": "web"},
        {"op": "replace", "path": "/metadata/labels/app", "value": "api"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["metallb.io/ip"]},
    ]))
    .expect("patch document");
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(patched.metadata.labels.expect("labels")["app"], "api");
    assert_eq!(
        patched.metadata.finalizers,
        Some(vec!["metallb.io/ip".to_string()])
    );

    let failing: json_patch::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/metadata/labels/app", "value": "web"}]),
    )
    .expect("patch document");
    let err = api
        .patch("web", &PatchParams::default(), &Patch::<()>::Json(failing))
        .await;
    assert_eq!(api_error(err.expect_err("test op fails")).0, 422);

    // With a finalizer, delete only marks the object.
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = api.get("web").await.expect("still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
}

#[tokio::test]
async fn merge_patch_with_stale_resource_version_conflicts() {
    let (_server, api, created) = with_web(json!({})).await;
    let rv = created.metadata.resource_version.expect("rv");
    let guarded = json!({"metadata": {"resourceVersion": rv, "labels": {"a": "1"}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&guarded))
        .await
        .expect("first patch");
    let err = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&guarded))
        .await;
    assert_eq!(
        api_error(err.expect_err("stale patch")),
        (409, "Conflict".into())
    );
}

#[tokio::test]
async fn list_filters_by_label_selector_and_paginates() {
    let server = ApiServer::start().expect("start double");
    server.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default, labels: {app: web}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: default, labels: {app: db}}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: other, labels: {app: web}}\n",
    )
    .expect("fixtures");
    let client = client(&server);
    let all: Api<Service> = Api::all(client.clone());
    let names = |list: kube::core::ObjectList<Service>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app=web"))
                .await
                .expect("list")
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app notin (web)"))
                .await
                .expect("list")
        ),
        ["b"]
    );
    let default: Api<Service> = Api::default_namespaced(client);
    assert_eq!(
        names(
            default
                .list(&ListParams::default().labels("app=web"))
                .await
                .expect("list")
        ),
        ["a"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .expect("list")
        ),
        ["b"]
    );

    let first = all
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    let token = first.metadata.continue_.clone().expect("continue token");
    assert_eq!(names(first), ["a", "b"]);
    let second = all
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(second), ["c"]);
}

#[tokio::test]
async fn lease_replace_with_stale_version_conflicts() {
    let server = ApiServer::start().expect("start double");
    let api: Api<Lease> = Api::namespaced(client(&server), "metallb-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "ferrolb-controller"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .expect("lease");
    let held = api
        .create(&PostParams::default(), &lease)
        .await
        .expect("create lease");
    // Two candidates read the same version; the first to write wins.
    let mut b = held.clone();
    b.spec.as_mut().expect("spec").holder_identity = Some("b".into());
    let mut c = held;
    c.spec.as_mut().expect("spec").holder_identity = Some("c".into());
    api.replace("ferrolb-controller", &PostParams::default(), &b)
        .await
        .expect("b takes the lease");
    let err = api
        .replace("ferrolb-controller", &PostParams::default(), &c)
        .await
        .expect_err("c is stale");
    assert_eq!(api_error(err), (409, "Conflict".into()));
    let stored = server
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            Some("metallb-system"),
            "ferrolb-controller",
        )
        .expect("lease stored");
    assert_eq!(stored["spec"]["holderIdentity"], "b");
}

#[tokio::test]
async fn fail_next_injects_errors_and_an_outage_refuses_connections() {
    let (server, api, _) = with_web(json!({})).await;
    server.fail_next("GET", "/services/web", 500, 2);
    for _ in 0..2 {
        let err = api.get("web").await.expect_err("injected");
        assert_eq!(api_error(err), (500, "InternalError".into()));
    }
    api.get("web").await.expect("faults used up");
    server.fail_next("put", "/services/web", 409, 1);
    let current = api.get("web").await.expect("get");
    let err = api
        .replace("web", &PostParams::default(), &current)
        .await
        .expect_err("injected conflict");
    assert_eq!(api_error(err), (409, "Conflict".into()));

    // An outage refuses connections: the client sees a transport error,
    // not an API status, and the request never reaches the log.
    server.set_available(false);
    let err = api.get("web").await.expect_err("down");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "transport error expected, got {err:?}"
    );
    server.set_available(true);
    api.get("web").await.expect("back up");

    let requests = server.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("GET /api/v1/namespaces/default/services/web"))
            .count(),
        5,
        "{requests:#?}"
    );
}

/// Creates Service `web`; the watcher's next event must be its Apply.
async fn create_web_and_see_it_added<S>(api: &Api<Service>, events: &mut S)
where
    S: Stream<Item = Result<watcher::Event<Service>, watcher::Error>> + Unpin,
{
    api.create(&PostParams::default(), &service("web", json!({})))
        .await
        .expect("create");
    let seen = watch_until(events, "ADDED", |e| matches!(e, watcher::Event::Apply(_))).await;
    assert_eq!(seen, ["apply web"]);
}

/// Collects watcher events until `done` says stop, bounded by [`WAIT`] per event.
async fn watch_until<S>(
    stream: &mut S,
    what: &str,
    mut done: impl FnMut(&watcher::Event<Service>) -> bool,
) -> Vec<String>
where
    S: Stream<Item = Result<watcher::Event<Service>, watcher::Error>> + Unpin,
{
    let mut seen = Vec::new();
    // Bounded: each step waits at most WAIT and at most 100 events are read.
    for _ in 0..100 {
        let event = match next(stream, what).await {
            Ok(event) => event,
            Err(e) => {
                seen.push(format!("error {e}"));
                continue;
            }
        };
        let name = |s: &Service| s.metadata.name.clone().unwrap_or_default();
        seen.push(match &event {
            watcher::Event::Apply(s) => format!("apply {}", name(s)),
            watcher::Event::Delete(s) => format!("delete {}", name(s)),
            watcher::Event::Init => "init".into(),
            watcher::Event::InitApply(s) => format!("init-apply {}", name(s)),
            watcher::Event::InitDone => "init-done".into(),
        });
        if done(&event) {
            return seen;
        }
    }
    panic!("{what}: no end after 100 events: {seen:?}");
}

#[tokio::test]
async fn watcher_sees_changes_and_recovers_from_dropped_watches_and_410() {
    let server = ApiServer::start().expect("start double");
    server.apply(serde_json::to_value(service("pre", json!({}))).expect("json"));
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();

    let seen = watch_until(&mut events, "initial list", |e| {
        matches!(e, watcher::Event::InitDone)
    })
    .await;
    assert_eq!(seen, ["init", "init-apply pre", "init-done"]);

    create_web_and_see_it_added(&api, &mut events).await;
    let label = json!({"metadata": {"labels": {"x": "1"}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("patch");
    let seen = watch_until(&mut events, "MODIFIED", |e| {
        matches!(e, watcher::Event::Apply(_))
    })
    .await;
    assert_eq!(seen, ["apply web"]);
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    let seen = watch_until(&mut events, "DELETED", |e| {
        matches!(e, watcher::Event::Delete(_))
    })
    .await;
    assert_eq!(seen, ["delete web"]);

    // A dropped stream: the watcher re-watches from its last version and
    // misses nothing written meanwhile.
    let watches_before = server
        .requests()
        .iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    server.drop_watches();
    server.apply(serde_json::to_value(service("during-drop", json!({}))).expect("json"));
    let seen = watch_until(&mut events, "event after drop", |e| {
        matches!(e, watcher::Event::Apply(_))
    })
    .await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("apply during-drop"),
        "{seen:?}"
    );
    let watches_after = server
        .requests()
        .iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    assert!(watches_after > watches_before, "the watcher re-watched");

    // A write the watcher misses during an outage, then the history is
    // compacted past it: the re-watch gets 410, and the watcher re-lists.
    // (No await between the calls, so the watcher cannot run in between.)
    server.set_available(false);
    server.apply(serde_json::to_value(service("during-outage", json!({}))).expect("json"));
    server.compact_history();
    server.set_available(true);
    let seen = watch_until(&mut events, "re-list after 410", |e| {
        matches!(e, watcher::Event::InitDone)
    })
    .await;
    assert!(seen.contains(&"init".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"init-apply during-outage".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| e.starts_with("error")),
        "the 410 surfaced: {seen:?}"
    );
}

#[tokio::test]
async fn raw_watch_gets_bookmarks_and_expired_errors() {
    let server = ApiServer::start().expect("start double");
    server.set_bookmark_interval(Duration::from_millis(50));
    let api: Api<Service> = Api::default_namespaced(client(&server));
    api.create(&PostParams::default(), &service("web", json!({})))
        .await
        .expect("create");
    let rv = server.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match next(&mut stream, "bookmark").await.expect("event") {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }

    api.create(&PostParams::default(), &service("later", json!({})))
        .await
        .expect("create");
    server.compact_history();
    let mut stale = api
        .watch(&WatchParams::default(), "1")
        .await
        .expect("watch")
        .boxed();
    match next(&mut stale, "410").await.expect("event") {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[test]
fn kubeconfig_points_a_client_at_the_double_and_wait_for_object_wakes_on_change() {
    let server = ApiServer::start().expect("start double");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).expect("write kubeconfig");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config from kubeconfig");
        assert_eq!(config.default_namespace, "default");
        let api: Api<Service> = Api::default_namespaced(Client::try_from(config).expect("client"));
        api.create(&PostParams::default(), &service("web", json!({})))
            .await
            .expect("create via kubeconfig");
    });

    let writer = std::thread::spawn({
        let status = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}});
        let mut svc = server
            .get("v1", "Service", Some("default"), "web")
            .expect("stored");
        svc["status"] = status;
        move || svc
    });
    let updated = writer.join().expect("writer");
    assert!(server
        .wait_for_object(
            "v1",
            "Service",
            Some("default"),
            "web",
            Duration::from_millis(50),
            |o| { o["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.7" }
        )
        .is_none());
    std::thread::scope(|s| {
        s.spawn(|| server.apply(updated));
        let found = server.wait_for_object("v1", "Service", Some("default"), "web", WAIT, |o| {
            o["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.7"
        });
        assert!(found.is_some(), "wait_for_object saw the write");
    });
}

#[tokio::test]
async fn watch_with_a_selector_reports_objects_entering_and_leaving_it() {
    let (server, api, _) = with_web(json!({"app": "db"})).await;
    let rv = server.resource_version().to_string();
    let params = WatchParams::default().labels("app=web").disable_bookmarks();
    let mut stream = api.watch(&params, &rv).await.expect("watch").boxed();
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    let events = [("web", "added"), ("web", "modified"), ("db", "deleted")];
    for (i, (app, want)) in events.into_iter().enumerate() {
        let mut patch = relabel(app);
        patch["metadata"]["annotations"] = json!({"step": i.to_string()});
        api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
        let got = match next(&mut stream, want).await.expect("event") {
            WatchEvent::Added(_) => "added",
            WatchEvent::Modified(_) => "modified",
            WatchEvent::Deleted(_) => "deleted",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got, want, "label app={app}");
    }
}

#[tokio::test]
async fn watch_ends_after_timeout_seconds() {
    let server = ApiServer::start().expect("start double");
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let rv = server.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv)
        .await
        .expect("watch")
        .boxed();
    let end = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("stream ended within WAIT");
    assert!(end.is_none(), "no event, just the end: {end:?}");
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_then_changes() {
    let server = ApiServer::start().expect("start double");
    server.apply(serde_json::to_value(service("pre", json!({}))).expect("json"));
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let seen = watch_until(&mut events, "initial events", |e| {
        matches!(e, watcher::Event::InitDone)
    })
    .await;
    assert_eq!(seen, ["init", "init-apply pre", "init-done"]);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("sendInitialEvents=true")),
        "the watcher used a streaming list"
    );
    create_web_and_see_it_added(&api, &mut events).await;
}

#[tokio::test]
async fn finalizers_keep_an_object_until_removed_and_watchers_see_the_deletion() {
    let server = ApiServer::start().expect("start double");
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let mut svc = service("web", json!({}));
    svc.metadata.finalizers = Some(vec!["metallb.io/ip".into()]);
    api.create(&PostParams::default(), &svc)
        .await
        .expect("create");
    let rv = server.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .expect("watch")
        .boxed();

    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    match next(&mut stream, "MODIFIED with deletionTimestamp")
        .await
        .expect("event")
    {
        WatchEvent::Modified(s) => assert!(s.metadata.deletion_timestamp.is_some()),
        other => panic!("unexpected {other:?}"),
    }
    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .expect("remove finalizer");
    match next(&mut stream, "DELETED").await.expect("event") {
        WatchEvent::Deleted(s) => assert_eq!(s.metadata.name.as_deref(), Some("web")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(api_error(api.get("web").await.expect_err("gone")).0, 404);
}

#[tokio::test]
async fn cluster_scoped_metallb_and_discovery_resources_are_served() {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

    let server = ApiServer::start().expect("start double");
    let client = client(&server);
    let version = client.apiserver_version().await.expect("/version");
    assert_eq!(version.major, "1");

    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node =
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}}))
            .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let patched = nodes
        .patch_status("n1", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .expect("node status");
    assert!(patched.status.is_some() && patched.metadata.namespace.is_none());

    // BGPPeer is stored once and served in v1beta1 and v1beta2.
    let v1beta2 = GroupVersionKind::gvk("metallb.io", "v1beta2", "BGPPeer");
    let (resource, _caps) = kube::discovery::pinned_kind(&client, &v1beta2)
        .await
        .expect("discovery");
    assert_eq!(resource.plural, "bgppeers");
    let peers: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "metallb-system", &resource);
    let mut peer = DynamicObject::new("p1", &resource);
    peer.data = json!({"spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1"}});
    peers
        .create(&PostParams::default(), &peer)
        .await
        .expect("create peer");
    let v1beta1 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metallb.io", "v1beta1", "BGPPeer"),
        "bgppeers",
    );
    let old: Api<DynamicObject> = Api::namespaced_with(client.clone(), "metallb-system", &v1beta1);
    let got = old.get("p1").await.expect("served in v1beta1");
    assert_eq!(
        got.types.map(|t| t.api_version).as_deref(),
        Some("metallb.io/v1beta1")
    );
    assert_eq!(got.data["spec"]["peerASN"], 64501);
    assert_eq!(server.list("metallb.io/v1beta2", "BGPPeer").len(), 1);
}

#[tokio::test]
async fn malformed_requests_get_status_errors() {
    let server = ApiServer::start().expect("start double");
    let client = client(&server);
    let api: Api<Service> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &service("web", json!({})))
        .await
        .expect("create");
    let send = |method: &str, path: &str, content_type: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec())
            .expect("request")
    };
    let svc_path = "/api/v1/namespaces/default/services/web";
    let cases = [
        (
            send("PATCH", svc_path, "application/x-unknown", "{}"),
            415,
            "UnsupportedMediaType",
        ),
        (
            send("PUT", svc_path, "application/json", "{not json"),
            400,
            "BadRequest",
        ),
        (
            send("PUT", svc_path, "application/json", "[1]"),
            422,
            "Invalid",
        ),
        (
            send(
                "POST",
                "/api/v1/namespaces/default/services",
                "application/json",
                r#"{"metadata":{}}"#,
            ),
            422,
            "Invalid",
        ),
        (
            send(
                "GET",
                "/api/v1/namespaces/default/services?labelSelector=a+in+b",
                "application/json",
                "",
            ),
            400,
            "BadRequest",
        ),
        (
            send(
                "GET",
                "/api/v1/namespaces/default/widgets",
                "application/json",
                "",
            ),
            404,
            "NotFound",
        ),
        (
            send(
                "PUT",
                svc_path,
                "application/json",
                r#"{"metadata":{"name":"other"}}"#,
            ),
            400,
            "BadRequest",
        ),
        (
            send(
                "POST",
                "/api/v1/namespaces/default/services",
                "application/json",
                r#"{"metadata":{"name":"x","namespace":"other"}}"#,
            ),
            400,
            "BadRequest",
        ),
        (
            send(
                "POST",
                "/api/v1/services",
                "application/json",
                r#"{"metadata":{"name":"x"}}"#,
            ),
            405,
            "MethodNotAllowed",
        ),
        (
            send(
                "DELETE",
                svc_path,
                "application/json",
                r#"{"preconditions":{"resourceVersion":"999"}}"#,
            ),
            409,
            "Conflict",
        ),
        (
            send(
                "GET",
                "/api/v1/namespaces/default/services?watch=true&resourceVersion=abc",
                "application/json",
                "",
            ),
            400,
            "BadRequest",
        ),
        (
            // fieldManager given, but no apiVersion/kind in the body.
            send(
                "PATCH",
                "/api/v1/namespaces/default/services/web?fieldManager=t",
                "application/apply-patch+yaml",
                "metadata: {name: web}",
            ),
            400,
            "BadRequest",
        ),
        (
            send(
                "GET",
                "/api/v1/namespaces/default/services?dryRun=All",
                "application/json",
                "",
            ),
            400,
            "BadRequest",
        ),
    ];
    for (req, code, reason) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let err = client.request::<Value>(req).await.expect_err(&what);
        assert_eq!(api_error(err), (code, reason.to_string()), "{what}");
    }
}

#[tokio::test]
async fn generate_name_and_delete_collection() {
    let server = ApiServer::start().expect("start double");
    let api: Api<Service> = Api::default_namespaced(client(&server));
    let mut svc = service("", json!({"app": "web"}));
    svc.metadata.name = None;
    svc.metadata.generate_name = Some("web-".into());
    let a = api
        .create(&PostParams::default(), &svc)
        .await
        .expect("create a");
    let b = api
        .create(&PostParams::default(), &svc)
        .await
        .expect("create b");
    let (a, b) = (
        a.metadata.name.expect("name"),
        b.metadata.name.expect("name"),
    );
    assert!(
        a.starts_with("web-") && b.starts_with("web-") && a != b,
        "{a} {b}"
    );
    api.create(
        &PostParams::default(),
        &service("keep", json!({"app": "db"})),
    )
    .await
    .expect("create");

    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=web"),
    )
    .await
    .expect("delete collection");
    let left: Vec<_> = api.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].metadata.name.as_deref(), Some("keep"));
}

/// Scale figures for docs/apiserver-double.md (printed, never asserted):
/// `cargo test -p ferrolb-e2e --test apiserver_double -- --ignored --nocapture scale`.
#[tokio::test]
#[ignore = "measurement, run by hand"]
async fn scale_10k_services_figures() {
    const N: usize = 10_000;
    let server = ApiServer::start().expect("start double");
    let api: Api<Service> = Api::all(client(&server));
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    watch_until(&mut events, "empty initial list", |e| {
        matches!(e, watcher::Event::InitDone)
    })
    .await;

    let start = std::time::Instant::now();
    for i in 0..N {
        let mut svc = serde_json::to_value(service(&format!("s{i:05}"), json!({"app": "web"})))
            .expect("json");
        svc["metadata"]["namespace"] = json!(format!("ns{}", i % 10));
        server.apply(svc);
    }
    let fixtures = start.elapsed();

    let start = std::time::Instant::now();
    let mut seen = 0;
    // Bounded: N events, each within WAIT.
    while seen < N {
        if let Ok(watcher::Event::Apply(_)) = next(&mut events, "watch event").await {
            seen += 1;
        }
    }
    let watched = start.elapsed();

    let start = std::time::Instant::now();
    let mut listed = 0;
    let mut params = ListParams::default().limit(500);
    for _ in 0..=N / 500 {
        let page = api.list(&params).await.expect("list page");
        listed += page.items.len();
        match page.metadata.continue_ {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(listed, N);
    let paged = start.elapsed();

    let start = std::time::Instant::now();
    let namespaced: Api<Service> = Api::namespaced(client(&server), "ns3");
    let page = namespaced
        .list(&ListParams::default())
        .await
        .expect("list ns3");
    assert_eq!(page.items.len(), N / 10);
    let one_ns = start.elapsed();

    let start = std::time::Instant::now();
    let default: Api<Service> = Api::namespaced(client(&server), "ns0");
    let rounds = 200;
    for _ in 0..rounds {
        let patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}});
        default
            .patch_status("s00000", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
    }
    let per_patch = start.elapsed() / rounds;

    eprintln!(
        "scale: {N} fixture applies {fixtures:?}; {N} watch events delivered {watched:?}; \
         paged list (500/page) {paged:?}; list of one namespace ({}) {one_ns:?}; \
         status patch round trip {per_patch:?}",
        N / 10
    );
}
