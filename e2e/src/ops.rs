//! Probing a daemon's ops port and its process from outside: one plain HTTP GET, a metric's
//! value, `VmRSS` and open descriptors from `/proc`, and a bounded connection flood. Loopback
//! only; every connect and read has a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One `GET path`; the whole response if its status is 200, `None` when the connection is
/// refused, closed unanswered, times out or answers otherwise.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The value of the unlabelled sample `name` in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `VmRSS` of `pid`, in KiB; panics if the process has no status.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The number of descriptors `pid` has open (0 if it cannot be read).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Opens up to `count` connections to `addr` and holds them, stopping at `deadline`: every
/// second one sends a request head that never ends, the others stay silent. Each connect has
/// a one-second timeout; refused ones are skipped. Dropping the result closes them all.
pub fn flood(addr: SocketAddr, count: usize, deadline: Instant) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            if i % 2 == 1 {
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            }
            held.push(s);
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_an_unlabelled_sample_by_its_exact_name() {
        let text =
            "# HELP x\nferrolb_ops_http_connections_total 9\nferrolb_ops_http_connections 3\n";
        assert_eq!(metric(text, "ferrolb_ops_http_connections"), Some(3));
        assert_eq!(metric(text, "ferrolb_missing"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_and_open_descriptors() {
        let pid = std::process::id();
        assert!(rss_kb(pid) > 0);
        assert!(open_fds(pid) > 0);
    }
}
