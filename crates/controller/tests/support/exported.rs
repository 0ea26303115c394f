//! What the daemons export, for tests that check queries against it (the Grafana dashboard,
//! the chart's alert rules): the controller's families from its `Metrics` renderer, the
//! speaker's from a running `ferrolb-speaker` (standalone mode on loopback; every family prints
//! its HELP line even with no series).

// Included by several test files (`#[path]`), each using a part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Identifiers in a PromQL expression that look like our metric names.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ferrolb_") || w.starts_with("metallb_"))
        .map(str::to_owned)
        .collect()
}

/// Names from `# HELP name ...` lines of a Prometheus text exposition.
pub fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Kills the speaker on drop, also when the test panics.
struct Speaker(Child);

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get_metrics(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.contains("# HELP").then_some(body)
}

pub fn speaker_metrics(bin: &PathBuf) -> String {
    // A free loopback port: bind, read it back, release it for the speaker.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = tempfile::tempdir().expect("tempdir");
    let _speaker = Speaker(
        Command::new(bin)
            .arg("--config-dir")
            .arg(dir.path())
            .args(["--node-name", "grafana-test", "--memberlist-port", "0"])
            .arg("--metrics-addr")
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferrolb-speaker"),
    );
    // The process has no readiness event to await from here: poll its port, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(body) = get_metrics(addr) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "ferrolb-speaker served no /metrics on {addr} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The speaker binary built next to the controller's, when it was built.
pub fn speaker_bin() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_BIN_EXE_ferrolb-controller")).with_file_name("ferrolb-speaker");
    path.exists().then_some(path)
}

/// The metric families the controller exports, and the speaker's when it is built (`None`
/// for the speaker half otherwise).
pub fn exported_families() -> (BTreeSet<String>, Option<BTreeSet<String>>) {
    let controller = exported(&ferrolb_controller::daemon::metrics::Metrics::default().render());
    let speaker = speaker_bin().map(|bin| exported(&speaker_metrics(&bin)));
    (controller, speaker)
}
