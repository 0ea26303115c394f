//! Retry pacing: [`Backoff`] (exponential, with a ceiling and jitter) and [`sleep_until`] (a
//! timer that may be disarmed), the two helpers every retry loop of both daemons needs.
//!
//! Jitter matters because the speaker runs on every node: after an API-server outage, hundreds
//! of speakers retrying on the same schedule would arrive in step and knock it over again.

use std::time::Duration;

use tokio::time::Instant;

/// An exponential backoff policy: the delay before retry number `attempt` (0-based) is
/// `initial * 2^attempt`, at most `max` (the *base* delay), plus a random jitter of up to
/// `jitter_percent` % of that base. The ceiling bounds the base, so a delay never exceeds
/// `max * (1 + jitter_percent / 100)`.
///
/// A policy is plain data; callers keep their own attempt counter (reset on success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The ceiling of the base delay.
    pub max: Duration,
    /// Jitter on top of the base delay, in percent of it (0 = none).
    pub jitter_percent: u8,
}

/// The jitter of [`Backoff::new`]: up to a quarter on top.
pub const DEFAULT_JITTER_PERCENT: u8 = 25;

impl Backoff {
    /// Doubling from `initial` up to `max`, with [`DEFAULT_JITTER_PERCENT`] jitter.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            jitter_percent: DEFAULT_JITTER_PERCENT,
        }
    }

    /// The same policy with another jitter (0 disables it).
    pub const fn with_jitter(self, jitter_percent: u8) -> Self {
        Self {
            jitter_percent,
            ..self
        }
    }

    /// The delay before retry `attempt` without jitter: `initial * 2^attempt`, at most `max`.
    /// Saturates, so any `attempt` is fine.
    pub fn base(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max)
    }

    /// The delay before retry `attempt` with the jitter drawn from `random` (any `u64`; the
    /// jitter is `random` modulo the jitter span). Pure, for tests.
    pub fn delay_with(&self, attempt: u32, random: u64) -> Duration {
        let base = self.base(attempt);
        let span_ms = u64::try_from(base.as_millis() * u128::from(self.jitter_percent) / 100)
            .unwrap_or(u64::MAX);
        if span_ms == 0 {
            return base;
        }
        base.saturating_add(Duration::from_millis(random % span_ms))
    }

    /// The delay before retry `attempt`, with fresh random jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_u64())
    }
}

/// A random `u64` from the standard library's per-process random hash keys (fresh keys per
/// call), enough to spread retries; not for anything secret.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Sleeps until `at`, or forever when it is `None` (a disarmed timer), for `tokio::select!`
/// branches over an optional deadline.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));

    #[test]
    fn base_doubles_from_initial_up_to_the_ceiling_and_saturates() {
        assert_eq!(B.base(0), Duration::from_millis(500));
        assert_eq!(B.base(1), Duration::from_secs(1));
        assert_eq!(B.base(5), Duration::from_secs(16));
        assert_eq!(B.base(6), Duration::from_secs(30));
        assert_eq!(B.base(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_adds_at_most_its_share_of_the_base() {
        for random in [0, 1, 124, 125, 126, u64::MAX] {
            let d = B.delay_with(0, random);
            assert!(
                d >= Duration::from_millis(500) && d < Duration::from_millis(625),
                "{d:?}"
            );
        }
        assert_eq!(B.delay_with(0, 124), Duration::from_millis(624));
        assert_eq!(B.delay_with(0, 125), Duration::from_millis(500));
        // At the ceiling the jitter still spreads the retries.
        let top = B.delay_with(100, 7_000);
        assert_eq!(top, Duration::from_millis(37_000));
        for _ in 0..100 {
            let d = B.delay(100);
            assert!(
                d >= Duration::from_secs(30) && d < Duration::from_millis(37_500),
                "{d:?}"
            );
        }
    }

    #[test]
    fn no_jitter_is_the_base() {
        let b = B.with_jitter(0);
        assert_eq!(b.delay(3), b.base(3));
        assert_eq!(b.delay_with(3, u64::MAX), Duration::from_secs(4));
        let tiny = Backoff::new(Duration::from_millis(1), Duration::from_millis(1));
        assert_eq!(
            tiny.delay_with(0, 9),
            Duration::from_millis(1),
            "span rounds to 0"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_until_wakes_at_the_deadline_and_never_without_one() {
        let start = Instant::now();
        sleep_until(Some(start + Duration::from_secs(3))).await;
        assert!(Instant::now() >= start + Duration::from_secs(3));
        let disarmed = tokio::time::timeout(Duration::from_secs(3600), sleep_until(None)).await;
        assert!(disarmed.is_err(), "a disarmed timer never fires");
    }
}
