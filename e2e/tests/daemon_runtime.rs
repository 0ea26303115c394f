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
//! - The ops port of the real speaker (the daemon that hit `EMFILE` before the port was
//!   hardened), run with a 1024 open-files limit, under a bounded loopback flood: `/metrics`
//!   answers, a configuration change is applied, and RSS comes back to within 2 MiB. (The
//!   controller's twin is `crates/controller/tests/ops_flood.rs`.)
//!
//! Needs the workspace binaries (`cargo build -p ferrolb-controller -p ferrolb-speaker`);
//! skips loudly without them. No root, loopback only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::logged::{spawn_logged, write_atomic};
use ferrolb_e2e::ops::{flood, http_get, metric, open_fds, rss_kb};
use ferrolb_e2e::{wait_for, workspace_bin};
use serde_json::Value;

const NS: &str = "metallb-system";
const LIMIT: Duration = Duration::from_secs(30);
/// The log target of every configuration line of both daemons.
const TARGET: &str = "ferrolb_runtime::config:";

/// The speaker's arguments after `--config-dir DIR`: node-a, ops port and memberlist on
/// ephemeral loopback ports, a fast poll.
const SPEAKER_ARGS: [&str; 8] = [
    "--node-name",
    "node-a",
    "--metrics-addr",
    "127.0.0.1:0",
    "--memberlist-port",
    "0",
    "--poll-ms",
    "50",
];

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
    write_atomic(dir.path(), "config.yaml", BAD);

    let mut c = Command::new(controller);
    c.arg("--config-dir")
        .arg(dir.path())
        .args(["--poll-ms", "50", "--log-level", "info"]);
    let (_c, c_rx) = spawn_logged(c, "controller");
    let mut s = Command::new(speaker);
    s.arg("--config-dir").arg(dir.path()).args(SPEAKER_ARGS);
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
    write_atomic(dir.path(), "config.yaml", GOOD);
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
        warnings, 1,
        "spec.preferredNodeSelectors (spec.vrf is honoured): {c_good:#?}"
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

/// Connections of the flood.
const FLOOD: usize = 2_000;
/// The speaker's open-files limit during the flood test.
const DAEMON_NOFILE: u32 = 1024;
/// The ops port's default connection cap (a quarter of 1024 too).
const CAP: usize = 256;
/// RSS allowed above the level before the flood.
const RSS_SLACK_KB: u64 = 2 * 1024;

/// This process's soft open-files limit, from `/proc/self/limits`.
fn own_nofile() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn pool_yaml(cidr: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lab, namespace: metallb-system}}\nspec: {{addresses: [{cidr}]}}\n"
    )
}

