//! The real `ferrolb-bgp announce` and `listen` binaries against each other over loopback:
//! progress lines, JSON lines, SIGUSR1 withdraw-all keeping the session, SIGTERM -> Cease.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-bgp");
const DEADLINE: Duration = Duration::from_secs(20);

/// Kills the child on drop so a failed assertion leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it.
fn expect_line(rx: &Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                seen.push(l.clone());
                if l.contains(needle) {
                    return l;
                }
            }
            Err(_) => panic!("no line with {needle:?}; saw:\n{}", seen.join("\n")),
        }
    }
}

/// Starts `ferrolb-bgp <args>` (a `listen` on port 0) and waits for its "listening on" line:
/// the process, its stderr and stdout lines (kept, so that its pipes stay drained) and the
/// port it listens on.
fn start_listen(args: &[&str]) -> (Proc, Receiver<String>, Receiver<String>, String) {
    let mut listen = Proc(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn listen"),
    );
    let err = lines(listen.0.stderr.take().expect("stderr"));
    let out = lines(listen.0.stdout.take().expect("stdout"));
    let addr = expect_line(&err, "listening on", &mut Vec::new());
    let port = addr.rsplit(':').next().expect("port").to_owned();
    (listen, err, out, port)
}

fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(p.0.id().to_string())
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} failed");
}

#[test]
fn announce_to_listen_then_withdraw_on_sigusr1_and_cease_on_sigterm() {
    let (mut listen, _l_err, l_out, port) = start_listen(&[
        "listen",
        "--listen",
        "127.0.0.2",
        "--port",
        "0",
        "--local-as",
        "65002",
    ]);

    let dir = std::env::temp_dir().join(format!("ferrolb-bgp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("prefixes.txt");
    std::fs::write(
        &file,
        "# test\n198.51.100.1/32 community=65000:1 large-community=65000:1:2 med=10\n198.51.100.2/32\n",
    )
    .expect("write prefixes");

    let mut announce = Proc(
        Command::new(BIN)
            .args(["announce", "--peer", "127.0.0.2", "--port", &port])
            .args(["--local-as", "65001", "--peer-as", "65002"])
            .args(["--local-address", "127.0.0.1", "--hold-time", "30"])
            .arg("--prefixes")
            .arg(&file)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn announce"),
    );
    let a_err = lines(announce.0.stderr.take().expect("stderr"));
    let mut a_seen = Vec::new();
    expect_line(&a_err, "established", &mut a_seen);
    let sent = expect_line(&a_err, "sent 2 prefixes", &mut a_seen);
    assert!(sent.contains("peer=127.0.0.2"), "{sent}");
    expect_line(&a_err, "end-of-rib", &mut a_seen);

    let mut out_seen = Vec::new();
    let first = expect_line(&l_out, "198.51.100.1/32", &mut out_seen);
    let v: serde_json::Value = serde_json::from_str(&first).expect("JSON line");
    assert_eq!(v["event"], "announce");
    assert_eq!(v["communities"][0], "65000:1");
    assert_eq!(v["large_communities"][0], "65000:1:2");
    assert_eq!(v["med"], 10);
    assert_eq!(v["next_hop"], "127.0.0.1");
    expect_line(&l_out, "198.51.100.2/32", &mut out_seen);

    signal(&announce, "USR1");
    expect_line(&a_err, "withdrew 2 prefixes", &mut a_seen);
    let w = expect_line(&l_out, "\"withdraw\"", &mut out_seen);
    assert!(w.contains("198.51.100."), "{w}");

    signal(&announce, "TERM");
    let down = expect_line(&l_out, "\"down\"", &mut out_seen);
    assert!(down.contains("6/2"), "expected Cease 6/2: {down}");
    // The session was kept through the withdrawal: no down before the SIGTERM one.
    assert_eq!(
        out_seen.iter().filter(|l| l.contains("\"down\"")).count(),
        1,
        "{out_seen:?}"
    );
    let status = announce.0.wait().expect("wait announce");
    assert!(status.success(), "announce exit: {status}");
    signal(&listen, "TERM");
    assert!(listen.0.wait().expect("wait listen").success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn announce_refuses_a_bad_prefixes_file_with_its_line() {
    let dir = std::env::temp_dir().join(format!("ferrolb-bgp-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.txt");
    std::fs::write(&file, "198.51.100.1/32\n198.51.100.2/32 colour=red\n").expect("write");
    let out = Command::new(BIN)
        .args([
            "announce",
            "--peer",
            "127.0.0.2",
            "--local-as",
            "1",
            "--peer-as",
            "2",
        ])
        .arg("--prefixes")
        .arg(&file)
        .output()
        .expect("run announce");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.txt:2"), "{err}");
    assert!(err.contains("colour"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn log_level_sends_tracing_lines_to_stderr_and_leaves_the_documented_lines_alone() {
    let (mut listen, _l_err, l_out, port) = start_listen(&[
        "--log-level",
        "info",
        "listen",
        "--listen",
        "127.0.0.3",
        "--port",
        "0",
        "--local-as",
        "65002",
    ]);
    let mut announce = Proc(
        Command::new(BIN)
            .args(["announce", "--log-level", "info", "--peer", "127.0.0.3"])
            .args(["--port", &port, "--local-as", "65001", "--peer-as", "65002"])
            .args([
                "--local-address",
                "127.0.0.1",
                "--prefix",
                "198.51.100.9/32",
            ])
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn announce"),
    );
    let a_err = lines(announce.0.stderr.take().expect("stderr"));
    let mut a_seen = Vec::new();
    // The tracing subscriber is installed: the driver's state changes show at info...
    expect_line(&a_err, "state change", &mut a_seen);
    // ...and the documented progress lines are still whole lines of their own.
    let est = expect_line(&a_err, "established peer=", &mut a_seen);
    assert!(est.starts_with("established peer=127.0.0.3"), "{est}");
    let eor = expect_line(&a_err, "end-of-rib peer=", &mut a_seen);
    assert!(eor.starts_with("end-of-rib peer="), "{eor}");
    // stdout stays JSON lines only: the announce line parses.
    let mut out_seen = Vec::new();
    let line = expect_line(&l_out, "198.51.100.9/32", &mut out_seen);
    for l in &out_seen {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
    }
    assert!(line.contains("\"announce\""), "{line}");
    signal(&announce, "TERM");
    assert!(announce.0.wait().expect("wait announce").success());
    signal(&listen, "TERM");
    assert!(listen.0.wait().expect("wait listen").success());
}

#[test]
fn a_bad_log_level_is_a_usage_error() {
    let out = Command::new(BIN)
        .args([
            "--log-level",
            "ferrolb_bgp=loud",
            "listen",
            "--local-as",
            "1",
        ])
        .output()
        .expect("run listen");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--log-level"), "{err}");
}
