//! Standalone mode end to end over loopback, without root: the real `ferrolb-speaker` binary
//! with `--config-dir`, announcing to an in-process crates/bgp listener (collector mode) on
//! 127.0.0.1. Waits are on BGP events; only `/metrics` (which has no event) is polled, with a
//! deadline.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::fsm::DownReason;
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::error::{cease_subcode, ErrorCode};
use ferrolb_e2e::fixture;
use ferrolb_e2e::logged::write_atomic;
use ferrolb_speaker::demo::start_listener;
use ipnet::IpNet;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(15);

/// Kills the daemon if a test fails half-way.
struct Daemon {
    child: Child,
    metrics: SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_yaml(port: u16) -> String {
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec: {{addresses: ["198.51.100.0/24"]}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: metallb-system}}
spec: {{myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: {port}, routerID: 10.255.0.2}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec: {{ipAddressPools: [pool], communities: ["64500:42"]}}
"#
    )
}

/// A Service at `ip` with one ready endpoint on node-a.
fn service_yaml(name: &str, ip: &str) -> String {
    fixture::service_with_endpoints(name, &[ip], "Cluster", &["node-a"])
}

fn prefix(ip: &str) -> IpNet {
    IpNet::from(ip.parse::<IpAddr>().expect("test literal"))
}

