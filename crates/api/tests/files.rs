//! The file source: recursion, ordering, kinds kept and ignored, error locations.

use std::fs;

use ferrolb_api::source::files::{list_files, load_paths, LoadError};

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

#[tokio::test]
async fn watch_paths_publishes_initial_and_changed_snapshots() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &svc("one"));
    let (tx, mut rx) = tokio::sync::watch::channel(std::sync::Arc::new(Ok(Default::default())));
    let task = tokio::spawn(ferrolb_api::source::files::watch_paths(
        vec![dir.path().to_path_buf()],
        Duration::from_millis(20),
        tx,
    ));
    let deadline = Duration::from_secs(20);
    tokio::time::timeout(deadline, rx.changed())
        .await
        .unwrap()
        .unwrap();
    let n = |rx: &tokio::sync::watch::Receiver<ferrolb_api::source::files::Snapshot>| {
        rx.borrow()
            .as_ref()
            .as_ref()
            .map(|r| r.services.len())
            .unwrap_or(usize::MAX)
    };
    assert_eq!(n(&rx), 1);
    // A new file changes the fingerprint (file list) whatever the clock resolution.
    write(dir.path(), "b.yaml", &svc("two"));
    tokio::time::timeout(deadline, rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n(&rx), 2);
    drop(rx);
    tokio::time::timeout(deadline, task).await.unwrap().unwrap();
}
