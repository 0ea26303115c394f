//! `ferrolb-controller crds` prints exactly the committed `deploy/crds/` manifests.

use std::process::Command;

#[test]
fn crds_prints_every_committed_manifest() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("crds")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8(out.stdout).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 9);
    let committed: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(printed, committed);
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&printed)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 9);
    assert!(docs.iter().all(|d| d["kind"] == "CustomResourceDefinition"));
}
