//! The file source: recursion, ordering, kinds kept and ignored, error locations, status
//! overlays, the incremental cache and the watcher.

use std::fs;
use std::time::Duration;

use ferrolb_api::source::files::{
    fingerprint, list_files, load_paths, load_str, watch_paths, FileCache, LoadError, Loaded,
    WatchOptions, UNMATCHED_OVERLAY,
};
use ferrolb_api::source::Resources;

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

const SVC: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: NAME, namespace: default}\nspec: {type: LoadBalancer}\n";

fn svc(name: &str) -> String {
    SVC.replace("NAME", name)
}

#[test]
fn directories_are_read_recursively_in_path_order_and_documents_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "b.yaml",
        &format!("{}---\n{}", svc("b1"), svc("b2")),
    );
    write(dir.path(), "a/z.yml", &svc("az"));
    write(dir.path(), "a.yaml", &svc("a"));
    write(dir.path(), "notes.txt", &svc("ignored-by-extension"));
    write(dir.path(), ".hidden/h.yaml", &svc("hidden"));
    let res = load_paths(&[dir.path()]).unwrap();
    let names: Vec<_> = res
        .services
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["az", "a", "b1", "b2"]);
    assert_eq!(list_files(&[dir.path()]).unwrap().len(), 3);
}

#[test]
fn explicit_files_are_read_in_argument_order_whatever_their_extension() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", &svc("x"));
    write(dir.path(), "a.yaml", &svc("a"));
    let res = load_paths(&[dir.path().join("x.txt"), dir.path().join("a.yaml")]).unwrap();
    let names: Vec<_> = res
        .services
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["x", "a"]);
}

#[test]
fn every_kind_is_kept_and_unknown_kinds_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p}
spec: {addresses: [10.0.0.0/24]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: p2}
spec: {myASN: 1, peerASN: 2, peerAddress: 10.1.0.1}
---
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: p1}
spec: {myASN: 1, peerASN: 2, peerAddress: 10.1.0.2}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: b}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l}
spec:
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: c}
spec: {communities: [{name: x, value: "1:1"}]}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: f}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
type: kubernetes.io/basic-auth
stringData: {password: pw}
---
apiVersion: v1
kind: Namespace
metadata: {name: n, labels: {a: b}}
---
apiVersion: v1
kind: Node
metadata: {name: node1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e}
addressType: IPv4
endpoints: []
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config}
data: {config: "x"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d2}
---
# an empty document is skipped
"#;
    write(dir.path(), "all.yaml", &(text.to_string() + &svc("s")));
    let res = load_paths(&[dir.path()]).unwrap();
    assert_eq!(res.ip_address_pools.len(), 1);
    assert_eq!(res.bgp_peers.len(), 2);
    assert_eq!(res.bgp_peers[1].metadata.name.as_deref(), Some("p1"));
    assert_eq!(
        res.bgp_peers[1].spec.peer_address.as_deref(),
        Some("10.1.0.2")
    );
    assert_eq!(res.bgp_advertisements.len(), 1);
    assert_eq!(res.l2_advertisements.len(), 1);
    assert_eq!(res.communities.len(), 1);
    assert_eq!(res.bfd_profiles.len(), 1);
    assert_eq!(res.secrets.len(), 1);
    assert_eq!(res.namespaces.len(), 1);
    assert_eq!(res.nodes.len(), 1);
    assert_eq!(res.services.len(), 1);
    assert_eq!(res.endpoint_slices.len(), 1);
    assert_eq!(res.config_maps.len(), 1);
    assert_eq!(res.ignored.get("apps/v1/Deployment"), Some(&2));
    assert_eq!(res.ignored_count(), 2);
    assert_eq!(res.config_object_count(), 7);
}

#[test]
fn kubectl_lists_contribute_their_items() {
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}\n",
        serde_json::to_string(&serde_yaml_ng::from_str::<serde_json::Value>(&svc("one")).unwrap())
            .unwrap(),
        serde_json::to_string(&serde_yaml_ng::from_str::<serde_json::Value>(&svc("two")).unwrap())
            .unwrap(),
    );
    write(dir.path(), "list.yaml", &list);
    let res = load_paths(&[dir.path()]).unwrap();
    assert_eq!(res.services.len(), 2);
}

