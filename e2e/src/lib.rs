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
//! Tests that need root or a daemon call [`require_root_and`] first and
//! return early (loudly) when it says no. See `docs/e2e.md`.

pub mod apiserver;
mod error;
mod netns;
mod process;
pub mod router;

use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

pub use error::Error;
pub use netns::{
    check_lab_address, list_flb_namespaces, Netns, Switch, FRR_RUN_DIR, PAIR_A, PAIR_B,
};
pub use process::{pid_exists, run, run_unchecked, signal, Daemon, STOP_GRACE};
pub use router::{
    Af, Announcement, Bird, ExaBgp, Frr, GoBgp, Neighbor, ReceivedRoute, Router, RouterConfig,
    RouterKind, SessionState,
};

/// First polling interval of [`wait_for`] / [`wait_until`]; it doubles up to
/// [`POLL_MAX`].
pub const POLL_MIN: Duration = Duration::from_millis(20);
/// Longest polling interval.
pub const POLL_MAX: Duration = Duration::from_millis(200);

/// Polls `probe` until it returns `Some`, for at most `timeout`.
///
/// For external state with no event to await (router CLIs, kernel tables).
/// Panics on timeout with `what`, the time waited and the number of probes;
/// use [`wait_until`] to also see the last observation.
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut step = POLL_MIN;
    let mut probes = 0u32;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        probes += 1;
        let now = Instant::now();
        if now >= deadline {
            panic!(
                "timed out after {:?} ({probes} probes) waiting for {what}",
                now - start
            );
        }
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(POLL_MAX);
    }
}

/// Polls `observe` until `done(&observation)` holds, for at most `timeout`;
/// returns the observation that satisfied it.
///
/// Panics on timeout with `what` and the last observation (`Debug`), so a
/// failing test shows what the router held instead of just "timed out".
pub fn wait_until<O: Debug>(
    timeout: Duration,
    what: &str,
    mut observe: impl FnMut() -> O,
    mut done: impl FnMut(&O) -> bool,
) -> O {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut step = POLL_MIN;
    let mut probes = 0u32;
    loop {
        let o = observe();
        probes += 1;
        if done(&o) {
            return o;
        }
        let now = Instant::now();
        if now >= deadline {
            panic!(
                "timed out after {:?} ({probes} probes) waiting for {what}; last observed: {o:#?}",
                now - start
            );
        }
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(POLL_MAX);
    }
}

/// Observes for `window` that `check` keeps holding (a negative assertion,
/// e.g. "the session never comes up with a wrong password"); panics with
/// `what` and the offending observation the first time it does not.
pub fn assert_holds<O: Debug>(
    window: Duration,
    what: &str,
    mut observe: impl FnMut() -> O,
    mut check: impl FnMut(&O) -> bool,
) {
    let deadline = Instant::now() + window;
    let mut step = POLL_MIN;
    loop {
        let o = observe();
        assert!(
            check(&o),
            "expected {what} to hold for {window:?}; observed: {o:#?}"
        );
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(POLL_MAX);
    }
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
    fn wait_for_returns_the_first_some() {
        let mut n = 0;
        let v = wait_for(Duration::from_secs(5), "counter reaches 3", || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "last observed: 7")]
    fn wait_until_panics_with_the_last_observation() {
        wait_until(Duration::from_millis(50), "never", || 7, |_| false);
    }

    #[test]
    #[should_panic(expected = "observed: 2")]
    fn assert_holds_panics_when_the_check_fails() {
        let mut n = 0;
        assert_holds(
            Duration::from_secs(5),
            "n stays below 2",
            || {
                n += 1;
                n
            },
            |n| *n < 2,
        );
    }

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