#[test]
fn the_speaker_ops_port_survives_a_bounded_flood() {
    let Some((_, speaker)) = bins() else {
        return;
    };
    let own = own_nofile();
    if own < (FLOOD as u64) + 256 {
        eprintln!("SKIPPED: this process may open only {own} files; the flood needs more");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("config dir");
    write_atomic(&config, "pool.yaml", &pool_yaml("192.0.2.0/28"));
    // `ulimit -n` in sh sets the soft and the hard limit; `exec` keeps the PID for /proc.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {DAEMON_NOFILE} && exec \"$0\" \"$@\""))
        .arg(speaker)
        .arg("--config-dir")
        .arg(&config)
        .args(SPEAKER_ARGS);
    cmd.env("RUST_LOG", "info");
    let (daemon, rx) = spawn_logged(cmd, "speaker");
    let pid = daemon.0.id();
    let addr: SocketAddr = wait_for(LIMIT, "the metrics address", || {
        let line = rx.recv_timeout(Duration::from_millis(100)).ok()?;
        line.contains("serving /metrics")
            .then(|| {
                line.split("addr=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .flatten()
    });
    config_lines(&rx, "configuration put in force", 1);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    assert!(
        limits.lines().any(|l| l.starts_with("Max open files")
            && l.split_whitespace().nth(3) == Some("1024")),
        "the speaker runs with the 1024 limit:\n{limits}"
    );
    for _ in 0..20 {
        http_get(addr, "/metrics").expect("a scrape before the flood");
    }
    let rss_before = rss_kb(pid);
    let fds_before = open_fds(pid);

    let flood_deadline = Instant::now() + LIMIT;
    let held = flood(addr, FLOOD, flood_deadline);
    eprintln!("flood: {} of {FLOOD} connections held", held.len());
    assert!(
        held.len() > CAP * 2,
        "the flood exceeds the cap: {}",
        held.len()
    );
    let during = wait_for(LIMIT, "/metrics during the flood", || {
        http_get(addr, "/metrics")
    });
    assert!(during.contains("ferrolb_config_stale 0"), "{during}");
    let fds_during = open_fds(pid);
    assert!(
        fds_during <= fds_before + CAP + 16,
        "the flood holds at most the cap: {fds_during} open, {fds_before} before"
    );
    // The configuration source is still readable: a change is put in force.
    write_atomic(&config, "pool.yaml", &pool_yaml("192.0.2.16/28"));
    let reloaded = config_lines(&rx, "configuration put in force", 1);
    assert!(
        reloaded.iter().any(|l| l.ends_with("generation=2")),
        "{reloaded:#?}"
    );
    let rss_peak = rss_kb(pid);

    drop(held);
    wait_for(LIMIT, "the flood's connections closed", || {
        let text = http_get(addr, "/metrics")?;
        (metric(&text, "ferrolb_ops_http_connections") == Some(1)).then_some(())
    });
    let rss_after = wait_for(LIMIT, "RSS back near its level before the flood", || {
        http_get(addr, "/healthz")?;
        let rss = rss_kb(pid);
        (rss <= rss_before + RSS_SLACK_KB).then_some(rss)
    });
    eprintln!(
        "speaker VmRSS: {rss_before} kB before, {rss_peak} kB during, {rss_after} kB after the flood; descriptors {fds_before} before, {fds_during} during"
    );
}

/// An ignored field (the L2 election has no node preferences) and a VRF no node has, on top of
/// [`CLUSTER`]'s pool.
const IGNORED: &str = r#"apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [pool]
  preferredNodeSelectors:
  - weight: 10
    preference: {matchLabels: {zone: a}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: 9, vrf: flb-no-vrf}
"#;

/// Kubernetes mode: a configuration put in force while the controller leads gets a Warning
/// Event per ignored field from the controller (reason `ConfigurationFieldIgnored`, on the
/// object, note = the log line), and a BGPPeer whose VRF device this node lacks gets a
/// `PeerSessionDown` Warning Event from the speaker.
#[test]
fn kubernetes_daemons_post_ignored_field_and_peer_down_events() {
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
    // Only the leader posts ignored-field Events: put the configuration in force after.
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
    server
        .apply_yaml(IGNORED)
        .expect("configuration with an ignored field");
    let l2_uid = server
        .get("metallb.io/v1beta1", "L2Advertisement", Some(NS), "l2")
        .map(|p| p["metadata"]["uid"].clone())
        .expect("the L2Advertisement exists");
    let find = |reason: &str, reporter: &str| {
        server
            .list("events.k8s.io/v1", "Event")
            .into_iter()
            .find(|e| e["reason"] == reason && e["reportingController"] == reporter)
    };
    let ignored = wait_for(LIMIT, "an ignored-field Event from the controller", || {
        find("ConfigurationFieldIgnored", "ferrolb-controller")
    });
    assert_eq!(ignored["type"], "Warning", "{ignored:#}");
    assert_eq!(
        ignored["regarding"]["kind"], "L2Advertisement",
        "{ignored:#}"
    );
    assert_eq!(ignored["regarding"]["uid"], l2_uid, "{ignored:#}");
    assert!(
        ignored["note"]
            .as_str()
            .is_some_and(|n| n.contains("spec.preferredNodeSelectors is ignored")),
        "{ignored:#}"
    );
    let down = wait_for(LIMIT, "a peer-down Event from the speaker", || {
        find("PeerSessionDown", "ferrolb-speaker")
    });
    assert_eq!(down["type"], "Warning", "{down:#}");
    assert_eq!(down["regarding"]["kind"], "BGPPeer", "{down:#}");
    assert_eq!(down["regarding"]["name"], "router", "{down:#}");
    assert!(
        down["note"]
            .as_str()
            .is_some_and(|n| n.contains("VRF device \"flb-no-vrf\" does not exist")),
        "{down:#}"
    );
}
