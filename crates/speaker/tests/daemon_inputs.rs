//! The speaker's reduced inputs (`ferrolb_speaker::inputs`) give exactly the cluster that the whole
//! k8s objects give: the same Services, EndpointSlices and Nodes, the same warnings, status
//! overlays merged the same way, whatever file the overlay or the Service is in. The reference
//! is computed here from `load_paths`' whole `Resources` with the per-object conversions.

use std::path::Path;

use ferrolb_api::source::files::{fingerprint, load_paths, FileCache};
use ferrolb_api::source::Resources;
use ferrolb_speaker::announce::from_k8s::{
    endpoint_slice_from_k8s, node_from_k8s, service_from_k8s, FromK8sError,
};
use ferrolb_speaker::announce::input::ServiceKey;
use ferrolb_speaker::announce::input::{Cluster, Node};
use ferrolb_speaker::inputs::kept::KeptCluster;
use ferrolb_speaker::inputs::Inputs;

/// `convert` of each item; the ones that do not convert are described in `warnings`.
fn converted<T, U>(
    items: &[T],
    convert: fn(&T) -> Result<U, FromK8sError>,
    warnings: &mut Vec<String>,
) -> Vec<U> {
    items
        .iter()
        .filter_map(|item| convert(item).map_err(|e| warnings.push(e.to_string())).ok())
        .collect()
}

/// The cluster as the speaker computed it before reducing: every whole object converted.
fn reference(res: &Resources, node_name: &str) -> (Cluster, Vec<String>, bool) {
    let mut warnings = Vec::new();
    let services = converted(&res.services, service_from_k8s, &mut warnings);
    let slices = converted(&res.endpoint_slices, endpoint_slice_from_k8s, &mut warnings);
    let nodes = converted(&res.nodes, node_from_k8s, &mut warnings);
    let mut cluster = Cluster::from_objects(services, slices, nodes);
    let synthesized = !cluster.nodes.contains_key(node_name);
    if synthesized {
        cluster.upsert_node(Node::new(node_name, Default::default()));
    }
    (cluster, warnings, synthesized)
}

/// Writes `files` into a fresh directory and checks the reduced load against the reference,
/// for a fresh cache and for a cache reusing every file.
fn check(files: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let res = load_paths(&[dir.path()]).expect("whole load");
    let mut cache = FileCache::<Inputs>::default();
    let fp = fingerprint(&[dir.path()]).expect("fingerprint");
    let inputs = cache.load(&fp).expect("reduced load");
    let again = cache.load(&fp).expect("reduced load from the cache");
    assert_eq!(cache.last_stats().reused, files.len());
    for node in ["node-a", "node-x"] {
        let want = reference(&res, node);
        assert_eq!(inputs.cluster(node), want, "{files:?}");
        assert_eq!(again.cluster(node), want, "{files:?} (cached)");
        // The kept cluster a load diffs into is the same, with the same warnings.
        let mut kept = KeptCluster::new(node);
        let (changes, warnings) = kept.load(&inputs);
        assert_eq!(
            (kept.cluster(), &warnings, kept.synthesized()),
            (&want.0, &want.1, want.2)
        );
        assert!(changes.all, "the first load changes everything");
        // Loading the same again changes nothing.
        assert!(kept.load(&again).0.is_empty(), "{files:?}");
    }
    // Validation reads the configuration: everything but Services and EndpointSlices.
    let mut config = res.clone();
    config.services.clear();
    config.endpoint_slices.clear();
    // Unmatched overlays are counted by the whole load only.
    config.ignored.clear();
    let mut got = inputs.config().clone();
    got.ignored.clear();
    assert_eq!(got, config);
    // And a whole `Resources` reduces to the same.
    assert_eq!(
        Inputs::from_resources(res.clone()).cluster("node-a"),
        reference(&res, "node-a")
    );
}

const CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["198.51.100.0/24"]}
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {zone: a}}
status:
  conditions: [{type: Ready, status: "True"}]
  addresses: [{type: InternalIP, address: 10.0.0.1}]
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
status: {addresses: [{type: InternalIP, address: not-an-ip}]}
"#;

fn service(name: &str, ns: Option<&str>, policy: &str, status: &str) -> String {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}{ns}, labels: {{app: {name}}}}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, loadBalancerClass: x/y}}\n{status}\n"
    )
}

fn overlay(name: &str, ns: Option<&str>, status: &str) -> String {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}{ns}, annotations: {{a: b}}}}\n{status}\n"
    )
}

const SLICES: &str = r#"
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [10.1.0.1], nodeName: node-a, conditions: {ready: true}}
- {addresses: [10.1.0.2], nodeName: node-b, conditions: {ready: false, serving: true, terminating: false}}
- {addresses: [10.1.0.3]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orphan, namespace: default}
addressType: IPv4
endpoints: [{addresses: [10.1.0.9], nodeName: node-a}]
"#;

