//! The seam between "what to announce" and "how": an [`Advertiser`] makes a set of VIPs reachable
//! via this node, given the whole desired set each time.
//!
//! Lifecycle (*Expected flow*): the speaker recomputes its plan whenever an input changes and
//! calls [`Advertiser::set_desired`] with the complete new state; the backend diffs against what
//! it holds and converges (BGP: UPDATEs and withdraws per peer, sessions added or closed; Layer 2:
//! ARP/NDP responders started or stopped per VIP and interface).
//!
//! *Guarantees* a backend gives: after `set_desired(d)` returns `Ok`, `d` is the target until the
//! next call; it converges to it eventually and keeps doing so across session flaps. A call never
//! blocks on the network: backends hand the state to their tasks (a `tokio::sync::watch`, latest
//! wins), so the trait needs no `async` and the speaker's reconcile loop never stalls on a slow
//! peer.
//!
//! *Assumptions*: the caller passes complete states, never deltas; an empty state means
//! "withdraw everything". Losing the source of truth (API server, config directory) is not an
//! empty state: the caller keeps the last one and does not call.
//!
//! *Caveats*: `Ok` means accepted, not yet converged; convergence is observed through the
//! backend's own metrics (session up, prefixes announced).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::announce::input::ServiceKey;

/// Why a backend did not accept a desired state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertiserError {
    /// The backend's tasks have stopped (shutdown, or a crash); nothing will converge.
    #[error("{backend} advertiser is closed")]
    Closed {
        /// `"bgp"`, `"l2"`, `"fake"`, ...
        backend: &'static str,
    },
    /// The backend cannot realise part of the state (e.g. an interface that does not exist).
    #[error("{backend} advertiser rejected {item}: {reason}")]
    Rejected {
        backend: &'static str,
        /// What was rejected, e.g. `vip 192.0.2.1 on eth7`.
        item: String,
        reason: String,
    },
}

impl AdvertiserError {
    /// A stable word for a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AdvertiserError::Closed { .. } => "closed",
            AdvertiserError::Rejected { .. } => "rejected",
        }
    }
}

/// "Make this set of VIPs reachable via this node."
///
/// Implemented by the BGP backend with `Desired = BgpDesired` (`announce::bgp`: peers with their session
/// settings and routes) and by the Layer 2 backend with `Desired = `[`L2Desired`] (VIPs with
/// their interfaces).
pub trait Advertiser: Send {
    /// The complete desired state this backend understands.
    type Desired: Clone + PartialEq + Send + Sync + 'static;

    /// Replaces the desired state with `desired`. Cheap and non-blocking; see the module doc.
    fn set_desired(&mut self, desired: Self::Desired) -> Result<(), AdvertiserError>;
}

/// Where a Layer 2 VIP is answered for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interfaces {
    /// Every interface (an L2Advertisement without `interfaces`).
    All,
    /// Only these interfaces (the union of the applying L2Advertisements' `interfaces`).
    Only(BTreeSet<String>),
}

/// One VIP this node must answer ARP (RFC 826) or NDP (RFC 4861) requests for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Vip {
    pub interfaces: Interfaces,
    /// The Services using the VIP (several when an IP is shared).
    pub services: BTreeSet<ServiceKey>,
}

/// The desired Layer 2 state of this node: exactly the VIPs it owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct L2Desired {
    pub vips: BTreeMap<IpAddr, L2Vip>,
}

/// Test doubles for [`Advertiser`].
pub mod testing {
    use super::{Advertiser, AdvertiserError};

    /// Test double: an in-memory [`Advertiser`] that records every desired state it is given,
    /// and can be told to fail.
    #[derive(Debug, Clone)]
    pub struct FakeAdvertiser<D> {
        /// Every accepted state, oldest first.
        pub history: Vec<D>,
        /// When set, the next `set_desired` returns this error and records nothing.
        pub fail_next: Option<AdvertiserError>,
    }

    impl<D> Default for FakeAdvertiser<D> {
        fn default() -> Self {
            Self {
                history: Vec::new(),
                fail_next: None,
            }
        }
    }

    impl<D> FakeAdvertiser<D> {
        /// The state in force: the last accepted one.
        pub fn current(&self) -> Option<&D> {
            self.history.last()
        }
    }

    impl<D: Clone + PartialEq + Send + Sync + 'static> Advertiser for FakeAdvertiser<D> {
        type Desired = D;

        fn set_desired(&mut self, desired: D) -> Result<(), AdvertiserError> {
            if let Some(err) = self.fail_next.take() {
                return Err(err);
            }
            self.history.push(desired);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakeAdvertiser;
    use super::*;
    use crate::announce::bgp::BgpDesired;

    /// Drives any advertiser the way the speaker does: whole states, only when they change.
    fn reconcile<A: Advertiser>(
        adv: &mut A,
        last: &mut Option<A::Desired>,
        next: A::Desired,
    ) -> Result<(), AdvertiserError> {
        if last.as_ref() == Some(&next) {
            return Ok(());
        }
        adv.set_desired(next.clone())?;
        *last = Some(next);
        Ok(())
    }

    fn l2(vips: &[&str]) -> L2Desired {
        L2Desired {
            vips: vips
                .iter()
                .map(|v| {
                    (
                        v.parse().expect("test literal"),
                        L2Vip {
                            interfaces: Interfaces::All,
                            services: BTreeSet::from([ServiceKey::new("ns", "svc")]),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn fake_records_whole_states_and_the_last_is_current() {
        let mut fake = FakeAdvertiser::default();
        let mut last = None;
        reconcile(&mut fake, &mut last, l2(&["192.0.2.1"])).expect("accepted");
        reconcile(&mut fake, &mut last, l2(&["192.0.2.1"])).expect("accepted");
        reconcile(&mut fake, &mut last, l2(&[])).expect("accepted");
        assert_eq!(fake.history.len(), 2, "an unchanged state is not re-sent");
        assert_eq!(fake.current(), Some(&l2(&[])));
    }

    #[test]
    fn fake_failure_keeps_the_previous_state() {
        let mut fake = FakeAdvertiser::<BgpDesired>::default();
        fake.set_desired(BgpDesired::default()).expect("accepted");
        fake.fail_next = Some(AdvertiserError::Closed { backend: "fake" });
        let err = fake.set_desired(BgpDesired::default()).unwrap_err();
        assert_eq!(err.metric_label(), "closed");
        assert_eq!(fake.history.len(), 1);
        fake.set_desired(BgpDesired::default())
            .expect("accepted again");
        assert_eq!(fake.history.len(), 2);
    }
}
