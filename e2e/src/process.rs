//! Commands and long-running processes started by the harness.
//!
//! Every process is started by us, so every process is stopped by its PID: a
//! SIGTERM, a bounded wait, then SIGKILL. Signals are sent with the `kill`
//! command so the crate needs no `unsafe`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::wait::Backoff;
use crate::Error;

/// How long a process gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Polling step while waiting for a process to exit (no event exists for a
/// non-child's exit, and `Child::wait` has no timeout).
const EXIT_POLL: Duration = Duration::from_millis(10);

/// Renders a command line for messages.
pub(crate) fn render(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; a non-zero exit is an [`Error::Command`].
pub fn run(cmd: &mut Command) -> Result<Output, Error> {
    let out = run_unchecked(cmd)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::Command {
            command: render(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs `cmd` to completion and returns its output whatever the exit status.
pub fn run_unchecked(cmd: &mut Command) -> Result<Output, Error> {
    cmd.stdin(Stdio::null());
    cmd.output().map_err(|source| Error::Spawn {
        command: render(cmd),
        source,
    })
}

/// Sends `signal` (a name such as `TERM`, `STOP`) to `pid`.
pub fn signal(pid: u32, signal: &str) -> Result<(), Error> {
    run(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string()))
    .map(drop)
}

/// True while a process with this PID exists (zombies included).
pub fn pid_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A long-running process started by the harness, with stdout and stderr in
/// one log file. Dropping it stops it (TERM, bounded wait, KILL), or kills it
/// after [`Daemon::kill_on_drop`].
///
/// The log can be awaited ([`Daemon::wait_log`], [`Daemon::wait_log_field`]):
/// a daemon's log line is often the only event a test has ("listening",
/// the metrics address it bound).
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    kill_on_drop: bool,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Daemon, Error> {
        let io_err = |source| Error::Io {
            op: "open log",
            path: log.to_owned(),
            source,
        };
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io_err)?;
        let err = out.try_clone().map_err(io_err)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: render(&cmd),
            source,
        })?;
        Ok(Daemon {
            name: name.to_owned(),
            pid: child.id(),
            child: Some(child),
            log: log.to_owned(),
            kill_on_drop: false,
        })
    }

    /// Makes dropping the daemon a SIGKILL (no chance to clean up, so a
    /// failing test leaves nothing behind and a restart test sees what a
    /// crash leaves), and prints the log's tail if the test is panicking
    /// then, since the log may be in a directory that goes with the test.
    pub fn kill_on_drop(mut self) -> Daemon {
        self.kill_on_drop = true;
        self
    }

    /// The process's PID (with `ip netns exec`, the daemon's own PID: it
    /// execs the program after joining the namespace).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A short name for messages ("bgpd", "bird").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log's contents so far (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `timeout` for a log line containing `needle`; returns the
    /// first such line.
    pub fn wait_log(&self, timeout: Duration, needle: &str) -> Result<String, Error> {
        let what = format!("{} to log {needle:?}", self.name);
        crate::try_wait_for(timeout, &what, || {
            self.log()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned)
        })
        .map_err(|e| self.with_log_tail(e))
    }

    /// Waits up to `timeout` for a log line containing `needle` that carries
    /// the field `key` ([`log_field`]); returns the field's value.
    pub fn wait_log_field(
        &self,
        timeout: Duration,
        needle: &str,
        key: &str,
    ) -> Result<String, Error> {
        let what = format!("{} to log {needle:?} with field {key}", self.name);
        crate::try_wait_for(timeout, &what, || {
            self.log()
                .lines()
                .filter(|l| l.contains(needle))
                .find_map(|l| log_field(l, key))
        })
        .map_err(|e| self.with_log_tail(e))
    }

    /// Waits up to `timeout` for the address our daemons log when their ops
    /// HTTP server is bound (`serving /metrics ... addr=127.0.0.1:9120`),
    /// which is how a test learns the port of `--metrics-addr 127.0.0.1:0`.
    pub fn metrics_addr(&self, timeout: Duration) -> Result<std::net::SocketAddr, Error> {
        let addr = self.wait_log_field(timeout, "serving /metrics", "addr")?;
        addr.parse().map_err(|e| Error::BadValue {
            field: "logged metrics address",
            value: addr.clone(),
            reason: format!("{e}"),
        })
    }

    /// Waits up to `timeout` for the process to exit; returns its status as
    /// std prints it ("exit status: 0").
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<String, Error> {
        let what = format!("{} to exit", self.name);
        crate::try_wait_for(timeout, &what, || self.exit_status())
    }

    /// Adds the log's tail to a timeout, so the message shows what the
    /// daemon said instead of what it did not.
    fn with_log_tail(&self, e: Error) -> Error {
        let tail = crate::error::tail(&self.log(), 30);
        e.with_last(format!("log tail of {}:\n{tail}", self.name))
    }

    /// `Some(status)` once the process has exited (it is reaped then).
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.as_mut() {
            None => Some("stopped by the harness".to_owned()),
            Some(c) => match c.try_wait() {
                Ok(Some(st)) => Some(st.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("unknown ({e})")),
            },
        }
    }

    /// True while the process runs (a frozen process runs).
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// SIGSTOP: the process stops reading its sockets and sending keepalives.
    pub fn freeze(&self) -> Result<(), Error> {
        signal(self.pid, "STOP")
    }

    /// SIGCONT after [`Daemon::freeze`].
    pub fn thaw(&self) -> Result<(), Error> {
        signal(self.pid, "CONT")
    }

    /// SIGKILL and reap, without a chance to clean up (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (after SIGCONT, in case it is frozen), wait up to
    /// [`STOP_GRACE`], then SIGKILL; always reaps the process.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Ok(None) = c.try_wait() {
            let _ = signal(self.pid, "CONT");
            let _ = signal(self.pid, "TERM");
            let mut backoff = Backoff::with_steps(STOP_GRACE, EXIT_POLL, EXIT_POLL);
            loop {
                if !matches!(c.try_wait(), Ok(None)) {
                    return;
                }
                if !backoff.pause() {
                    break;
                }
            }
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.kill_on_drop {
            self.stop();
            return;
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of {} ({}) ---\n{}",
                self.name,
                self.log.display(),
                crate::error::tail(&self.log(), 40)
            );
        }
    }
}

