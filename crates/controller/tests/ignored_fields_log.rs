//! The real `ferrolb-controller --config-dir` (standalone mode) says at WARN which
//! accepted fields it ignores (docs/configuration.md), once per configuration change. Every
//! wait is on a log line, with a deadline.

use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::logged::{ignored_field_warnings, lines_until, spawn_logged, write_atomic};

const LIMIT: Duration = Duration::from_secs(20);

fn config_yaml(pool: &str) -> String {
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: lab, namespace: metallb-system}}
spec: {{addresses: ["{pool}"]}}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: l2, namespace: metallb-system}}
spec:
  ipAddressPools: [lab]
  preferredNodeSelectors:
  - weight: 10
    preference: {{matchLabels: {{zone: a}}}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: metallb-system}}
spec: {{myASN: 64500, peerASN: 64512, peerAddress: 192.0.2.254, vrf: red}}
"#
    )
}

#[test]
fn controller_warns_once_per_configuration_change_about_ignored_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_atomic(dir.path(), "config.yaml", &config_yaml("192.0.2.0/29"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
    cmd.arg("--config-dir")
        .arg(dir.path())
        .args(["--poll-ms", "50"]);
    let (_daemon, rx) = spawn_logged(cmd, "controller");

    let first = lines_until(&rx, "configuration put in force", LIMIT);
    // spec.vrf of the BGPPeer is honoured (the session is bound to the VRF): not warned about.
    let want = vec!["L2Advertisement metallb-system/l2: spec.preferredNodeSelectors"];
    assert_eq!(ignored_field_warnings(&first), want, "{}", first.join("\n"));

    // A Services-only snapshot: the configuration is unchanged, nothing repeats.
    write_atomic(
        dir.path(),
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: web}\n\
         spec: {type: LoadBalancer, ports: [{port: 80}]}\n",
    );
    let second = lines_until(&rx, "web/a", LIMIT);
    assert!(
        ignored_field_warnings(&second).is_empty(),
        "repeated on an unchanged configuration:\n{}",
        second.join("\n")
    );

    // A configuration change: said again, once.
    write_atomic(dir.path(), "config.yaml", &config_yaml("192.0.2.0/28"));
    let third = lines_until(&rx, "configuration put in force", LIMIT);
    assert_eq!(ignored_field_warnings(&third), want, "{}", third.join("\n"));
}
