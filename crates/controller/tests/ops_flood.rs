//! A bounded loopback flood on the ops port of the real `ferrolb-controller --config-dir`
//! (standalone mode), run with an open-files limit of 1024 (soft and hard), the limit that made
//! an unhardened daemon fail with `EMFILE`.
//!
//! While [`FLOOD`] connections are opened and held (half silent, half sending a request head
//! that never ends): `/metrics` still answers, the daemon holds at most its connection cap of
//! descriptors for them, and a configuration change in the directory is still applied. After
//! the flood: the daemon's RSS (from `/proc/PID/status`) comes back to within 2 MiB of what it
//! was before.
//!
//! Bounded: every connect has a timeout, the flood has a deadline, and every wait polls a
//! condition with a deadline (the daemon has no event to await from outside). No timing is
//! asserted.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_e2e::logged::{write_atomic, KillOnDrop};
use ferrolb_e2e::ops::{flood, http_get, metric, open_fds, rss_kb};

/// Connections of the flood.
const FLOOD: usize = 2_000;
/// The daemon's open-files limit during the test.
const DAEMON_NOFILE: u64 = 1024;
/// The daemon's connection cap: the default, which a quarter of 1024 equals.
const CAP: usize = 256;
/// Bound of every wait.
const DEADLINE: Duration = Duration::from_secs(60);
/// RSS allowed above the level before the flood.
const RSS_SLACK_KB: u64 = 2 * 1024;

const CONFIG: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec: {addresses: [192.0.2.0/28]}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: web}
spec: {type: LoadBalancer, ports: [{port: 80}]}
"#;

/// Polls `probe` until it returns `Some`, or panics after [`DEADLINE`].
fn wait_for<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    ferrolb_e2e::wait_for(DEADLINE, what, probe)
}

#[test]
fn a_connection_flood_neither_starves_nor_bloats_the_daemon() {
    // The flood needs FLOOD descriptors in this process.
    let own = ferrolb_runtime::process::raise_nofile_limit().expect("raise own limit");
    if own.soft < (FLOOD as u64) + 256 {
        eprintln!(
            "SKIPPED: this process may open only {} files; the flood needs {}",
            own.soft,
            FLOOD + 256
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_atomic(dir.path(), "config.yaml", CONFIG);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
    cmd.arg("--config-dir")
        .arg(dir.path())
        .args(["--metrics-addr", "127.0.0.1:0", "--poll-ms", "50"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: DAEMON_NOFILE,
                rlim_max: DAEMON_NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ferrolb-controller");
    let pid = child.id();
    let stderr = child.stderr.take().expect("piped");
    let _daemon = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("serving /metrics") {
                if let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
                {
                    let _ = tx.send(addr);
                }
            }
            // Too chatty under a flood to echo everything; failures are what matter.
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("controller: {line}");
            }
        }
    });
    let addr = rx.recv_timeout(DEADLINE).expect("the metrics address");
    let allocations = dir.path().join("ferrolb-allocations.yaml");
    wait_for("web/a allocated", || {
        std::fs::read_to_string(&allocations)
            .ok()
            .filter(|t| t.contains("name: a"))
    });

    // Before: warmed up by a few scrapes.
    for _ in 0..20 {
        http_get(addr, "/metrics").expect("a scrape before the flood");
    }
    let rss_before = rss_kb(pid);
    let fds_before = open_fds(pid);
    eprintln!("before the flood: VmRSS {rss_before} kB, {fds_before} descriptors");

    // The flood: opened and held, bounded in time.
    let flood_deadline = Instant::now() + DEADLINE;
    let held = flood(addr, FLOOD, flood_deadline);
    eprintln!("flood: {} of {FLOOD} connections held", held.len());
    assert!(
        held.len() > CAP * 2,
        "the flood exceeds the cap: {}",
        held.len()
    );

    // During: /metrics answers (each scrape evicts an idle flood connection).
    let during = wait_for("/metrics during the flood", || http_get(addr, "/metrics"));
    assert!(
        metric(&during, "ferrolb_ops_http_connections").is_some_and(|n| n <= CAP as u64),
        "{during}"
    );
    let fds_during = open_fds(pid);
    eprintln!("during the flood: {fds_during} descriptors");
    assert!(
        fds_during <= fds_before + CAP + 16,
        "the flood holds at most the cap: {fds_during} open, {fds_before} before"
    );
    // A configuration change is applied: a new Service gets an address.
    write_atomic(
        dir.path(),
        "svc-b.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: web}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n",
    );
    wait_for("web/b allocated during the flood", || {
        std::fs::read_to_string(&allocations)
            .ok()
            .filter(|t| t.contains("name: b"))
    });
    let rss_peak = rss_kb(pid);

    // After: every flood connection closed by us; the daemon lets go of them and of the memory.
    drop(held);
    wait_for("the flood's connections closed", || {
        let text = http_get(addr, "/metrics")?;
        (metric(&text, "ferrolb_ops_http_connections") == Some(1)).then_some(())
    });
    let rss_after = wait_for("RSS back near its level before the flood", || {
        // One more scrape: the slot of the last one drops after the answer is read.
        http_get(addr, "/healthz")?;
        let rss = rss_kb(pid);
        (rss <= rss_before + RSS_SLACK_KB).then_some(rss)
    });
    eprintln!(
        "VmRSS: {rss_before} kB before, {rss_peak} kB during, {rss_after} kB after the flood"
    );
}
