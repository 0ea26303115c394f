//! The real `ferrolb-controller --config-dir` (standalone mode) says at WARN which
//! accepted fields it ignores (docs/configuration.md), once per configuration change. Every
//! wait is on a log line, with a deadline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const WARNING: &str = "configuration field accepted but ignored";

/// Kills the controller if a test fails half-way.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// Writes via a hidden temporary and a rename, so the watcher never reads half a file.
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// Lines until one contains `until` (panics at the deadline); the lines are returned.
fn lines_until(rx: &Receiver<String>, until: &str) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(until);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!(
                "no line with {until:?} within {LIMIT:?} ({e}); saw:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// `Kind ns/name: path` of every ignored-field warning among `lines`, in order.
fn warnings(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(WARNING) && l.contains("WARN"))
        .filter_map(|l| {
            let rest = l.split("ignored=").nth(1)?;
            let end = rest.find(" is ignored")?;
            rest.get(..end).map(str::to_string)
        })
        .collect()
}

#[test]
fn controller_warns_once_per_configuration_change_about_ignored_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config.yaml", &config_yaml("192.0.2.0/29"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("--config-dir")
        .arg(dir.path())
        .args(["--poll-ms", "50"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrolb-controller");
    let stderr = child.stderr.take().expect("piped");
    let _daemon = Daemon(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("controller: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let first = lines_until(&rx, "configuration put in force");
    // spec.vrf of the BGPPeer is honoured (the session is bound to the VRF): not warned about.
    let want = vec!["L2Advertisement metallb-system/l2: spec.preferredNodeSelectors"];
    assert_eq!(warnings(&first), want, "{}", first.join("\n"));

    // A Services-only snapshot: the configuration is unchanged, nothing repeats.
    write(
        dir.path(),
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: web}\n\
         spec: {type: LoadBalancer, ports: [{port: 80}]}\n",
    );
    let second = lines_until(&rx, "web/a");
    assert!(
        warnings(&second).is_empty(),
        "repeated on an unchanged configuration:\n{}",
        second.join("\n")
    );

    // A configuration change: said again, once.
    write(dir.path(), "config.yaml", &config_yaml("192.0.2.0/28"));
    let third = lines_until(&rx, "configuration put in force");
    assert_eq!(warnings(&third), want, "{}", third.join("\n"));
}
