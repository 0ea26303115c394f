//! Shared by the interop tests: our `ferrolb-bfd` tool in a namespace and its JSON status.

use std::time::Duration;

use ferrolb_e2e::{wait_until, Daemon, Netns};
use serde_json::Value;

/// Our addresses (first namespace of `Netns::pair`), IPv4 and IPv6.
pub const OURS: [&str; 2] = ["192.0.2.1", "fd00:db8::1"];
/// The router's addresses (second namespace of `Netns::pair`).
pub const THEIRS: [&str; 2] = ["192.0.2.2", "fd00:db8::2"];
/// Deadline of every wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// Our tool for address family `af` (0 IPv4, 1 IPv6) with 50 ms × 3 timers, in `ns`.
pub fn start_ours(ns: &Netns, af: usize, extra: &[&str]) -> Daemon {
    let mut args = vec![
        env!("CARGO_BIN_EXE_ferrolb-bfd"),
        "--local",
        OURS[af],
        "--peer",
        THEIRS[af],
        "--rx-ms",
        "50",
        "--tx-ms",
        "50",
        "--mult",
        "3",
    ];
    args.extend(extra);
    ns.spawn(&format!("ferrolb-bfd-{af}"), &args)
        .expect("ferrolb-bfd starts")
}

/// The last status line our tool printed.
pub fn our_status(d: &Daemon) -> Value {
    d.log()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("state").is_some())
        .unwrap_or(Value::Null)
}

/// Polls our status until `done` holds (the tool's output is a file: no event to await).
pub fn wait_ours(d: &Daemon, what: &str, done: impl FnMut(&Value) -> bool) -> Value {
    wait_until(WAIT, what, || our_status(d), done)
}