#[test]
fn parse_errors_name_the_file_and_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let bad = format!(
        "{}---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p}}\nspec: {{addresses: 7}}\n",
        svc("ok")
    );
    write(dir.path(), "bad.yaml", &bad);
    match load_paths(&[dir.path()]) {
        Err(LoadError::Parse {
            path,
            document,
            reason,
        }) => {
            assert!(path.ends_with("bad.yaml"));
            assert_eq!(document, 2);
            assert!(reason.contains("IPAddressPool"), "{reason}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    write(dir.path(), "bad.yaml", "a: [unclosed\n");
    let e = load_paths(&[dir.path()]).unwrap_err().to_string();
    assert!(e.contains("bad.yaml: document 1:"), "{e}");
    write(dir.path(), "bad.yaml", "kind: Service\n");
    let e = load_paths(&[dir.path()]).unwrap_err().to_string();
    assert!(e.contains("missing apiVersion"), "{e}");
}

#[test]
fn missing_paths_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_paths(&[dir.path().join("nope.yaml")]).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }));
    assert!(e.to_string().contains("nope.yaml"));
}

// ---- status overlays (the controller's ferrolb-allocations.yaml) ----

/// A status-only Service document as the controller's standalone mode writes it.
fn overlay(name: &str, ip: &str, pool: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  annotations: {{metallb.io/ip-allocated-from-pool: {pool}}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n"
    )
}

fn ingress_ips(res: &Resources, name: &str) -> Vec<String> {
    let svc = res
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("service {name} missing"));
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ing| ing.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn a_status_overlay_merges_into_the_service_defined_in_another_file() {
    let dir = tempfile::tempdir().unwrap();
    // The overlay's file sorts first: merging happens after every file is read.
    write(
        dir.path(),
        "ferrolb-allocations.yaml",
        &format!(
            "{}---\n{}",
            overlay("web", "192.0.2.10", "pool-a"),
            overlay("gone", "192.0.2.11", "pool-a")
        ),
    );
    let web = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n  annotations: {keep: me, metallb.io/ip-allocated-from-pool: old}\nspec: {type: LoadBalancer}\nstatus: {loadBalancer: {ingress: [{ip: 192.0.2.99}]}}\n";
    write(dir.path(), "services.yaml", web);
    let res = load_paths(&[dir.path()]).unwrap();
    assert_eq!(res.services.len(), 1, "overlays are not Services");
    assert_eq!(
        ingress_ips(&res, "web"),
        ["192.0.2.10"],
        "overlay wins for status"
    );
    let annotations = res.services[0].metadata.annotations.clone().unwrap();
    assert_eq!(annotations["metallb.io/ip-allocated-from-pool"], "pool-a");
    assert_eq!(annotations["keep"], "me");
    assert!(res.services[0].spec.is_some(), "the Service keeps its spec");
    assert_eq!(
        res.ignored.get(UNMATCHED_OVERLAY),
        Some(&1),
        "an overlay without a Service is dropped, not an error"
    );
}

#[test]
fn an_overlay_without_status_keeps_the_services_status_and_the_later_overlay_wins() {
    let text = format!(
        "{}---\n{}---\n{}---\n{}",
        svc("web"),
        overlay("web", "192.0.2.1", "a"),
        overlay("web", "192.0.2.2", "b"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, annotations: {x: y}}\n",
    );
    let res = load_str(&text, std::path::Path::new("t.yaml")).unwrap();
    assert_eq!(res.services.len(), 1);
    assert_eq!(ingress_ips(&res, "web"), ["192.0.2.2"]);
    let annotations = res.services[0].metadata.annotations.clone().unwrap();
    assert_eq!(annotations["x"], "y");
    assert_eq!(annotations["metallb.io/ip-allocated-from-pool"], "b");
    assert_eq!(res.ignored_count(), 0);
}

