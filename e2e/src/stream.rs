//! A numbered UDP stream through the lab, to count what an operation loses.
//!
//! ```text
//!   ns client: Sender ── datagram n (u32, big endian) every `interval`, `count` of them ──▶ VIP
//!   ns node-a: Receiver bound to VIP:port ─┐
//!   ns node-b: Receiver bound to VIP:port ─┴─▶ union of sequence numbers ─▶ StreamReport
//! ```
//!
//! Each end is a thread that joined its namespace with `setns(2)` (a thread's network namespace
//! is its own), so no helper program is needed. Everything is bounded: the sender sends `count`
//! datagrams, a receiver stops when told or after its deadline.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Error, Netns};

/// Runs `f` on a new thread inside `ns`'s network namespace. The thread's result is `Some`
/// whenever this returns `Ok` (it is `None` only if joining the namespace failed, which is
/// the `Err` here).
pub fn spawn_in<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<Option<T>>, Error> {
    let path = std::path::Path::new("/var/run/netns").join(ns.name());
    let file = std::fs::File::open(&path).map_err(|source| Error::Io {
        op: "open network namespace",
        path: path.clone(),
        source,
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        // SAFETY: setns on an open namespace file; it changes only this thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            let _ = tx.send(Err(std::io::Error::last_os_error()));
            // Nothing runs outside the namespace.
            return None;
        }
        let _ = tx.send(Ok(()));
        Some(f())
    });
    let source = match rx.recv() {
        Ok(Ok(())) => return Ok(handle),
        Ok(Err(e)) => e,
        Err(_) => std::io::Error::other("stream thread ended early"),
    };
    let _ = handle.join();
    Err(Error::Io {
        op: "setns",
        path,
        source,
    })
}

/// Receives the stream in one namespace.
pub struct Receiver {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<u32>>>,
    thread: Option<JoinHandle<Option<()>>>,
}

impl Receiver {
    /// Binds `addr` (the VIP, on `lo` in `ns`) and records every sequence number until
    /// [`Receiver::finish`] or `deadline` from now.
    pub fn start(ns: &Netns, addr: SocketAddr, deadline: Duration) -> Result<Receiver, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let seen = Arc::clone(&seen);
            spawn_in(ns, move || {
                let socket = match UdpSocket::bind(addr) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = socket.set_read_timeout(Some(Duration::from_millis(20)));
                let _ = ready_tx.send(Ok(()));
                let end = Instant::now() + deadline;
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Acquire) && Instant::now() < end {
                    if let Ok(n) = socket.recv(&mut buf) {
                        if let Some(seq) = buf.get(..4).filter(|_| n >= 4) {
                            let seq = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
                            seen.lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .insert(seq);
                        }
                    }
                }
            })?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Receiver {
                stop,
                seen,
                thread: Some(thread),
            }),
            Ok(Err(source)) => Err(Error::Io {
                op: "bind the stream receiver",
                path: addr.to_string().into(),
                source,
            }),
            Err(_) => Err(Error::BadValue {
                field: "stream receiver",
                value: addr.to_string(),
                reason: "thread ended before binding".to_owned(),
            }),
        }
    }

    /// How many distinct datagrams arrived so far.
    pub fn count(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Stops and returns the sequence numbers received.
    pub fn finish(mut self) -> BTreeSet<u32> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Sends `count` numbered datagrams to `to` from `ns`, one every `interval`; the handle
/// returns how many were sent (`None`: the socket could not be opened) (a send error, e.g. no route yet, counts as sent: it is lost).
pub fn send(
    ns: &Netns,
    to: SocketAddr,
    count: u32,
    interval: Duration,
) -> Result<JoinHandle<Option<u32>>, Error> {
    spawn_in(ns, move || {
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(bind).ok()?;
        let start = Instant::now();
        for seq in 0..count {
            // Paced against the start, so a slow send does not stretch the stream.
            let due = start + interval * seq;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let _ = socket.send_to(&seq.to_be_bytes(), to);
        }
        Some(count)
    })
    .map(|h| {
        // Flatten: `None` from either level means nothing was sent.
        std::thread::spawn(move || h.join().ok().flatten().flatten())
    })
}

/// A client namespace behind `rtr`: a veth `eth0` 10.99.0.2/24 ↔ `rtr`'s `eth1` 10.99.0.1/24,
/// the client's default route through `rtr`, and forwarding on in `rtr`. The client's traffic
/// to a VIP then follows whatever `rtr`'s FIB holds for it.
pub fn client_behind(rtr: &Netns) -> Result<Netns, Error> {
    let client = Netns::new("client")?;
    client.veth("eth0", &["10.99.0.2/24"], rtr, "eth1", &["10.99.0.1/24"])?;
    client.ip(&["route", "add", "default", "via", "10.99.0.1"])?;
    rtr.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    Ok(client)
}

/// Ends a stream: joins `sender`, gives the last datagrams (in flight for microseconds; a
/// receiver polls every 20 ms) up to 2 s to arrive, stops `receivers`, and returns what was
/// lost over all of them and how many datagrams each one received. Panics if the sender could
/// not run in its namespace.
pub fn collect(
    sender: JoinHandle<Option<u32>>,
    receivers: Vec<Receiver>,
) -> (StreamReport, Vec<usize>) {
    let sent = sender
        .join()
        .ok()
        .flatten()
        .expect("the sender ran in its namespace");
    let _ = crate::try_wait_until(
        Duration::from_secs(2),
        "the last datagrams",
        || receivers.iter().map(Receiver::count).sum::<usize>(),
        |n| *n >= sent as usize,
    );
    let mut seen = BTreeSet::new();
    let mut per_receiver = Vec::new();
    for r in receivers {
        let got = r.finish();
        per_receiver.push(got.len());
        seen.extend(got);
    }
    (StreamReport::new(sent, &seen), per_receiver)
}

/// What a stream lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Datagrams sent.
    pub sent: u32,
    /// Distinct datagrams received (by any receiver).
    pub received: usize,
    /// The runs of missing sequence numbers, as (first, last) inclusive.
    pub gaps: Vec<(u32, u32)>,
}

impl StreamReport {
    /// The report of `sent` datagrams of which `seen` arrived.
    pub fn new(sent: u32, seen: &BTreeSet<u32>) -> StreamReport {
        let mut gaps = Vec::new();
        let mut run: Option<(u32, u32)> = None;
        for seq in 0..sent {
            if seen.contains(&seq) {
                gaps.extend(run.take());
            } else {
                run = Some(run.map_or((seq, seq), |(a, _)| (a, seq)));
            }
        }
        gaps.extend(run);
        StreamReport {
            sent,
            received: seen.iter().filter(|s| **s < sent).count(),
            gaps,
        }
    }

    /// Datagrams lost.
    pub fn lost(&self) -> u32 {
        self.gaps.iter().map(|(a, b)| b - a + 1).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_runs_of_missing_numbers() {
        let seen: BTreeSet<u32> = [0, 1, 4, 5, 9].into_iter().collect();
        let r = StreamReport::new(10, &seen);
        assert_eq!(r.gaps, vec![(2, 3), (6, 8)]);
        assert_eq!(r.lost(), 5);
        assert_eq!(r.received, 5);
        assert_eq!(
            StreamReport::new(3, &[0, 1, 2].into_iter().collect()).lost(),
            0
        );
    }
}
