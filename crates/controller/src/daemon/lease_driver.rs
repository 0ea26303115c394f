//! The Lease driver: reads the Lease, asks [`super::lease::decide`], and does what it says with
//! get / create / replace under the Lease's `resourceVersion`. Leadership is published on a
//! `watch::Sender<bool>`; the reconciler writes only while it reads `true`.
//!
//! Timing (client-go's ratios): the Lease is read every `retry_period` = duration / 4; a leader
//! whose last confirmed renewal started more than `renew_deadline` = 2/3 of the duration ago
//! steps down, before a standby (which needs a full duration of an unchanged record) can take
//! over. A 409 on create or replace means another candidate wrote first: we are not the leader.
//! On cancellation a leader publishes `false` first, then clears the holder so a standby takes
//! over at its next read.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease::{decide, released, LeaseRecord, Step};

/// Which Lease, who we are, and how long a lease lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// `metadata.name` of the Lease.
    pub name: String,
    /// Our `holderIdentity` (the Pod name).
    pub identity: String,
    /// `leaseDurationSeconds` we write.
    pub duration: Duration,
}

impl LeaseConfig {
    /// How often the Lease is read (and renewed while leading).
    pub fn retry_period(&self) -> Duration {
        (self.duration / 4).max(Duration::from_millis(100))
    }

    /// A leader whose renewal is not confirmed for this long stops leading.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        lease_duration_secs: spec.lease_duration_seconds,
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn lease_of(name: &str, record: LeaseRecord, resource_version: Option<String>) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: record.holder,
            lease_duration_seconds: record.lease_duration_secs,
            acquire_time: record.acquire_time.map(MicroTime),
            renew_time: record.renew_time.map(MicroTime),
            lease_transitions: Some(record.transitions),
            ..LeaseSpec::default()
        }),
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The driver's memory between reads.
struct Driver {
    api: Api<Lease>,
    cfg: LeaseConfig,
    leader: watch::Sender<bool>,
    /// The record last read and since when (monotonic) we have seen it unchanged.
    seen: Option<(LeaseRecord, Instant)>,
    /// Start of the last write that confirmed our leadership.
    confirmed: Option<Instant>,
}

impl Driver {
    fn set_leader(&self, lead: bool, reason: &str) {
        let was = *self.leader.borrow();
        if was != lead {
            tracing::info!(
                lease = %self.cfg.name,
                identity = %self.cfg.identity,
                from = if was { "leader" } else { "standby" },
                to = if lead { "leader" } else { "standby" },
                reason,
                "leadership changed"
            );
            self.leader.send_replace(lead);
        }
    }

