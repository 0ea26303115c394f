//! The harness's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while building a lab or talking to a router.
///
/// Each variant carries what is needed to act on it: the command line, the
/// router's log tail, the value that was refused and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be started at all (binary missing, fork failed).
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status as printed by std.
        status: String,
        /// Its standard error (trimmed).
        stderr: String,
    },
    /// A file or directory operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "create dir", ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A value given to the harness was refused.
    #[error("bad {field} `{value}`: {reason}")]
    BadValue {
        /// Which input ("address", "interface name", ...).
        field: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A router's CLI printed something the harness could not understand.
    #[error("cannot parse {router} `{query}` output: {reason}; output starts: {excerpt}")]
    Parse {
        /// The router kind.
        router: &'static str,
        /// The CLI query.
        query: String,
        /// What was wrong.
        reason: String,
        /// The first characters of the output.
        excerpt: String,
    },
    /// A daemon exited or never became ready.
    #[error("{router} in {ns} {reason}; log tail:\n{log_tail}")]
    NotReady {
        /// The router kind.
        router: &'static str,
        /// The namespace it runs in.
        ns: String,
        /// What happened ("exited with ...", "did not answer within 10 s").
        reason: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// The router refused part of its generated configuration.
    #[error("{router} in {ns} rejected its configuration: {lines}")]
    Config {
        /// The router kind.
        router: &'static str,
        /// The namespace it runs in.
        ns: String,
        /// The log lines that report the problem.
        lines: String,
    },
    /// The router kind cannot do what was asked (e.g. a passive ExaBGP).
    #[error("{router} does not support {feature} in this harness")]
    Unsupported {
        /// The router kind.
        router: &'static str,
        /// The missing feature.
        feature: String,
    },
    /// A bounded wait ran out before its condition held.
    #[error("timed out after {waited:?} ({probes} probes) waiting for {what}{}", last_observed(.last))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        waited: std::time::Duration,
        /// How many probes found the condition false.
        probes: u32,
        /// The last observation (`Debug`), where the wait kept one.
        last: Option<String>,
    },
    /// A query named a neighbor that is not configured on the router.
    #[error("{router} has no neighbor {neighbor} configured")]
    UnknownNeighbor {
        /// The router kind.
        router: &'static str,
        /// The neighbor address asked for.
        neighbor: std::net::IpAddr,
    },
}

impl Error {
    /// An [`Error::Timeout`] with `last` as its last observation; any other
    /// error unchanged.
    pub fn with_last(self, last: String) -> Error {
        match self {
            Error::Timeout {
                what,
                waited,
                probes,
                ..
            } => Error::Timeout {
                what,
                waited,
                probes,
                last: Some(last),
            },
            other => other,
        }
    }
}

/// The tail of an [`Error::Timeout`] message.
fn last_observed(last: &Option<String>) -> String {
    last.as_ref()
        .map(|l| format!("; last observed: {l}"))
        .unwrap_or_default()
}

/// Keeps the first `max` characters of `s` for an error message.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// The last `n` lines of `s`.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines.get(start..).unwrap_or_default().join("\n")
}
