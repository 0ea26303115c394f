//! End-to-end test harness: network namespaces and real BGP routers.
//!
//! Tests build a small lab per test — [`Netns`] namespaces joined by veth
//! pairs or a [`Switch`] — start real routers in them ([`RouterKind::start`],
//! or [`Frr`], [`Bird`], [`GoBgp`], [`ExaBgp`] directly) and read back what
//! the routers hold ([`Router::routes`], [`Router::session_state`]). Router
//! CLIs offer no events, so waits poll with a deadline ([`wait_for`],
//! [`wait_until`]); negative checks observe for a bounded window
//! ([`assert_holds`]). Everything is torn down on drop, also on panic.
//!
//! Our own daemons start through [`ours::FlbCommand`] (in a namespace or on
//! loopback, killed on drop, their log awaited with [`Daemon::wait_log`]);
//! the Kubernetes objects tests write come from [`fixture`]. Daemons run
//! on loopback with their log piped back as events use [`logged`]; their
//! ops port and process are probed with [`ops`]. What our encoders write is
//! decoded independently by tshark through [`pcap`].
//!
//! Tests that need root or a daemon call [`require_root_and`] first and
//! return early (loudly) when it says no. See `docs/e2e.md`.

pub mod apiserver;
mod error;
pub mod fixture;
pub mod logged;
mod netns;
pub mod ops;
pub mod ours;
pub mod pcap;
mod process;
pub mod router;
pub mod stream;
mod wait;

use std::path::Path;
use std::time::Duration;

pub use error::Error;
pub use netns::{
    check_lab_address, list_flb_namespaces, Netns, Switch, FRR_RUN_DIR, PAIR_A, PAIR_B,
};
pub use process::{log_field, pid_exists, run, run_unchecked, signal, Daemon, STOP_GRACE};
pub use router::{
    Af, Announcement, Bird, ExaBgp, Frr, GoBgp, Neighbor, ReceivedRoute, Router, RouterConfig,
    RouterKind, SessionState,
};
pub use wait::{
    assert_holds, recv_until, try_wait_for, try_wait_until, wait_for, wait_until, POLL_MAX,
    POLL_MIN,
};

/// How long a test lets a BGP session take to come up: generous, since
/// GoBGP and BIRD take about a second, FRR's first UPDATE waits for its 1 s
/// coalesce timer, and the machine is shared.
pub const UP: Duration = Duration::from_secs(30);

/// How long a test lets routes take to converge after a change.
pub const CONVERGE: Duration = Duration::from_secs(20);

/// A test's literal address; panics on a typo.
pub fn ip(s: &str) -> std::net::IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("test address {s:?}: {e}"))
}

/// A test's literal prefix; panics on a typo.
pub fn net(s: &str) -> ipnet::IpNet {
    s.parse()
        .unwrap_or_else(|e| panic!("test prefix {s:?}: {e}"))
}

/// Defines one `#[test]` per line, each calling a shared test body with its
/// own arguments (typically one per router kind), so a scenario runs against
/// every router under a name of its own:
///
/// ```ignore
/// ferrolb_e2e::tests_calling!(md5_round_trip:
///     frr_md5_round_trip(RouterKind::Frr);
///     bird_md5_round_trip(RouterKind::Bird);
/// );
/// ```
#[macro_export]
macro_rules! tests_calling {
    ($body:path: $($name:ident($($arg:expr),* $(,)?);)+) => {
        $(
            #[test]
            fn $name() {
                $body($($arg),*);
            }
        )+
    };
}

/// True if this process runs as root and every program in `programs` exists
/// (a name on `PATH`, or an absolute path). Otherwise prints
/// `SKIPPED: <test>: needs root and <programs> (missing: ...)` to stderr and
/// returns false; the caller returns early.
///
/// ```no_run
/// # fn t() {
/// if !ferrolb_e2e::require_root_and(&["bird", "birdc"]) {
///     return;
/// }
/// # }
/// ```
pub fn require_root_and(programs: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !is_root() {
        missing.push("root".to_owned());
    }
    for p in programs.iter().chain(&["ip"]) {
        if !program_exists(p) {
            missing.push((*p).to_owned());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    eprintln!(
        "\n**********\nSKIPPED: {test}: needs root and {} (missing: {})\n**********\n",
        programs.join(", "),
        missing.join(", ")
    );
    false
}

/// [`require_root_and`] for the programs of the given router kinds.
pub fn require_root_and_routers(kinds: &[RouterKind]) -> bool {
    let programs: Vec<&str> = kinds
        .iter()
        .flat_map(|k| k.binaries().iter().copied())
        .collect();
    require_root_and(&programs)
}

/// The path of a binary built from this workspace (e.g. `ferrolb-speaker`),
/// next to the running test executable (`target/<profile>/`), or in
/// `$FLB_BIN_DIR` if set. `cargo nextest run --workspace` builds every
/// workspace binary before the tests; with `cargo test -p ferrolb-e2e` build
/// it first (`cargo build -p ferrolb-speaker`).
pub fn workspace_bin(name: &str) -> Result<std::path::PathBuf, Error> {
    let not_found = |reason: String| Error::BadValue {
        field: "workspace binary",
        value: name.to_owned(),
        reason,
    };
    let dir = match std::env::var_os("FLB_BIN_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| not_found(format!("no current executable: {e}")))?;
            // target/<profile>/deps/<test>-<hash> -> target/<profile>
            let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
            if dir.ends_with("deps") {
                dir.pop();
            }
            dir
        }
    };
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(not_found(format!(
            "{} does not exist; build it (cargo build -p <its package>) or set FLB_BIN_DIR",
            path.display()
        )))
    }
}

/// True if the effective UID is 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// True if `program` is an existing absolute path or is found on `PATH`
/// (plus `/usr/sbin` and `/sbin`, which a non-login root shell may lack).
pub fn program_exists(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).is_file();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .any(|dir| Path::new(dir).join(program).is_file());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_that_was_not_built_is_an_error_naming_it() {
        let e = workspace_bin("flb-not-built").unwrap_err().to_string();
        assert!(e.contains("flb-not-built"), "{e}");
    }

    #[test]
    fn missing_programs_are_reported_missing() {
        assert!(!program_exists("flb-no-such-program-xyz"));
        assert!(!program_exists("/nonexistent/flb"));
        assert!(program_exists("sh"));
    }
}