    /// One read-decide-write round; returns how long to wait before the next.
    async fn round(&mut self) -> Duration {
        let retry = self.cfg.retry_period();
        let started = Instant::now();
        let read = tokio::time::timeout(retry, self.api.get_opt(&self.cfg.name)).await;
        let lease = match read {
            Ok(Ok(lease)) => lease,
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %self.cfg.name, "reading the Lease failed");
                return retry;
            }
            Err(_) => {
                tracing::warn!(lease = %self.cfg.name, "reading the Lease timed out");
                return retry;
            }
        };
        let record = lease.as_ref().map(record_of);
        let unchanged_for = match (&self.seen, &record) {
            (Some((seen, at)), Some(now)) if seen == now => at.elapsed(),
            _ => {
                self.seen = record.clone().map(|r| (r, started));
                Duration::ZERO
            }
        };
        let step = decide(
            record.as_ref(),
            unchanged_for,
            Timestamp::now(),
            &self.cfg.identity,
            self.cfg.duration,
        );
        let rv = lease.and_then(|l| l.metadata.resource_version);
        let params = PostParams::default();
        let name = self.cfg.name.clone();
        let (body, reason) = match step {
            Step::StandBy { holder, recheck_in } => {
                tracing::debug!(%holder, "the Lease is held by another candidate");
                self.set_leader(false, "held by another candidate");
                return retry.min(recheck_in).max(Duration::from_millis(50));
            }
            Step::Create(r) => (lease_of(&name, r, None), "created the Lease"),
            Step::Acquire(r) => (lease_of(&name, r, rv), "acquired the Lease"),
            Step::Renew(r) => (lease_of(&name, r, rv), "renewed the Lease"),
        };
        let write = async {
            if body.metadata.resource_version.is_none() {
                self.api.create(&params, &body).await
            } else {
                self.api.replace(&name, &params, &body).await
            }
        };
        match tokio::time::timeout(retry, write).await {
            Ok(Ok(written)) => {
                self.seen = Some((record_of(&written), Instant::now()));
                self.confirmed = Some(started);
                self.set_leader(true, reason);
            }
            Ok(Err(error)) if is_conflict(&error) => {
                self.confirmed = None;
                self.set_leader(false, "another candidate wrote the Lease first (409)");
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %self.cfg.name, "writing the Lease failed")
            }
            Err(_) => tracing::warn!(lease = %self.cfg.name, "writing the Lease timed out"),
        }
        retry
    }

    /// Steps down when the last confirmed renewal is older than the renew deadline.
    fn check_deadline(&mut self) {
        let overdue = self
            .confirmed
            .is_none_or(|at| at.elapsed() >= self.cfg.renew_deadline());
        if overdue && *self.leader.borrow() {
            self.confirmed = None;
            self.set_leader(false, "renewal not confirmed within the renew deadline");
        }
    }

    /// Clears the holder so a standby need not wait out the lease duration.
    async fn release(&self) {
        let Ok(Ok(Some(lease))) =
            tokio::time::timeout(Duration::from_secs(2), self.api.get_opt(&self.cfg.name)).await
        else {
            return;
        };
        let record = record_of(&lease);
        if record.holder.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        let body = lease_of(
            &self.cfg.name,
            released(&record, Timestamp::now()),
            lease.metadata.resource_version,
        );
        let params = PostParams::default();
        let write = self.api.replace(&self.cfg.name, &params, &body);
        match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(Ok(_)) => tracing::info!(lease = %self.cfg.name, "released the Lease"),
            Ok(Err(error)) => tracing::warn!(%error, "releasing the Lease failed"),
            Err(_) => tracing::warn!("releasing the Lease timed out"),
        }
    }
}

/// Runs leader election until `cancel`; publishes leadership on `leader`.
pub async fn run(
    api: Api<Lease>,
    cfg: LeaseConfig,
    leader: watch::Sender<bool>,
    cancel: CancellationToken,
) {
    let mut driver = Driver {
        api,
        cfg,
        leader,
        seen: None,
        confirmed: None,
    };
    loop {
        let wait = tokio::select! {
            wait = driver.round() => wait,
            () = cancel.cancelled() => break,
        };
        driver.check_deadline();
        let deadline_at = driver.confirmed.map(|at| at + driver.cfg.renew_deadline());
        // Wake for the next round, or at the renew deadline to step down without a round.
        let next = Instant::now() + wait;
        let wake = deadline_at.map_or(next, |d| d.min(next));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = cancel.cancelled() => break,
        }
        driver.check_deadline();
    }
    if *driver.leader.borrow() {
        driver.set_leader(false, "shutting down");
        driver.release().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_follows_client_go_ratios() {
        let cfg = LeaseConfig {
            name: "l".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
        };
        assert_eq!(cfg.retry_period(), Duration::from_millis(3750));
        assert_eq!(cfg.renew_deadline(), Duration::from_secs(10));
        assert!(cfg.renew_deadline() < cfg.duration);
        assert!(cfg.retry_period() < cfg.renew_deadline());
    }

    #[test]
    fn lease_round_trips_through_the_k8s_type() {
        let r = LeaseRecord {
            holder: Some("me".into()),
            lease_duration_secs: Some(2),
            acquire_time: Some(Timestamp::from_second(1).expect("t")),
            renew_time: Some(Timestamp::from_second(2).expect("t")),
            transitions: 5,
        };
        let lease = lease_of("l", r.clone(), Some("7".into()));
        assert_eq!(lease.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(record_of(&lease), r);
    }
}
