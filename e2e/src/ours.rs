//! Our own daemons (`ferrolb-speaker`, `ferrolb-controller`, `ferrolb-bgp`)
//! under test: their command lines, started in a [`Netns`] or on loopback as
//! a kill-on-drop [`Daemon`] whose output is captured in a log file, and the
//! plumbing the tests around them share (an [`ApiLab`] with a kubeconfig, a
//! plain HTTP GET for `/metrics` and `/readyz`).
//!
//! ```no_run
//! # fn t() {
//! use std::time::Duration;
//! use ferrolb_e2e::ours::{ApiLab, FlbCommand};
//! let lab = ApiLab::start();
//! let Some(cmd) = FlbCommand::find("ferrolb-speaker") else { return };
//! let speaker = cmd
//!     .speaker_kube(&lab.kubeconfig, "node-a", "metallb-system")
//!     .spawn("speaker", lab.dir.path())
//!     .expect("speaker starts");
//! let metrics = speaker.metrics_addr(Duration::from_secs(30)).expect("bound");
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::apiserver::ApiServer;
use crate::{workspace_bin, Daemon, Error, Netns};

/// How long [`http_get`] waits for a response.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// [`workspace_bin`], or `None` after a loud `SKIPPED` message naming the
/// binary and how to build it; the caller returns early.
pub fn workspace_bin_or_skip(name: &str) -> Option<PathBuf> {
    match workspace_bin(name) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!(
                "\n**********\nSKIPPED: {name} binary not built ({e}); run cargo build -p {name}\n**********\n"
            );
            None
        }
    }
}

/// A command line for one of our binaries. The program runs with
/// `RUST_LOG=info` (unless set) and `NO_COLOR=1`, so its log can be read by
/// [`Daemon::wait_log_field`]; `POD_NAME`/`POD_UID` are removed from the
/// environment unless set here (a test must not inherit a Pod identity).
#[derive(Debug, Clone)]
pub struct FlbCommand {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
}

impl FlbCommand {
    /// Runs `program` (a path).
    pub fn new(program: impl Into<PathBuf>) -> FlbCommand {
        FlbCommand {
            program: program.into(),
            args: Vec::new(),
            envs: vec![("RUST_LOG".into(), "info".into())],
        }
    }

    /// The workspace binary `name` ([`workspace_bin_or_skip`]).
    pub fn find(name: &str) -> Option<FlbCommand> {
        workspace_bin_or_skip(name).map(FlbCommand::new)
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Adds one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> FlbCommand {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> FlbCommand {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (a later one replaces an earlier).
    pub fn env(mut self, key: &str, value: &str) -> FlbCommand {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.into(), value.into()));
        self
    }

    /// `ferrolb-speaker` in standalone mode: reads `conf_dir` every 50 ms,
    /// metrics on a free loopback port ([`Daemon::metrics_addr`]).
    /// The restart marker (`--state-dir`) lives in `<conf_dir>.state`, so a test's
    /// speakers never read one another's or the host's `/run/ferrolb`.
    pub fn speaker_standalone(self, conf_dir: &Path, node: &str) -> FlbCommand {
        self.arg("--config-dir")
            .arg(conf_dir)
            .arg("--state-dir")
            .arg(conf_dir.with_extension("state"))
            .args(["--node-name", node, "--poll-ms", "50"])
            .args(["--metrics-addr", "127.0.0.1:0"])
    }

    /// `ferrolb-speaker` in Kubernetes mode against `kubeconfig`, reading
    /// its configuration from `namespace`; metrics on a free loopback port.
    /// The restart marker (`--state-dir`) lives next to the kubeconfig.
    pub fn speaker_kube(self, kubeconfig: &Path, node: &str, namespace: &str) -> FlbCommand {
        self.arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--state-dir")
            .arg(kubeconfig.with_file_name("speaker-state"))
            .args(["--node-name", node, "--namespace", namespace])
            .args(["--metrics-addr", "127.0.0.1:0"])
    }

    /// `ferrolb-controller` in Kubernetes mode against `kubeconfig` with a
    /// 2 s Lease (so takeover tests are quick); metrics on a free loopback
    /// port.
    pub fn controller_kube(self, kubeconfig: &Path, namespace: &str, identity: &str) -> FlbCommand {
        self.arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", namespace, "--identity", identity])
            .args(["--lease-duration-secs", "2"])
            .args(["--metrics-addr", "127.0.0.1:0"])
    }

    fn command(&self, mut cmd: Command) -> Command {
        cmd.args(&self.args)
            .env("NO_COLOR", "1")
            .env_remove("POD_NAME")
            .env_remove("POD_UID");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts it in the test's own network namespace (loopback), output to
    /// a new log file in `log_dir` ([`fresh_log`]); killed when the
    /// [`Daemon`] drops.
    pub fn spawn(&self, name: &str, log_dir: &Path) -> Result<Daemon, Error> {
        let cmd = self.command(Command::new(&self.program));
        Daemon::spawn(name, cmd, &fresh_log(log_dir, name)).map(Daemon::kill_on_drop)
    }

    /// Starts it inside `ns`, output to a new log file in the namespace's
    /// directory ([`fresh_log`]); killed when the [`Daemon`] drops (and at
    /// the latest when the namespace does).
    pub fn spawn_in(&self, ns: &Netns, name: &str) -> Result<Daemon, Error> {
        let cmd = self.command(ns.command(&self.program));
        Daemon::spawn(name, cmd, &fresh_log(ns.dir(), name)).map(Daemon::kill_on_drop)
    }
}

/// How many restarts under one name get a log file of their own.
const LOG_GENERATIONS: u32 = 1000;

/// `<dir>/<name>.log`, or `<name>.2.log`, `<name>.3.log`, ... if taken: a
/// restarted daemon gets a log of its own, so waiting for a log line never
/// finds its predecessor's (the metrics address of a dead process).
pub fn fresh_log(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(format!("{name}.log"));
    if !first.exists() {
        return first;
    }
    (2..LOG_GENERATIONS)
        .map(|n| dir.join(format!("{name}.{n}.log")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// `GET path` over HTTP/1.1 to `addr`; the whole response (status line,
/// headers, body), read until the server closes.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let io = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: PathBuf::from(format!("http://{addr}{path}")),
            source,
        }
    };
    let mut s = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).map_err(io("connect to"))?;
    s.set_read_timeout(Some(HTTP_TIMEOUT))
        .map_err(io("set timeout on"))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .map_err(io("send to"))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io("read from"))?;
    Ok(out)
}

/// Polls `GET path` until the response contains `needle` (`/metrics` and
/// `/readyz` have no event to await); panics after `timeout` with the last
/// response.
pub fn wait_http(addr: SocketAddr, path: &str, needle: &str, timeout: Duration) {
    crate::wait_until(
        timeout,
        &format!("{needle:?} in {path}"),
        || http_get(addr, path).unwrap_or_else(|e| e.to_string()),
        |body| body.contains(needle),
    );
}

/// The API-server test double with a kubeconfig for it in a scratch
/// directory (also the place for daemon logs).
#[derive(Debug)]
pub struct ApiLab {
    /// The double.
    pub api: ApiServer,
    /// Scratch directory, removed on drop.
    pub dir: tempfile::TempDir,
    /// `<dir>/kubeconfig`, pointing at the double.
    pub kubeconfig: PathBuf,
}

impl ApiLab {
    /// Starts the double and writes the kubeconfig; panics if either fails
    /// (nothing a test could do about it).
    pub fn start() -> ApiLab {
        let api = ApiServer::start().expect("start the API-server double");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        ApiLab {
            api,
            dir,
            kubeconfig,
        }
    }
}
