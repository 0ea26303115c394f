//! `ferrolb-controller validate` size limits, run as a real process.

use std::process::Command;

const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec: {addresses: [10.0.0.0/24]}\n";

fn validate(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("validate")
        .args(args)
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn a_file_over_max_file_bytes_is_an_error_naming_it_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pool.yaml"), POOL).unwrap();
    let limit = (POOL.len() - 1).to_string();
    let out = validate(&["--max-file-bytes", &limit], dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pool.yaml") && stdout.contains(&format!("limit of {limit} bytes")),
        "{stdout}"
    );
    let out = validate(&["--max-file-bytes", &POOL.len().to_string()], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn files_over_max_dir_bytes_together_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), POOL).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        POOL.replace("name: p", "name: q"),
    )
    .unwrap();
    let out = validate(&["--max-dir-bytes", &POOL.len().to_string()], dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("--max-dir-bytes"), "{stdout}");
}