/// The value of field `key` in one log line, in either of the formats
/// `tracing-subscriber` writes: text (`... message key=value other=x`, the
/// value ending at white space, quotes removed) or JSON
/// (`{"fields":{"key":"value"}}`, at any depth). ANSI colour codes are
/// ignored.
pub fn log_field(line: &str, key: &str) -> Option<String> {
    let line = strip_ansi(line);
    let trimmed = line.trim();
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        return json_field(&v, key);
    }
    let prefix = format!("{key}=");
    trimmed
        .split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .map(|v| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `key` anywhere in a JSON log record (its `fields`, or a span's).
fn json_field(v: &serde_json::Value, key: &str) -> Option<String> {
    use serde_json::Value;
    // Bounded by the record's depth (serde_json caps it at 128).
    match v {
        Value::Object(o) => o
            .get(key)
            .and_then(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .or_else(|| o.values().find_map(|x| json_field(x, key))),
        Value::Array(a) => a.iter().find_map(|x| json_field(x, key)),
        _ => None,
    }
}

/// `s` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the sequence's final letter.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_text_and_json_log_lines() {
        let text = "2026-01-01T00:00:00Z  INFO ferrolb_speaker: serving /metrics, /healthz, /readyz addr=127.0.0.1:9120";
        assert_eq!(log_field(text, "addr").as_deref(), Some("127.0.0.1:9120"));
        let quoted = r#"INFO x: peer up peer="router" state=Established"#;
        assert_eq!(log_field(quoted, "peer").as_deref(), Some("router"));
        assert_eq!(log_field(quoted, "missing"), None);
        let json = r#"{"level":"INFO","fields":{"message":"serving","addr":"127.0.0.1:1","n":3}}"#;
        assert_eq!(log_field(json, "addr").as_deref(), Some("127.0.0.1:1"));
        assert_eq!(log_field(json, "n").as_deref(), Some("3"));
        let ansi =
            "\u{1b}[2m2026\u{1b}[0m serving \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:2";
        assert_eq!(log_field(ansi, "addr").as_deref(), Some("127.0.0.1:2"));
    }

    #[test]
    fn a_log_wait_times_out_with_the_log_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 5"]);
        let d = Daemon::spawn("sh", cmd, &dir.path().join("sh.log"))
            .expect("sh starts")
            .kill_on_drop();
        assert_eq!(
            d.wait_log(Duration::from_secs(5), "started")
                .expect("logged"),
            "started"
        );
        let e = d
            .wait_log(Duration::from_millis(50), "never")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log tail of sh:\nstarted"), "{e}");
    }
}
