//! Leader election over a coordination.k8s.io/v1 Lease: the pure decision.
//!
//! ```text
//!            no Lease ──Create──▶ Leader ◀──Renew (every retry period)──┐
//!                                   │ └─────────────────────────────────┘
//!   held by another, unchanged for  │ renew not confirmed within the renew
//!   its leaseDuration ──Acquire──▶  │ deadline, or 409 on write
//!                                   ▼
//!                                StandBy ── re-read every retry period
//! ```
//!
//! Expiry is judged the way client-go's leaderelection does it: not by comparing the holder's
//! `renewTime` with our wall clock (clocks of two nodes may disagree), but by how long *we* have
//! seen the same record unchanged on our monotonic clock. A holder that keeps renewing changes
//! `renewTime`, which restarts that observation.
//!
//! *Guarantees*: [`decide`] is a total function of its inputs (no clock, no I/O). Two
//! candidates that both decide to acquire race on the Lease's `resourceVersion`: the API server
//! accepts one write and answers 409 to the other (the driver, [`super::lease_driver`]).
//!
//! *Assumptions*: a leader steps down when its renewal has not succeeded for the renew deadline
//! (shorter than the lease duration), so it stops writing before any other candidate can judge
//! the Lease expired; this needs the two monotonic clocks to run at about the same rate, not to
//! agree.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// The fields of a Lease that leader election reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRecord {
    /// `spec.holderIdentity`; `None` or empty: released.
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds`.
    pub lease_duration_secs: Option<i32>,
    /// `spec.acquireTime`.
    pub acquire_time: Option<Timestamp>,
    /// `spec.renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
}

/// What to do after reading the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No Lease exists: create it with this record (we lead once the create succeeds).
    Create(LeaseRecord),
    /// Free or expired: replace it with this record (we lead once the replace succeeds).
    Acquire(LeaseRecord),
    /// We hold it: replace it with this record to renew.
    Renew(LeaseRecord),
    /// Another candidate holds it; look again within `recheck_in`.
    StandBy {
        /// The current holder.
        holder: String,
        /// When the Lease would expire if its holder stopped renewing now.
        recheck_in: Duration,
    },
}

/// Seconds of `d`, at least 1, as the Lease stores it.
pub fn duration_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX).max(1)
}

/// Decides the next step for `identity`.
///
/// - `current`: the Lease read from the API server (`None`: it does not exist).
/// - `unchanged_for`: how long we have seen `current` unchanged (monotonic clock; zero when it
///   differs from the previous read).
/// - `now`: wall-clock time to write into `acquireTime` / `renewTime`.
/// - `lease_duration`: ours; a held Lease is judged by the duration written in it.
pub fn decide(
    current: Option<&LeaseRecord>,
    unchanged_for: Duration,
    now: Timestamp,
    identity: &str,
    lease_duration: Duration,
) -> Step {
    let ours = |acquire_time, transitions| LeaseRecord {
        holder: Some(identity.to_string()),
        lease_duration_secs: Some(duration_secs(lease_duration)),
        acquire_time: Some(acquire_time),
        renew_time: Some(now),
        transitions,
    };
    let Some(record) = current else {
        return Step::Create(ours(now, 0));
    };
    match record.holder.as_deref() {
        Some(holder) if holder == identity => {
            Step::Renew(ours(record.acquire_time.unwrap_or(now), record.transitions))
        }
        // Released (holder cleared on graceful shutdown): take it at once.
        None | Some("") => Step::Acquire(ours(now, record.transitions.saturating_add(1))),
        Some(holder) => {
            let theirs = record
                .lease_duration_secs
                .and_then(|s| u64::try_from(s).ok())
                .map_or(lease_duration, Duration::from_secs);
            if unchanged_for >= theirs {
                Step::Acquire(ours(now, record.transitions.saturating_add(1)))
            } else {
                Step::StandBy {
                    holder: holder.to_string(),
                    recheck_in: theirs.saturating_sub(unchanged_for),
                }
            }
        }
    }
}

