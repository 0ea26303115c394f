//! The committed CRD manifests (`deploy/crds/`) are exactly what the code generates, and our
//! schemas have the same field names, path by path, as MetalLB's CRDs.
//!
//! Regenerate after changing a type: `UPDATE_CRDS=1 cargo test -p ferrolb-api --test crds`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferrolb_api::crd::manifests;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn committed_crd_manifests_match_the_generated_ones() {
    let dir = repo_root().join("deploy/crds");
    let update = std::env::var_os("UPDATE_CRDS").is_some();
    if update {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut expected_files = BTreeSet::new();
    let mut stale = Vec::new();
    for crd in manifests::all() {
        let name = manifests::file_name(&crd);
        let want = manifests::to_yaml(&crd).unwrap();
        let path = dir.join(&name);
        expected_files.insert(name.clone());
        if update {
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            stale.push(name);
        }
    }
    // No leftover manifest of a kind we no longer generate.
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yaml"))
                .collect()
        })
        .unwrap_or_default();
    if update {
        for extra in on_disk.difference(&expected_files) {
            std::fs::remove_file(dir.join(extra)).unwrap();
        }
        return;
    }
    let extra: Vec<_> = on_disk.difference(&expected_files).collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "deploy/crds is out of date (stale: {stale:?}, extra: {extra:?}); \
         run `UPDATE_CRDS=1 cargo test -p ferrolb-api --test crds` and commit the result"
    );
}

#[test]
fn crds_command_output_is_every_manifest() {
    let all = manifests::all_yaml().unwrap();
    assert_eq!(all.matches("\n---\n").count() + 1, manifests::all().len());
    for kind in [
        "IPAddressPool",
        "BGPPeer",
        "BGPAdvertisement",
        "L2Advertisement",
        "Community",
        "BFDProfile",
        "ServiceL2Status",
        "ServiceBGPStatus",
        "ConfigurationState",
    ] {
        assert!(all.contains(&format!("kind: {kind}\n")), "{kind}");
    }
}

#[test]
fn bgp_peer_crd_serves_both_versions_and_stores_v1beta2() {
    let peer = manifests::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "BGPPeer")
        .unwrap();
    let versions: Vec<(String, bool, bool)> = peer
        .spec
        .versions
        .iter()
        .map(|v| (v.name.clone(), v.served, v.storage))
        .collect();
    assert_eq!(
        versions,
        [
            ("v1beta1".to_string(), true, false),
            ("v1beta2".to_string(), true, true)
        ]
    );
}

/// Every property path below the root, e.g. `spec.addresses[]` or
/// `spec.nodeSelectors[].matchExpressions[].key`, skipping the root's apiVersion/kind/metadata.
fn field_paths(schema: &Value) -> BTreeSet<String> {
    fn walk(s: &Value, path: &str, out: &mut BTreeSet<String>, depth: usize) {
        assert!(depth < 32, "schema nested too deep at {path}");
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                walk(v, &p, out, depth + 1);
            }
        }
        if let Some(items) = s.get("items") {
            walk(items, &format!("{path}[]"), out, depth + 1);
        }
        if let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object()) {
            walk(ap, &format!("{path}{{}}"), out, depth + 1);
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, "", &mut out, 0);
    out
}

#[test]
fn schemas_have_metallbs_field_names() {
    let dir = repo_root().join("../shared/metallb/crd");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED schemas_have_metallbs_field_names: {} not found (MetalLB's CRDs are expected \
             beside the repository at ../shared/metallb)",
            dir.display()
        );
        return;
    }
    let mut compared = 0;
    for crd in manifests::all() {
        let path = dir.join(manifests::file_name(&crd));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let theirs: Value = serde_yaml_ng::from_str(&text).unwrap();
        let ours = serde_json::to_value(&crd).unwrap();
        for v in ours["spec"]["versions"].as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let their_v = theirs["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .unwrap_or_else(|| panic!("{}: MetalLB has no version {name}", path.display()));
            let a = field_paths(&v["schema"]["openAPIV3Schema"]);
            let b = field_paths(&their_v["schema"]["openAPIV3Schema"]);
            let only_ours: Vec<_> = a.difference(&b).collect();
            let only_theirs: Vec<_> = b.difference(&a).collect();
            assert!(
                only_ours.is_empty() && only_theirs.is_empty(),
                "{} {name}: only in ours: {only_ours:?}; only in MetalLB's: {only_theirs:?}",
                crd.spec.names.kind
            );
            // Scope and names must match too, or kubectl would treat them as different kinds.
            assert_eq!(
                serde_json::to_value(&crd.spec.names).unwrap()["plural"],
                theirs["spec"]["names"]["plural"]
            );
            assert_eq!(
                Value::String(crd.spec.scope.clone()),
                theirs["spec"]["scope"]
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 10, "9 kinds, BGPPeer with two versions");
}

#[test]
fn declared_defaults_and_required_fields_match_metallbs() {
    let dir = repo_root().join("../shared/metallb/crd");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED declared_defaults_and_required_fields_match_metallbs: {} not found",
            dir.display()
        );
        return;
    }
    fn defaults(s: &Value, path: &str, out: &mut BTreeSet<String>) {
        if let Some(d) = s.get("default") {
            out.insert(format!("{path}={d}"));
        }
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.insert(format!("{path} requires {r}"));
        }
        for (k, v) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            defaults(v, &format!("{path}.{k}"), out);
        }
        if let Some(items) = s.get("items") {
            defaults(items, &format!("{path}[]"), out);
        }
    }
    for crd in manifests::all() {
        let text = std::fs::read_to_string(dir.join(manifests::file_name(&crd))).unwrap();
        let theirs: Value = serde_yaml_ng::from_str(&text).unwrap();
        let ours = serde_json::to_value(&crd).unwrap();
        for v in ours["spec"]["versions"].as_array().unwrap() {
            let t = theirs["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == v["name"])
                .unwrap();
            let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
            defaults(&v["schema"]["openAPIV3Schema"], "", &mut a);
            defaults(&t["schema"]["openAPIV3Schema"], "", &mut b);
            assert_eq!(a, b, "{} {}", crd.spec.names.kind, v["name"]);
        }
    }
}
