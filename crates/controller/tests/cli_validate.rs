//! `ferrolb-controller validate` run as a real process.

use std::path::Path;
use std::process::{Command, Output};

fn validate(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("validate")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn valid_directory_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pool.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/24]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    )
    .unwrap();
    let out = validate(&[dir.path()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("valid: 1 IPAddressPool"));
}

#[test]
fn every_error_is_printed_one_per_line_and_exit_is_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/33, 10.0.0.9-10.0.0.1]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: peer, namespace: metallb-system}\nspec: {myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, holdTime: 1s}\n",
    )
    .unwrap();
    let out = validate(&[dir.path()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0]
            .starts_with("IPAddressPool metallb-system/p: spec.addresses[0] = \"10.0.0.0/33\": "),
        "{text}"
    );
    assert!(
        lines[1].starts_with(
            "IPAddressPool metallb-system/p: spec.addresses[1] = \"10.0.0.9-10.0.0.1\": "
        ),
        "{text}"
    );
    assert!(lines[2].starts_with("BGPPeer metallb-system/peer: spec.holdTime = \"1s\": hold time must be 0 or at least 3s"), "{text}");
}

#[test]
fn unparsable_file_names_file_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\nkey: [unclosed\n",
    )
    .unwrap();
    let out = validate(&[&f]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("broken.yaml: document 2:"), "{out:?}");
    let out = validate(&[&dir.path().join("missing.yaml")]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn missing_secret_is_only_a_warning_offline_but_a_wrong_type_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let peer = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p, namespace: metallb-system}\nspec: {myASN: 1, peerASN: 2, peerAddress: 10.1.0.1, passwordSecret: {name: s}}\n";
    std::fs::write(dir.path().join("peer.yaml"), peer).unwrap();
    let out = validate(&[dir.path()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("warning: BGPPeer metallb-system/p: spec.passwordSecret.name"));
    std::fs::write(
        dir.path().join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: metallb-system}\ntype: Opaque\nstringData: {password: x}\n",
    )
    .unwrap();
    let out = validate(&[dir.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("kubernetes.io/basic-auth"), "{out:?}");
}

#[test]
fn every_metallb_config_sample_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/metallb/configsamples");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED every_metallb_config_sample_passes: {} not found",
            dir.display()
        );
        return;
    }
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("deployment_")
        {
            continue;
        }
        let out = validate(&[&path]);
        assert_eq!(out.status.code(), Some(0), "{}: {out:?}", path.display());
        n += 1;
    }
    assert!(n >= 10);
}
