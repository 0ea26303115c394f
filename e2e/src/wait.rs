//! Bounded polling: the one place the harness waits for state that offers no
//! event to await (router CLIs, kernel tables, another process's log or
//! `/metrics`).
//!
//! Every wait has a deadline and a description; the `try_` forms return
//! [`Error::Timeout`] naming both (and the last observation), the others
//! panic with that message, which is what a test wants. Probes back off from
//! [`POLL_MIN`] to [`POLL_MAX`] so a quick condition is seen quickly and a
//! slow one does not spin.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::Error;

/// First polling interval; it doubles up to [`POLL_MAX`].
pub const POLL_MIN: Duration = Duration::from_millis(20);
/// Longest polling interval.
pub const POLL_MAX: Duration = Duration::from_millis(200);

/// A deadline and a doubling sleep between probes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    start: Instant,
    deadline: Instant,
    step: Duration,
    max: Duration,
}

impl Backoff {
    /// A deadline `timeout` from now, probing every [`POLL_MIN`] at first.
    pub(crate) fn new(timeout: Duration) -> Backoff {
        Backoff::with_steps(timeout, POLL_MIN, POLL_MAX)
    }

    /// A deadline `timeout` from now, probing every `min` at first, then
    /// doubling up to `max`.
    pub(crate) fn with_steps(timeout: Duration, min: Duration, max: Duration) -> Backoff {
        let start = Instant::now();
        Backoff {
            start,
            deadline: start + timeout,
            step: min,
            max,
        }
    }

    /// Time since the wait began.
    pub(crate) fn waited(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sleeps until the next probe; false (without sleeping) once the
    /// deadline has passed.
    pub(crate) fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        std::thread::sleep(self.step.min(self.deadline - now));
        self.step = (self.step * 2).min(self.max);
        true
    }
}

/// Polls `probe` until it returns `Some`, for at most `timeout`; on timeout
/// an [`Error::Timeout`] naming `what`, the time waited and the probes made.
pub fn try_wait_for<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, Error> {
    let mut backoff = Backoff::new(timeout);
    let mut probes = 0u32;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        probes += 1;
        if !backoff.pause() {
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited: backoff.waited(),
                probes,
                last: None,
            });
        }
    }
}

/// [`try_wait_for`] that panics with the error's message on timeout.
///
/// For external state with no event to await (router CLIs, kernel tables);
/// use [`wait_until`] to also see the last observation.
pub fn wait_for<T>(timeout: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    try_wait_for(timeout, what, probe).unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `observe` until `done(&observation)` holds, for at most `timeout`;
/// returns the observation that satisfied it, or an [`Error::Timeout`] that
/// carries the last observation (`Debug`).
pub fn try_wait_until<O: Debug>(
    timeout: Duration,
    what: &str,
    mut observe: impl FnMut() -> O,
    mut done: impl FnMut(&O) -> bool,
) -> Result<O, Error> {
    let mut last = None;
    let found = try_wait_for(timeout, what, || {
        let o = observe();
        if done(&o) {
            Some(o)
        } else {
            last = Some(o);
            None
        }
    });
    found.map_err(|e| match last {
        Some(o) => e.with_last(format!("{o:#?}")),
        None => e,
    })
}

/// [`try_wait_until`] that panics on timeout, so a failing test shows what
/// was last observed (the router's table, say) instead of just "timed out".
pub fn wait_until<O: Debug>(
    timeout: Duration,
    what: &str,
    observe: impl FnMut() -> O,
    done: impl FnMut(&O) -> bool,
) -> O {
    try_wait_until(timeout, what, observe, done).unwrap_or_else(|e| panic!("{e}"))
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
    let mut backoff = Backoff::new(window);
    loop {
        let o = observe();
        assert!(
            check(&o),
            "expected {what} to hold for {window:?}; observed: {o:#?}"
        );
        if !backoff.pause() {
            return;
        }
    }
}

/// Receives from `rx` until `pick` returns `Some` for an item, for at most
/// `timeout` in all: the event-driven counterpart of [`try_wait_for`], for
/// state that does announce its changes (a BGP listener's events). On
/// timeout an [`Error::Timeout`] counting the items seen; a closed channel
/// is one too, saying so.
pub async fn recv_until<T, R>(
    rx: &mut tokio::sync::mpsc::Receiver<T>,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(T) -> Option<R>,
) -> Result<R, Error> {
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    let mut seen = 0u32;
    loop {
        let closed = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => {
                if let Some(r) = pick(item) {
                    return Ok(r);
                }
                seen += 1;
                continue;
            }
            Ok(None) => Some("the channel closed".to_owned()),
            Err(_) => None,
        };
        return Err(Error::Timeout {
            what: what.to_owned(),
            waited: start.elapsed(),
            probes: seen,
            last: closed,
        });
    }
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
    fn a_timeout_is_an_error_naming_what_was_awaited() {
        let e = try_wait_for(Duration::from_millis(30), "the moon", || None::<()>)
            .unwrap_err()
            .to_string();
        assert!(e.contains("waiting for the moon"), "{e}");
    }

    #[test]
    fn try_wait_until_carries_the_last_observation() {
        let e = try_wait_until(Duration::from_millis(30), "never", || 7, |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("last observed: 7"), "{e}");
    }

    #[tokio::test]
    async fn recv_until_picks_the_first_match_and_times_out_naming_what() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        for n in [1, 2, 3] {
            tx.send(n).await.expect("send");
        }
        let got = recv_until(&mut rx, Duration::from_secs(5), "an even number", |n| {
            (n % 2 == 0).then_some(n)
        })
        .await;
        assert_eq!(got.expect("found"), 2);
        let e = recv_until(&mut rx, Duration::from_millis(30), "a zero", |n| {
            (n == 0).then_some(())
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("waiting for a zero"), "{e}");
        drop(tx);
        let e = recv_until(&mut rx, Duration::from_secs(5), "anything", Some)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("the channel closed"), "{e}");
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
}