async fn router() -> (Speaker, mpsc::Receiver<SpeakerEvent>, u16) {
    let mut cfg = SpeakerConfig::new(64512);
    cfg.router_id = Some(Ipv4Addr::new(10, 255, 0, 1));
    cfg.accept_unknown = Some(PeerConfig {
        passive: true,
        peer_as: None,
        deliver_updates: true,
        ..PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    start_listener(cfg).await.expect("listener")
}

/// Starts the daemon and learns its metrics address from its log.
fn spawn_daemon(dir: &Path, status: &Path) -> Daemon {
    spawn_daemon_with(dir, status, &["--metrics-addr", "127.0.0.1:0"])
}

/// Starts the daemon with `ops_args` choosing its ops address (METALLB_HOST unset).
fn spawn_daemon_with(dir: &Path, status: &Path, ops_args: &[&str]) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrolb-speaker"))
        .args(["--config-dir"])
        .arg(dir)
        .args(["--node-name", "node-a", "--poll-ms", "50"])
        .args(ops_args)
        .env_remove("METALLB_HOST")
        .arg("--status-file")
        .arg(status)
        // The restart marker goes next to the status file, not into the host's /run.
        .arg("--state-dir")
        .arg(status.with_extension("state"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrolb-speaker");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("daemon: {line}");
            if let Some(addr) = line.split("addr=").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(LIMIT)
        .expect("the daemon logs its metrics address")
        .parse()
        .expect("an address");
    Daemon {
        child,
        metrics: addr,
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect metrics");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// Polls `/metrics` until it contains `needle` (no event exists for it), with a deadline.
async fn await_metric(addr: SocketAddr, needle: &str) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let body = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
            .await
            .expect("join");
        if body.contains(needle) {
            return;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in\n{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Applies the router's UPDATEs to `rib` until it equals `want`; fails on a withdraw of any
/// prefix in `keep` on the way.
async fn await_rib(
    events: &mut mpsc::Receiver<SpeakerEvent>,
    rib: &mut BTreeSet<IpNet>,
    want: &BTreeSet<IpNet>,
    keep: &BTreeSet<IpNet>,
) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while rib != want {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("router holds {rib:?}, want {want:?}"))
            .expect("router events");
        if let EventKind::UpdateReceived {
            update: Some(u), ..
        } = ev.kind
        {
            for p in u.withdrawn_prefixes() {
                assert!(!keep.contains(&p), "{p} withdrawn but must stay");
                rib.remove(&p);
            }
            for p in u.announced() {
                assert_eq!(
                    u.attrs
                        .communities
                        .as_ref()
                        .map(|c| c.iter().map(|c| c.0).collect()),
                    Some(vec![(64500 << 16) | 42]),
                    "communities of {p}"
                );
                rib.insert(p);
            }
        }
    }
}

fn set(ips: &[&str]) -> BTreeSet<IpNet> {
    ips.iter().map(|ip| prefix(ip)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_drive_announcements_and_a_source_outage_is_not_a_delete() {
    let (_router, mut events, port) = router().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().join("conf");
    std::fs::create_dir(&dir).expect("mkdir");
    let status = tmp.path().join("status.json");
    write_atomic(&dir, "config.yaml", &config_yaml(port));
    write_atomic(&dir, "svc-a.yaml", &service_yaml("a", "198.51.100.1"));
    write_atomic(&dir, "svc-b.yaml", &service_yaml("b", "198.51.100.2"));
    let daemon = spawn_daemon(&dir, &status);
    let mut rib = BTreeSet::new();

    // Both Services announced, with the advertisement's community.
    await_rib(
        &mut events,
        &mut rib,
        &set(&["198.51.100.1", "198.51.100.2"]),
        &set(&[]),
    )
    .await;
    await_metric(
        daemon.metrics,
        "ferrolb_bgp_session_up{peer=\"127.0.0.1\"} 1",
    )
    .await;
    await_metric(
        daemon.metrics,
        "ferrolb_bgp_announced_prefixes{peer=\"127.0.0.1\"} 2",
    )
    .await;
    assert!(get(daemon.metrics, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(get(daemon.metrics, "/readyz").starts_with("HTTP/1.1 200"));

    // A Service file removed from a readable directory: withdrawn, the other stays.
    std::fs::remove_file(dir.join("svc-b.yaml")).expect("rm");
    await_rib(
        &mut events,
        &mut rib,
        &set(&["198.51.100.1"]),
        &set(&["198.51.100.1"]),
    )
    .await;

    // The directory disappears: stale, and nothing is withdrawn. Proven by order: the next
    // change after it comes back arrives without any withdraw of 198.51.100.1 before it.
    let away = tmp.path().join("away");
    std::fs::rename(&dir, &away).expect("mv dir away");
    await_metric(daemon.metrics, "ferrolb_config_stale 1").await;
    std::fs::rename(&away, &dir).expect("mv dir back");
    await_metric(daemon.metrics, "ferrolb_config_stale 0").await;
    write_atomic(&dir, "svc-c.yaml", &service_yaml("c", "198.51.100.3"));
    await_rib(
        &mut events,
        &mut rib,
        &set(&["198.51.100.1", "198.51.100.3"]),
        &set(&["198.51.100.1"]),
    )
    .await;

    // A file that does not parse: stale, last good state kept.
    write_atomic(&dir, "broken.yaml", "kind: Service\nmetadata: [\n");
    await_metric(daemon.metrics, "ferrolb_config_stale 1").await;
    std::fs::remove_file(dir.join("broken.yaml")).expect("rm");
    await_metric(daemon.metrics, "ferrolb_config_stale 0").await;

    // An invalid configuration: stale, the last good one keeps announcing; a Service added
    // meanwhile is still announced under the last good configuration.
    write_atomic(
        &dir,
        "bad-pool.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bad, namespace: metallb-system}\nspec: {addresses: [\"not-an-address\"]}\n",
    );
    await_metric(daemon.metrics, "ferrolb_config_stale 1").await;
    write_atomic(&dir, "svc-d.yaml", &service_yaml("d", "198.51.100.4"));
    let all = set(&["198.51.100.1", "198.51.100.3", "198.51.100.4"]);
    await_rib(
        &mut events,
        &mut rib,
        &all,
        &set(&["198.51.100.1", "198.51.100.3"]),
    )
    .await;
    // The file is written right after the advertiser is handed the state, so it may trail the
    // UPDATE: poll it (no event exists) with a deadline.
    let deadline = Instant::now() + LIMIT;
    loop {
        let report: serde_json::Value = std::fs::read_to_string(&status)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if report["configStale"] == true && report["services"]["default/d"]["peers"][0] == "router"
        {
            break;
        }
        assert!(Instant::now() < deadline, "status file: {report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_cease_administrative_shutdown() {
    let (_router, mut events, port) = router().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("conf");
    std::fs::create_dir(&dir).expect("mkdir");
    write_atomic(&dir, "config.yaml", &config_yaml(port));
    write_atomic(&dir, "svc-a.yaml", &service_yaml("a", "198.51.100.1"));
    let mut daemon = spawn_daemon(&dir, &tmp.path().join("status.json"));
    let mut rib = BTreeSet::new();
    await_rib(&mut events, &mut rib, &set(&["198.51.100.1"]), &set(&[])).await;

    let pid = daemon.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = tokio::time::Instant::now() + LIMIT;
    let reason = loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("session down in time")
            .expect("router events");
        if let EventKind::Down { reason, .. } = ev.kind {
            break reason;
        }
    };
    match reason {
        DownReason::NotificationReceived(n) => {
            assert_eq!(n.code, ErrorCode::CEASE, "{n}");
            assert_eq!(n.subcode, cease_subcode::ADMINISTRATIVE_SHUTDOWN, "{n}");
        }
        other => panic!("expected a Cease 6/2, got {other}"),
    }
    let status = daemon.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?}");
}

/// The speaker runs in the host's network namespace: without --metrics-addr its ops port binds
/// loopback, or the address --host / METALLB_HOST names (the node's IP in the manifests), never
/// every interface.
#[test]
fn ops_port_binds_loopback_or_the_named_host_never_all_interfaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), config_yaml(1)).expect("write config");
    let status = dir.path().join("status.json");
    let cases: [(&[&str], IpAddr); 3] = [
        (&["--metrics-port", "0"], IpAddr::V4(Ipv4Addr::LOCALHOST)),
        (
            &["--host", "127.0.0.2", "--metrics-port", "0"],
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        ),
        (
            &["--host", "127.0.0.2", "--metrics-addr", "127.0.0.3:0"],
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
        ),
    ];
    for (args, want) in cases {
        let daemon = spawn_daemon_with(dir.path(), &status, args);
        assert_eq!(daemon.metrics.ip(), want, "{args:?}");
        assert!(get(daemon.metrics, "/healthz").contains("200"), "{args:?}");
    }
}
