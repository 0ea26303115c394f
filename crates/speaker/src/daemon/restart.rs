//! Telling a restart from a first start, for Graceful Restart (RFC 4724 §4.1: the Restart
//! State bit, and the Forwarding State bits that make a router keep our routes until our
//! End-of-RIB instead of dropping them when the new session comes up).
//!
//! A speaker stopped by SIGTERM writes a marker file, `<state-dir>/<node>.restart`, holding the
//! time it stopped (Unix seconds). The next start on that node reads and removes it: a marker
//! younger than the Restart Time we advertise means the router still holds our routes as stale,
//! so this start is a restart. The state directory is a hostPath under `/run` in the manifests:
//! it outlives the Pod (a rolling update replaces the Pod, so an emptyDir would be gone) but not
//! a reboot (`/run` is a tmpfs), and after a reboot the routes are gone from the router anyway
//! since the Restart Time has passed or the session was reset. `--graceful-restarted` forces a
//! restart either way.
//!
//! ```text
//!  SIGTERM ─▶ write_marker(dir, node, now) ─▶ sessions close keeping GR
//!  start   ─▶ take_marker(dir, node, now, restart_time) ─▶ restarted: bool ─▶ BgpBackendOptions
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why the marker could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RestartMarkerError {
    /// Creating the state directory or writing the file failed.
    #[error("restart marker {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The default state directory (a hostPath in deploy/ferrolb.yaml).
pub const DEFAULT_STATE_DIR: &str = "/run/ferrolb";

/// The marker file of `node` in `dir`. One per node name, so speakers of several nodes
/// sharing a host (tests in network namespaces) keep apart.
pub fn marker_path(dir: &Path, node: &str) -> PathBuf {
    // A node name is a DNS subdomain (no '/'); anything else is replaced to stay in `dir`.
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.restart"))
}

/// Whether a stop at `stopped_at` makes a start at `now` a restart: the router keeps stale
/// routes for the Restart Time (RFC 4724 §4.2), so an older stop is a first start again. A
/// stop in the future (the clock stepped back) counts as a restart.
pub fn is_restart(stopped_at: u64, now: u64, restart_time: Duration) -> bool {
    now.saturating_sub(stopped_at) <= restart_time.as_secs()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes the marker: this speaker stops now and expects to be started again.
pub fn write_marker(dir: &Path, node: &str, now: SystemTime) -> Result<(), RestartMarkerError> {
    std::fs::create_dir_all(dir).map_err(|source| RestartMarkerError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = marker_path(dir, node);
    std::fs::write(&path, unix_secs(now).to_string())
        .map_err(|source| RestartMarkerError::Io { path, source })
}

/// Reads and removes the marker; true when this start is a restart (see [`is_restart`]).
/// A missing or unreadable marker is a first start.
pub fn take_marker(dir: &Path, node: &str, now: SystemTime, restart_time: Duration) -> bool {
    let path = marker_path(dir, node);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    if let Err(error) = std::fs::remove_file(&path) {
        tracing::warn!(path = %path.display(), %error, "restart marker not removed");
    }
    match text.trim().parse::<u64>() {
        Ok(stopped_at) => is_restart(stopped_at, unix_secs(now), restart_time),
        Err(_) => {
            tracing::warn!(path = %path.display(), "restart marker unreadable: a first start");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RT: Duration = Duration::from_secs(120);

    #[test]
    fn a_stop_within_the_restart_time_is_a_restart() {
        assert!(is_restart(1000, 1000, RT));
        assert!(is_restart(1000, 1120, RT));
        assert!(!is_restart(1000, 1121, RT));
        assert!(is_restart(2000, 1000, RT), "clock stepped back");
    }

    #[test]
    fn the_marker_is_taken_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        assert!(!take_marker(dir.path(), "node-a", now, RT), "no marker yet");
        write_marker(dir.path(), "node-a", now).expect("write");
        assert!(
            !take_marker(dir.path(), "node-b", now, RT),
            "another node's"
        );
        assert!(take_marker(dir.path(), "node-a", now, RT));
        assert!(!take_marker(dir.path(), "node-a", now, RT), "removed");
    }

    #[test]
    fn an_old_or_garbled_marker_is_a_first_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        write_marker(dir.path(), "n", now - Duration::from_secs(600)).expect("write");
        assert!(!take_marker(dir.path(), "n", now, RT));
        std::fs::write(marker_path(dir.path(), "n"), "garbage").expect("write");
        assert!(!take_marker(dir.path(), "n", now, RT));
    }

    #[test]
    fn the_marker_stays_inside_the_directory() {
        let p = marker_path(Path::new("/run/ferrolb"), "../etc/x");
        assert_eq!(p, Path::new("/run/ferrolb/.._etc_x.restart"));
    }
}