#[test]
fn an_overlay_matches_on_namespace_too() {
    let other_ns = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: other}\nspec: {type: LoadBalancer}\n";
    let text = format!("{other_ns}---\n{}", overlay("web", "192.0.2.1", "a"));
    let res = load_str(&text, std::path::Path::new("t.yaml")).unwrap();
    assert_eq!(ingress_ips(&res, "web"), Vec::<String>::new());
    assert_eq!(res.ignored.get(UNMATCHED_OVERLAY), Some(&1));
}

// ---- the incremental cache ----

#[test]
fn cached_reload_equals_a_fresh_load_and_parses_only_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        &format!("{}---\n{}", svc("a1"), svc("a2")),
    );
    write(dir.path(), "b.yaml", &svc("b"));
    write(dir.path(), "z.yaml", &overlay("a1", "192.0.2.1", "p"));
    let mut cache = FileCache::new();
    let first = cache.load(&fingerprint(&[dir.path()]).unwrap()).unwrap();
    assert_eq!(first, load_paths(&[dir.path()]).unwrap());
    assert_eq!(cache.last_stats().parsed, 3);
    assert_eq!(cache.last_stats().reused, 0);
    assert!(cache.last_stats().cached_bytes > 0);

    // One file added, one replaced: only those two are parsed.
    write(dir.path(), "c.yaml", &svc("c"));
    let tmp = dir.path().join(".b.yaml.tmp");
    fs::write(&tmp, svc("b-renamed")).unwrap();
    fs::rename(&tmp, dir.path().join("b.yaml")).unwrap();
    let second = cache.load(&fingerprint(&[dir.path()]).unwrap()).unwrap();
    assert_eq!(second, load_paths(&[dir.path()]).unwrap());
    assert_eq!(cache.last_stats().parsed, 2);
    assert_eq!(cache.last_stats().reused, 2);
    assert_eq!(
        ingress_ips(&second, "a1"),
        ["192.0.2.1"],
        "overlay from a cached file"
    );

    // A removed file is gone from the result and the cache.
    let before = cache.last_stats().cached_bytes;
    fs::remove_file(dir.path().join("c.yaml")).unwrap();
    let third = cache.load(&fingerprint(&[dir.path()]).unwrap()).unwrap();
    assert_eq!(third, load_paths(&[dir.path()]).unwrap());
    assert_eq!(cache.last_stats().parsed, 0);
    assert!(cache.last_stats().cached_bytes < before);
}

#[test]
fn a_broken_file_fails_the_load_and_fixing_it_parses_only_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &svc("a"));
    write(dir.path(), "b.yaml", &svc("b"));
    let mut cache = FileCache::new();
    cache.load(&fingerprint(&[dir.path()]).unwrap()).unwrap();
    write(dir.path(), "a.yaml", "a: [unclosed\n");
    let e = cache
        .load(&fingerprint(&[dir.path()]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("a.yaml"), "{e}");
    write(dir.path(), "a.yaml", &svc("a-fixed"));
    let res = cache.load(&fingerprint(&[dir.path()]).unwrap()).unwrap();
    assert_eq!(res.services.len(), 2);
    assert_eq!(cache.last_stats().parsed, 1, "b.yaml still cached");
}

// ---- the watcher ----

const DEADLINE: Duration = Duration::from_secs(20);

/// Events only: with an hour-long poll period, anything that arrives after the first load came
/// through inotify.
fn events_only() -> WatchOptions {
    WatchOptions {
        poll: Duration::from_secs(3600),
        ..WatchOptions::default()
    }
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Loaded>) -> Loaded {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a load result within the deadline")
        .expect("watcher still running")
}

