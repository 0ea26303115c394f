//! The real `ferrolb-speaker --config-dir` says at WARN which accepted fields it ignores
//! (docs/configuration.md), once per configuration change: a snapshot that changes only
//! Services repeats nothing; a configuration change repeats the (new) list. No root needed; the
//! BGPPeer points at a closed loopback port. Every wait is on a log line, with a deadline.

use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::logged::{ignored_field_warnings, lines_until, spawn_logged, write_atomic};

const LIMIT: Duration = Duration::from_secs(20);

/// `echo`: the BFDProfile asks for BFD Echo, the one part of it not implemented (reported).
fn config_yaml(port: u16, echo: bool, pool: &str) -> String {
    let echo = if echo { ", echoMode: true" } else { "" };
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec: {{addresses: ["{pool}"]}}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: slow, namespace: metallb-system}}
spec: {{receiveInterval: 380{echo}}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: metallb-system}}
spec: {{myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: {port}, connectTime: 5s, bfdProfile: slow}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec: {{ipAddressPools: [pool]}}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: l2, namespace: metallb-system}}
spec: {{ipAddressPools: [pool], preferredNodeSelectors: [{{weight: 10, preference: {{matchLabels: {{zone: a}}}}}}]}}
"#
    )
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.7}]}}
"#;

#[test]
fn speaker_warns_once_per_configuration_change_about_ignored_fields() {
    // The discard port: the session only retries, which this test does not look at
    // (validation caps peerPort at 16384, so an ephemeral port cannot be used).
    let port = 9;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("mkdir");
    write_atomic(
        &config,
        "config.yaml",
        &config_yaml(port, true, "198.51.100.0/24"),
    );

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-speaker"));
    cmd.arg("--config-dir")
        .arg(&config)
        .args(["--node-name", "node-a", "--metrics-addr", "127.0.0.1:0"])
        .args(["--poll-ms", "50"])
        .arg("--status-file")
        .arg(dir.path().join("status.yaml"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "info");
    let (_daemon, rx) = spawn_logged(cmd, "daemon");

    // 1. The first configuration: every ignored field, each once, before it is in force.
    let first = lines_until(&rx, "configuration put in force", LIMIT);
    assert_eq!(
        ignored_field_warnings(&first),
        // connectTime is honoured (the ConnectRetry time), bfdProfile too (BFD runs): only
        // the Echo request of the profile and the L2 node preferences are ignored.
        vec![
            "L2Advertisement metallb-system/l2: spec.preferredNodeSelectors",
            "BFDProfile metallb-system/slow: spec.echoMode",
        ],
        "{}",
        first.join("\n")
    );

    // 2. A snapshot that adds only a Service: the configuration is unchanged, nothing repeats.
    write_atomic(&config, "service.yaml", SERVICE);
    let second = lines_until(&rx, "service status", LIMIT);
    assert!(
        ignored_field_warnings(&second).is_empty(),
        "repeated on an unchanged configuration:\n{}",
        second.join("\n")
    );

    // 3. A configuration change: the new list, once.
    write_atomic(
        &config,
        "config.yaml",
        &config_yaml(port, false, "198.51.100.0/25"),
    );
    let third = lines_until(&rx, "configuration put in force", LIMIT);
    assert_eq!(
        ignored_field_warnings(&third),
        vec!["L2Advertisement metallb-system/l2: spec.preferredNodeSelectors"],
        "{}",
        third.join("\n")
    );
}
