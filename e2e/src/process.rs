//! Commands and long-running processes started by the harness.
//!
//! Every process is started by us, so every process is stopped by its PID: a
//! SIGTERM, a bounded wait, then SIGKILL. Signals are sent with the `kill`
//! command so the crate needs no `unsafe`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
/// one log file. Dropping it stops it (TERM, bounded wait, KILL).
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
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
        })
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
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if !matches!(c.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(EXIT_POLL);
            }
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
