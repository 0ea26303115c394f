//! One runtime, one report: the controller and the speaker apply configurations through
//! `ferrolb_runtime`, so the same configuration must give the same log lines and the same
//! Kubernetes Events from both real daemons.
//!
//! - Standalone mode (`--config-dir`): both daemons read one directory holding a bad
//!   configuration, then a good one with accepted-but-ignored fields; their configuration log
//!   lines (text format, timestamps removed) must be equal.
//! - Kubernetes mode, against the API-server test double: both post the Events of one
//!   rejected pool; apart from the reporting controller they must be equal, and `regarding`
//!   must carry the pool's UID.
//!
//! Needs the workspace binaries (`cargo build -p ferrolb-controller -p ferrolb-speaker`);
//! skips loudly without them. No root, loopback only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::{wait_for, workspace_bin};
use serde_json::Value;

const NS: &str = "metallb-system";
const LIMIT: Duration = Duration::from_secs(30);
/// The log target of every configuration line of both daemons.
const TARGET: &str = "ferrolb_runtime::config:";

/// Kills a daemon if a test fails half-way.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bins() -> Option<(PathBuf, PathBuf)> {
    match (
        workspace_bin("ferrolb-controller"),
        workspace_bin("ferrolb-speaker"),
    ) {
        (Ok(c), Ok(s)) => Some((c, s)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

const BAD: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: broken, namespace: metallb-system}
spec: {addresses: ["not-a-cidr", "198.51.100.0/33"]}
"#;

const GOOD: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: broken, namespace: metallb-system}
spec: {addresses: ["198.51.100.0/28"]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [broken]
  preferredNodeSelectors:
  - weight: 10
    preference: {matchLabels: {zone: a}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: 9, vrf: red}
"#;

/// Writes via a hidden temporary and a rename, so a watcher never reads half a file.
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temporary");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// Spawns `cmd` with stderr piped; its lines arrive on the receiver.
fn spawn_logged(mut cmd: Command, name: &'static str) -> (Daemon, Receiver<String>) {
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{name}: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Daemon(child), rx)
}

/// The configuration lines (without their timestamp) until `count` lines containing `until`
/// have been seen, or panics after [`LIMIT`].
fn config_lines(rx: &Receiver<String>, until: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if !line.contains(TARGET) {
                    continue;
                }
                // `<timestamp> <LEVEL> <target>: <message> <fields>`: drop the timestamp.
                let rest = line.split_once(' ').map(|(_, r)| r).unwrap_or(&line);
                let rest = rest.trim_start().to_string();
                if rest.contains(until) {
                    seen += 1;
                }
                out.push(rest);
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                "{count} lines with {until:?} not seen within {LIMIT:?}; saw:\n{}",
                out.join("\n")
            ),
        }
    }
    out
}

#[test]
fn standalone_daemons_log_the_same_configuration_lines() {
    let Some((controller, speaker)) = bins() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "config.yaml", BAD);

    let mut c = Command::new(controller);
    c.arg("--config-dir")
        .arg(dir.path())
        .args(["--poll-ms", "50", "--log-level", "info"]);
    let (_c, c_rx) = spawn_logged(c, "controller");
    let mut s = Command::new(speaker);
    s.arg("--config-dir").arg(dir.path()).args([
        "--node-name",
        "node-a",
        "--metrics-addr",
        "127.0.0.1:0",
        "--memberlist-port",
        "0",
        "--poll-ms",
        "50",
    ]);
    s.env("RUST_LOG", "info");
    let (_s, s_rx) = spawn_logged(s, "speaker");

    // 1. The bad configuration: one ERROR line per error, the same from both.
    let rejected = "configuration rejected; the last good one stays in force";
    let c_bad = config_lines(&c_rx, rejected, 2);
    let s_bad = config_lines(&s_rx, rejected, 2);
    assert_eq!(c_bad, s_bad, "the rejection is logged alike");
    assert!(
        c_bad
            .iter()
            .all(|l| l.starts_with("ERROR ferrolb_runtime::config: configuration rejected")),
        "{c_bad:#?}"
    );
    assert!(
        c_bad.iter().any(|l| l.contains(
            "error=IPAddressPool metallb-system/broken: spec.addresses[0] = \"not-a-cidr\""
        )),
        "{c_bad:#?}"
    );

    // 2. A good configuration with ignored fields: the same WARN and INFO lines.
    write(dir.path(), "config.yaml", GOOD);
    let c_good = config_lines(&c_rx, "configuration put in force", 1);
    let s_good = config_lines(&s_rx, "configuration put in force", 1);
    assert_eq!(c_good, s_good, "the acceptance is logged alike");
    assert_eq!(
        c_good.last().map(String::as_str),
        Some("INFO ferrolb_runtime::config: configuration put in force generation=1")
    );
    let warnings = c_good
        .iter()
        .filter(|l| l.starts_with("WARN") && l.contains("accepted but ignored"))
        .count();
    assert_eq!(
        warnings, 2,
        "spec.vrf and spec.preferredNodeSelectors: {c_good:#?}"
    );
}

