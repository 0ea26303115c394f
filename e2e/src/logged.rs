//! Our daemons run as plain child processes on loopback (no namespace, no root): started with
//! their log piped back line by line, killed on drop, fed configuration files that a watcher
//! never reads half-written. For tests that await log lines as events rather than polling a
//! log file ([`crate::Daemon`] does that).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The message of the WARN line a daemon logs for each accepted-but-ignored field.
pub const IGNORED_FIELD_WARNING: &str = "configuration field accepted but ignored";

/// A child process, killed and reaped on drop (also when a test fails half-way).
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` (with `NO_COLOR=1`, stdout discarded, stderr piped); every stderr line is
/// echoed to the test's stderr as `<name>: <line>` and sent on the receiver. Panics naming
/// `name` if the program cannot start.
pub fn spawn_logged(mut cmd: Command, name: &'static str) -> (KillOnDrop, Receiver<String>) {
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
    (KillOnDrop(child), rx)
}

/// Writes `text` to `dir/name` via a hidden temporary and a rename, so a watcher never reads
/// half a file. Panics on an I/O error.
pub fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temporary");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// The lines from `rx` up to and including the first that contains `until`; panics, showing
/// the lines seen, if none comes within `limit` or the sender is gone.
pub fn lines_until(rx: &Receiver<String>, until: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
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
                "no line with {until:?} within {limit:?} ({e}); saw:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// The first line from `rx` that contains `text`; panics if none comes within `limit`.
pub fn wait_line(rx: &Receiver<String>, text: &str, limit: Duration) -> String {
    lines_until(rx, text, limit)
        .pop()
        .expect("lines_until returns at least the matching line")
}

/// `Kind ns/name: path` of every ignored-field WARN line among `lines`, in order.
pub fn ignored_field_warnings(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(IGNORED_FIELD_WARNING) && l.contains("WARN"))
        .filter_map(|l| {
            let rest = l.split("ignored=").nth(1)?;
            let end = rest.find(" is ignored")?;
            rest.get(..end).map(str::to_string)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_field_warnings_picks_the_object_and_path_of_warn_lines_only() {
        let lines = [
            "WARN ferrolb_runtime::config: configuration field accepted but ignored ignored=BGPPeer ns/r: spec.vrf is ignored here",
            "INFO ferrolb_runtime::config: configuration field accepted but ignored ignored=X ns/y: spec is ignored",
            "WARN other line",
        ]
        .map(String::from);
        assert_eq!(ignored_field_warnings(&lines), ["BGPPeer ns/r: spec.vrf"]);
    }

    #[test]
    fn lines_until_returns_the_lines_through_the_match() {
        let (tx, rx) = std::sync::mpsc::channel();
        for l in ["a", "b done", "c"] {
            tx.send(l.to_string()).unwrap();
        }
        assert_eq!(
            lines_until(&rx, "done", Duration::from_secs(1)),
            ["a", "b done"]
        );
        assert_eq!(lines_until(&rx, "c", Duration::from_secs(1)), ["c"]);
    }
}