fn rename_into(dir: &std::path::Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn watcher_sends_the_first_load_then_each_change_it_is_notified_of() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &svc("one"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(1);
    let task = tokio::spawn(watch_paths(
        vec![dir.path().to_path_buf()],
        events_only(),
        tx,
    ));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 1);

    rename_into(dir.path(), "b.yaml", &svc("two"));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 2);

    // In a subdirectory created after the watch started.
    fs::create_dir(dir.path().join("sub")).unwrap();
    rename_into(&dir.path().join("sub"), "c.yaml", &svc("three"));
    let mut services = 0;
    for _ in 0..3 {
        services = next(&mut rx).await.unwrap().services.len();
        if services == 3 {
            break;
        }
    }
    assert_eq!(services, 3);

    drop(rx);
    tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_removed_directory_is_unavailable_not_empty_and_is_watched_again_once_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cfg");
    write(&dir, "a.yaml", &svc("one"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(1);
    let _task = tokio::spawn(watch_paths(vec![dir.clone()], events_only(), tx));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 1);

    fs::remove_dir_all(&dir).unwrap();
    match next(&mut rx).await {
        Err(LoadError::Io { path, .. }) => assert!(path.starts_with(&dir), "{path:?}"),
        other => panic!("expected unavailable, got {other:?}"),
    }

    // Recreated: noticed through the parent's watch, then the new directory is watched.
    write(&dir, "b.yaml", &svc("two"));
    let mut got = next(&mut rx).await;
    if got.as_ref().map(|r| r.services.len()).ok() == Some(0) {
        // The directory's creation and the file's write may be seen as two changes.
        got = next(&mut rx).await;
    }
    assert_eq!(
        got.unwrap().services[0].metadata.name.as_deref(),
        Some("two")
    );
    rename_into(&dir, "c.yaml", &svc("three"));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 2);
}

#[tokio::test]
async fn an_unparsable_file_is_sent_as_an_error_once() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &svc("one"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(4);
    let opts = WatchOptions {
        poll: Duration::from_millis(10),
        ..WatchOptions::default()
    };
    let _task = tokio::spawn(watch_paths(vec![dir.path().to_path_buf()], opts, tx));
    assert!(next(&mut rx).await.is_ok());
    rename_into(dir.path(), "a.yaml", "a: [unclosed\n");
    assert!(matches!(next(&mut rx).await, Err(LoadError::Parse { .. })));
    // Polling keeps checking, but an unchanged broken file is not sent again: the next
    // message is the fix.
    rename_into(dir.path(), "a.yaml", &svc("fixed"));
    let res = next(&mut rx).await.unwrap();
    assert_eq!(res.services[0].metadata.name.as_deref(), Some("fixed"));
}

#[tokio::test]
async fn a_single_file_path_is_watched_across_atomic_replacement() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "only.yaml", &svc("one"));
    write(dir.path(), "other.yaml", &svc("not-read"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Loaded>(1);
    let _task = tokio::spawn(watch_paths(
        vec![dir.path().join("only.yaml")],
        events_only(),
        tx,
    ));
    assert_eq!(next(&mut rx).await.unwrap().services.len(), 1);
    for name in ["two", "three"] {
        rename_into(dir.path(), "only.yaml", &svc(name));
        let res = next(&mut rx).await.unwrap();
        assert_eq!(res.services.len(), 1);
        assert_eq!(res.services[0].metadata.name.as_deref(), Some(name));
    }
}

#[test]
fn every_kind_survives_the_cache() {
    // MetalLB's samples hold every metallb.io kind with most of their fields.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/metallb/configsamples");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED every_kind_survives_the_cache: {} not found",
            dir.display()
        );
        return;
    }
    let files: Vec<_> = list_files(&[&dir])
        .unwrap()
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("deployment_")
        })
        .collect();
    let fp = fingerprint(&files).unwrap();
    let mut cache = FileCache::new();
    let fresh = cache.load(&fp).unwrap();
    assert!(fresh.config_object_count() > 10);
    let cached = cache.load(&fp).unwrap();
    assert_eq!(cache.last_stats().parsed, 0);
    assert_eq!(cache.last_stats().reused, files.len());
    assert_eq!(cached, fresh);
    assert_eq!(cached, load_paths(&files).unwrap());
}