const CLUSTER: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["198.51.100.0/24"]}
---
apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {kubernetes.io/hostname: node-a}}
status: {addresses: [{type: InternalIP, address: 127.0.0.1}]}
"#;

/// The Events about the pool `broken` posted by `controller`, without what names the reporter.
fn rejection_events(server: &ApiServer, controller: &str) -> Vec<Value> {
    let mut out: Vec<Value> = server
        .list("events.k8s.io/v1", "Event")
        .into_iter()
        .filter(|e| e["reportingController"] == controller && e["regarding"]["name"] == "broken")
        .map(|e| {
            serde_json::json!({
                "type": e["type"],
                "reason": e["reason"],
                "action": e["action"],
                "note": e["note"],
                "regarding": e["regarding"],
                "namespace": e["metadata"]["namespace"],
            })
        })
        .collect();
    out.sort_by_key(|e| e["note"].as_str().unwrap_or("").to_string());
    out
}

#[test]
fn kubernetes_daemons_post_the_same_rejection_events() {
    let Some((controller, speaker)) = bins() else {
        return;
    };
    let server = ApiServer::start().expect("start the API-server double");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    server.apply_yaml(CLUSTER).expect("cluster objects");

    let mut c = Command::new(controller);
    c.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", NS, "--identity", "controller-0"])
        .args(["--lease-duration-secs", "2"])
        .args(["--metrics-addr", "127.0.0.1:0"]);
    let (_c, _c_rx) = spawn_logged(c, "controller");
    let mut s = Command::new(speaker);
    s.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--node-name", "node-a", "--namespace", NS])
        .args(["--metrics-addr", "127.0.0.1:0", "--memberlist-port", "0"])
        .env("POD_NAME", "ferrolb-speaker-abcde")
        .env("RUST_LOG", "info");
    let (_s, _s_rx) = spawn_logged(s, "speaker");

    // A Lease held means the controller is leading (only the leader posts Events).
    wait_for(LIMIT, "the controller's Lease", || {
        server
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                Some(NS),
                "ferrolb-controller",
            )
            .filter(|l| l["spec"]["holderIdentity"] == "controller-0")
            .map(|_| ())
    });
    server.apply_yaml(BAD).expect("bad pool");
    let pool_uid = server
        .get("metallb.io/v1beta1", "IPAddressPool", Some(NS), "broken")
        .map(|p| p["metadata"]["uid"].clone())
        .expect("the pool exists");

    let from_controller = wait_for(LIMIT, "two Events from the controller", || {
        let e = rejection_events(&server, "ferrolb-controller");
        (e.len() == 2).then_some(e)
    });
    let from_speaker = wait_for(LIMIT, "two Events from the speaker", || {
        let e = rejection_events(&server, "ferrolb-speaker");
        (e.len() == 2).then_some(e)
    });
    assert_eq!(
        from_controller, from_speaker,
        "the same Events from both daemons"
    );
    for e in &from_controller {
        assert_eq!(e["reason"], "ConfigurationRejected", "{e:#}");
        assert_eq!(e["type"], "Warning", "{e:#}");
        assert_eq!(e["action"], "Validate", "{e:#}");
        assert_eq!(e["regarding"]["uid"], pool_uid, "{e:#}");
        assert_eq!(e["regarding"]["kind"], "IPAddressPool", "{e:#}");
        assert!(
            e["note"]
                .as_str()
                .is_some_and(|n| n.ends_with("the last good configuration stays in force")),
            "{e:#}"
        );
    }
}
