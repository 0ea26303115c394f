//! IPAddressPool status counters, as MetalLB v0.15 writes them: `assignedIPv4`, `assignedIPv6`,
//! `availableIPv4`, `availableIPv6`, from the leader's allocator.
//!
//! ```text
//!  Reconciler (leader) ─ statuses(usage) (pure) ─▶ watch<Option<map>> ─▶ run_writer ─▶ PATCH
//!                       None when not leading                               ipaddresspools/status
//! ```
//!
//! *Guarantees*: only the leader's counts are sent; a pool's status is patched only when it
//! differs from what this writer last wrote in the current term (a new term writes every pool
//! once, as the previous leader may have left other numbers); a failed patch is retried with
//! backoff. *Caveats*: a pool deleted between the count and the patch gets a 404, which is
//! ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_api::crd::{IPAddressPool, IPAddressPoolStatus};
use ferrolb_api::model::IpFamily;
use ferrolb_runtime::Backoff;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use ferrolb_allocator::PoolUsage;

/// Every pool's status, by pool name.
pub type Statuses = BTreeMap<String, IPAddressPoolStatus>;

const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn count(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The statuses the allocator's usage asks for: every pool in `pools` (a family it lacks
/// counts 0), assigned = addresses held by a Service, available = addresses still free.
pub fn statuses<'a>(pools: impl IntoIterator<Item = &'a str>, usage: &[PoolUsage]) -> Statuses {
    let mut out: Statuses = pools
        .into_iter()
        .map(|p| (p.to_owned(), IPAddressPoolStatus::default()))
        .collect();
    for u in usage {
        let s = out.entry(u.pool.clone()).or_default();
        match u.family {
            IpFamily::V4 => {
                s.assigned_ipv4 = count(u.in_use);
                s.available_ipv4 = count(u.free);
            }
            IpFamily::V6 => {
                s.assigned_ipv6 = count(u.in_use);
                s.available_ipv6 = count(u.free);
            }
        }
    }
    out
}

/// The pools whose status must be written: those in `want` that differ from `written`.
pub fn changed(want: &Statuses, written: &Statuses) -> Vec<(String, IPAddressPoolStatus)> {
    want.iter()
        .filter(|(name, s)| written.get(*name) != Some(*s))
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect()
}

/// Patches what `rx` holds until `cancel`; `None` (not leading) forgets what was written.
pub async fn run_writer(
    api: Api<IPAddressPool>,
    manager: String,
    mut rx: watch::Receiver<Option<Statuses>>,
    cancel: CancellationToken,
) {
    let params = PatchParams {
        field_manager: Some(manager),
        ..PatchParams::default()
    };
    let mut written = Statuses::new();
    let mut failures = 0u32;
    loop {
        let want = rx.borrow_and_update().clone();
        let mut retry = None;
        match want {
            None => written.clear(),
            Some(want) => {
                written.retain(|name, _| want.contains_key(name));
                for (name, status) in changed(&want, &written) {
                    let body = Patch::Merge(json!({"status": status}));
                    let call = api.patch_status(&name, &params, &body);
                    match tokio::time::timeout(CALL_TIMEOUT, call).await {
                        Ok(Ok(_)) => {
                            tracing::debug!(pool = %name, ?status, "pool status written");
                            written.insert(name, status);
                        }
                        Ok(Err(kube::Error::Api(e))) if e.code == 404 => {}
                        Ok(Err(error)) => {
                            tracing::warn!(pool = %name, %error, "writing the pool status failed");
                            retry = Some(());
                        }
                        Err(_) => {
                            tracing::warn!(pool = %name, "writing the pool status timed out");
                            retry = Some(());
                        }
                    }
                }
            }
        }
        let wait = retry.map(|()| {
            failures = failures.saturating_add(1);
            tokio::time::Instant::now() + RETRY.delay(failures - 1)
        });
        if wait.is_none() {
            failures = 0;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            () = ferrolb_runtime::sleep_until(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(pool: &str, family: IpFamily, in_use: u128, free: u128) -> PoolUsage {
        PoolUsage {
            pool: pool.into(),
            family,
            in_use,
            free,
            unusable: 0,
            total: in_use.saturating_add(free),
        }
    }

    #[test]
    fn counts_per_family_and_pools_without_usage_get_zeros() {
        let s = statuses(
            ["a", "b", "empty"],
            &[
                usage("a", IpFamily::V4, 2, 6),
                usage("a", IpFamily::V6, 1, u128::MAX),
                usage("b", IpFamily::V4, 0, 256),
            ],
        );
        assert_eq!(
            s["a"],
            IPAddressPoolStatus {
                assigned_ipv4: 2,
                assigned_ipv6: 1,
                available_ipv4: 6,
                available_ipv6: i64::MAX,
            }
        );
        assert_eq!(s["b"].available_ipv4, 256);
        assert_eq!(s["empty"], IPAddressPoolStatus::default());
    }

    #[test]
    fn only_differences_are_written() {
        let want = statuses(["a", "b"], &[usage("a", IpFamily::V4, 1, 7)]);
        let mut written = want.clone();
        assert!(changed(&want, &written).is_empty());
        written.get_mut("a").expect("a").assigned_ipv4 = 0;
        let c = changed(&want, &written);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "a");
    }
}