#[test]
fn services_slices_and_nodes_convert_as_whole_objects_do() {
    let lb = "status: {loadBalancer: {ingress: [{ip: 198.51.100.1}, {hostname: h.example}, {ip: 198.51.100.1}]}}";
    let text = [
        CONFIG.to_string(),
        service("web", None, "Cluster", lb),
        service("local", Some("prod"), "Local", "status: {}"),
        service("bad-ip", None, "Cluster", "status: {loadBalancer: {ingress: [{ip: nope}]}}"),
        service("bad-policy", None, "Sideways", ""),
        "---\napiVersion: v1\nkind: Service\nmetadata: {namespace: default}\nspec: {type: LoadBalancer}\n"
            .to_string(),
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: plain}\nspec: {}\n".to_string(),
        SLICES.to_string(),
    ]
    .concat();
    check(&[("all.yaml", &text)]);
}

#[test]
fn status_overlays_merge_as_in_the_file_source() {
    let ip = |a: &str| format!("status: {{loadBalancer: {{ingress: [{{ip: {a}}}]}}}}");
    let services = [
        CONFIG.to_string(),
        // An overlay replaces the status, even a broken one.
        service(
            "web",
            None,
            "Cluster",
            "status: {loadBalancer: {ingress: [{ip: nope}]}}",
        ),
        service("kept", Some("prod"), "Local", &ip("198.51.100.7")),
        // Two Services with one key: the overlay goes to the last.
        service("twice", None, "Cluster", ""),
        service("twice", Some("default"), "Local", ""),
    ]
    .concat();
    let overlays = [
        overlay("web", Some("default"), &ip("198.51.100.1")),
        // Without a status an overlay changes nothing the speaker reads.
        overlay("kept", Some("prod"), ""),
        // Of two overlays for one Service the later wins.
        overlay("twice", None, &ip("198.51.100.2")),
        overlay("twice", None, &ip("198.51.100.3")),
        // An overlay for no Service is dropped.
        overlay("gone", None, &ip("198.51.100.4")),
    ]
    .concat();
    // The overlay file sorts before and after the Services' file.
    check(&[
        ("a-allocations.yaml", &overlays),
        ("b-services.yaml", &services),
    ]);
    check(&[
        ("a-services.yaml", &services),
        ("z-allocations.yaml", &overlays),
    ]);
    check(&[("one.yaml", &[services.as_str(), overlays.as_str()].concat())]);
}

#[test]
fn every_metallb_sample_reduces_to_its_whole_load() {
    let samples =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/metallb/configsamples");
    if !samples.is_dir() {
        eprintln!("SKIP: MetalLB samples not found at {}", samples.display());
        return;
    }
    let mut files = Vec::new();
    for entry in walk(&samples) {
        let text = std::fs::read_to_string(&entry).expect("read");
        // Only documents the file source accepts: samples that fail a whole load are not ours.
        if ferrolb_api::source::files::load_str(&text, &entry).is_ok() {
            files.push((entry, text));
        }
    }
    assert!(!files.is_empty());
    for (path, text) in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x.yaml");
        let name = if name.ends_with(".yaml") || name.ends_with(".yml") {
            name.to_string()
        } else {
            format!("{name}.yaml")
        };
        check(&[(name.as_str(), text.as_str())]);
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    // Bounded by the sample tree's size.
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_reload_names_only_the_services_whose_objects_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = |a: &str| format!("status: {{loadBalancer: {{ingress: [{{ip: {a}}}]}}}}");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("config.yaml", CONFIG);
    write(
        "services.yaml",
        &[
            service("web", None, "Cluster", &ip("198.51.100.1")),
            service("api", None, "Cluster", &ip("198.51.100.2")),
            service("db", None, "Cluster", &ip("198.51.100.3")),
        ]
        .concat(),
    );
    write("slices.yaml", SLICES);
    let mut cache = FileCache::<Inputs>::default();
    let mut kept = KeptCluster::new("node-a");
    let mut load = |kept: &mut KeptCluster| {
        let inputs = cache
            .load(&fingerprint(&[dir.path()]).expect("fingerprint"))
            .expect("load");
        kept.load(&inputs).0
    };
    assert!(load(&mut kept).all);
    // api's address changes (in its own file's place), db goes, web's slice loses an endpoint,
    // an overlay file gives a new address to nothing that exists.
    write(
        "services.yaml",
        &[
            service("web", None, "Cluster", &ip("198.51.100.1")),
            service("api", None, "Cluster", &ip("198.51.100.9")),
        ]
        .concat(),
    );
    write(
        "slices.yaml",
        &SLICES.replace("- {addresses: [10.1.0.3]}\n", ""),
    );
    write(
        "z-overlay.yaml",
        &overlay("gone", None, &ip("198.51.100.4")),
    );
    let changes = load(&mut kept);
    assert!(!changes.all, "{changes:?}");
    let names: Vec<String> = changes.services.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["default/api", "default/db", "default/web"]);
    // An overlay for an existing Service names just it.
    write(
        "z-overlay.yaml",
        &overlay("web", Some("default"), &ip("198.51.100.5")),
    );
    let changes = load(&mut kept);
    assert_eq!(
        changes.services,
        [ServiceKey::new("default", "web")].into_iter().collect()
    );
    assert!(!changes.all);
}