/// The record a leader writes when it steps down on shutdown: holder cleared, so a standby
/// takes over at its next read instead of waiting out the lease duration (client-go's
/// `ReleaseOnCancel`).
pub fn released(record: &LeaseRecord, now: Timestamp) -> LeaseRecord {
    LeaseRecord {
        holder: None,
        lease_duration_secs: Some(1),
        acquire_time: record.acquire_time,
        renew_time: Some(now),
        transitions: record.transitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me";
    const D: Duration = Duration::from_secs(15);

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("timestamp")
    }

    fn held_by(holder: &str) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.into()),
            lease_duration_secs: Some(15),
            acquire_time: Some(t(0)),
            renew_time: Some(t(10)),
            transitions: 3,
        }
    }

    #[test]
    fn no_lease_is_created_with_us_as_holder() {
        let step = decide(None, Duration::ZERO, t(20), ME, D);
        assert_eq!(
            step,
            Step::Create(LeaseRecord {
                holder: Some(ME.into()),
                lease_duration_secs: Some(15),
                acquire_time: Some(t(20)),
                renew_time: Some(t(20)),
                transitions: 0,
            })
        );
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let Step::Renew(r) = decide(Some(&held_by(ME)), Duration::ZERO, t(20), ME, D) else {
            panic!("expected Renew");
        };
        assert_eq!(r.acquire_time, Some(t(0)));
        assert_eq!(r.renew_time, Some(t(20)));
        assert_eq!(r.transitions, 3);
    }

    #[test]
    fn a_fresh_lease_of_another_holder_means_stand_by_until_it_could_expire() {
        let step = decide(
            Some(&held_by("other")),
            Duration::from_secs(5),
            t(20),
            ME,
            D,
        );
        assert_eq!(
            step,
            Step::StandBy {
                holder: "other".into(),
                recheck_in: Duration::from_secs(10),
            }
        );
    }

    #[test]
    fn a_lease_unchanged_for_its_duration_is_acquired_with_one_more_transition() {
        let Step::Acquire(r) = decide(Some(&held_by("other")), D, t(99), ME, D) else {
            panic!("expected Acquire");
        };
        assert_eq!(r.holder.as_deref(), Some(ME));
        assert_eq!(r.acquire_time, Some(t(99)));
        assert_eq!(r.transitions, 4);
    }

    #[test]
    fn expiry_uses_the_duration_written_in_the_lease_not_ours() {
        let mut rec = held_by("other");
        rec.lease_duration_secs = Some(60);
        let step = decide(Some(&rec), Duration::from_secs(20), t(0), ME, D);
        assert!(
            matches!(step, Step::StandBy { recheck_in, .. } if recheck_in == Duration::from_secs(40))
        );
        rec.lease_duration_secs = None;
        assert!(matches!(
            decide(Some(&rec), Duration::from_secs(20), t(0), ME, D),
            Step::Acquire(_)
        ));
    }

    #[test]
    fn a_wall_clock_far_ahead_does_not_expire_a_lease_we_just_saw_change() {
        // The holder's renewTime is hours behind our wall clock (skew), but we saw the record
        // change just now: it is alive.
        let step = decide(Some(&held_by("other")), Duration::ZERO, t(36_000), ME, D);
        assert!(matches!(step, Step::StandBy { .. }), "{step:?}");
    }

    #[test]
    fn a_released_lease_is_acquired_at_once() {
        let mut rec = held_by("other");
        rec = released(&rec, t(30));
        assert_eq!(rec.holder, None);
        assert!(matches!(
            decide(Some(&rec), Duration::ZERO, t(31), ME, D),
            Step::Acquire(r) if r.transitions == 4
        ));
        rec.holder = Some(String::new());
        assert!(matches!(
            decide(Some(&rec), Duration::ZERO, t(31), ME, D),
            Step::Acquire(_)
        ));
    }

    #[test]
    fn durations_are_whole_seconds_of_at_least_one() {
        assert_eq!(duration_secs(Duration::from_millis(200)), 1);
        assert_eq!(duration_secs(Duration::from_secs(2)), 2);
        assert_eq!(duration_secs(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
