//! The real `ferrolb-speaker --config-dir` says at WARN which accepted fields it ignores
//! (docs/configuration.md), once per configuration change: a snapshot that changes only
//! Services repeats nothing; a configuration change repeats the (new) list. No root needed; the
//! BGPPeer points at a closed loopback port. Every wait is on a log line, with a deadline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const WARNING: &str = "configuration field accepted but ignored";

/// Kills the daemon if a test fails half-way.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config_yaml(port: u16, bfd_on_peer: bool, pool: &str) -> String {
    let bfd = if bfd_on_peer {
        ", bfdProfile: slow"
    } else {
        ""
    };
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec: {{addresses: ["{pool}"]}}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: slow, namespace: metallb-system}}
spec: {{receiveInterval: 380}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: metallb-system}}
spec: {{myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: {port}, connectTime: 5s{bfd}}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec: {{ipAddressPools: [pool]}}
"#
    )
}

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.7}]}}
"#;

/// Writes via a hidden temporary and a rename, so the watcher never reads half a file.
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// Lines until one contains `until`, or the deadline; the lines are returned either way.
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
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "no line with {until:?} within {LIMIT:?}; saw:\n{}",
                    seen.join("\n")
                )
            }
        }
    }
}

/// `(object, field)` of every ignored-field warning among `lines`, in order.
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
fn speaker_warns_once_per_configuration_change_about_ignored_fields() {
    // The discard port: the session only retries, which this test does not look at
    // (validation caps peerPort at 16384, so an ephemeral port cannot be used).
    let port = 9;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("mkdir");
    write(
        &config,
        "config.yaml",
        &config_yaml(port, true, "198.51.100.0/24"),
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrolb-speaker"))
        .arg("--config-dir")
        .arg(&config)
        .args(["--node-name", "node-a", "--metrics-addr", "127.0.0.1:0"])
        .args(["--poll-ms", "50"])
        .arg("--status-file")
        .arg(dir.path().join("status.yaml"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrolb-speaker");
    let stderr = child.stderr.take().expect("piped");
    let _daemon = Daemon(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("daemon: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // 1. The first configuration: every ignored field, each once, before it is in force.
    let first = lines_until(&rx, "configuration put in force");
    assert_eq!(
        warnings(&first),
        vec![
            "BGPPeer metallb-system/router: spec.connectTime",
            "BGPPeer metallb-system/router: spec.bfdProfile",
            "BFDProfile metallb-system/slow: spec",
        ],
        "{}",
        first.join("\n")
    );

    // 2. A snapshot that adds only a Service: the configuration is unchanged, nothing repeats.
    write(&config, "service.yaml", SERVICE);
    let second = lines_until(&rx, "service status");
    assert!(
        warnings(&second).is_empty(),
        "repeated on an unchanged configuration:\n{}",
        second.join("\n")
    );

    // 3. A configuration change: the new list, once.
    write(
        &config,
        "config.yaml",
        &config_yaml(port, false, "198.51.100.0/25"),
    );
    let third = lines_until(&rx, "configuration put in force");
    assert_eq!(
        warnings(&third),
        vec![
            "BGPPeer metallb-system/router: spec.connectTime",
            "BFDProfile metallb-system/slow: spec",
        ],
        "{}",
        third.join("\n")
    );
}
