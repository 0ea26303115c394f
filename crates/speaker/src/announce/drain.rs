//! Taking a node out of service without dropping traffic: first the routes are re-announced
//! with GRACEFUL_SHUTDOWN (65535:0, RFC 8326 §4.1) and, towards iBGP peers, LOCAL_PREF 0, so
//! routers move the traffic to the other nodes while this one still forwards; after the drain
//! period the routes are withdrawn.
//!
//! ```text
//!  Node: exclusion label | ferrolb.io/drain: "true" | ToBeDeletedByClusterAutoscaler taint
//!    ─▶ drain_requested ─▶ Drain::observe(requested, now) ─▶ DrainPhase
//!         Serving                 announce as usual
//!         Draining { ends }       announce despite the signal, every route gracefully_shut();
//!                                 the loop is woken at `ends` (a deadline, not a sleep)
//!         Drained                 the signal withdraws, as the exclusion label always did
//!  signal removed ─▶ Serving: announced normally again
//! ```
//!
//! A cordon (`spec.unschedulable`) is not a drain signal (see [`crate::announce::node_gate`]).
//! Pure: the clock is an argument.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrolb_bgp::rib::Route;
use ferrolb_bgp::wire::attribute::Community;

use super::bgp::{BgpDesired, PeerAnnouncement};
use super::input::{Node, LABEL_EXCLUDE_FROM_LB};

/// FerroLB's drain annotation on a Node: `"true"` drains it.
pub const ANNOTATION_DRAIN: &str = "ferrolb.io/drain";

/// The cluster autoscaler's taint on a node it is about to delete.
pub const TAINT_TO_BE_DELETED: &str = "ToBeDeletedByClusterAutoscaler";

/// The default drain period (`--drain-seconds`).
pub const DEFAULT_DRAIN_PERIOD: Duration = Duration::from_secs(30);

/// Where a node is in its drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainPhase {
    /// No drain signal: announce as usual.
    Serving,
    /// Draining until `ends`: announce with GRACEFUL_SHUTDOWN and LOCAL_PREF 0.
    Draining {
        /// When the routes are withdrawn.
        ends: Instant,
    },
    /// The drain period is over: withdrawn.
    Drained,
}

/// Whether `node` carries a drain signal. `ignore_exclude_lb` (MetalLB's
/// `--ignore-exclude-lb`) discounts the exclusion label only: the annotation and the taint are
/// FerroLB's and the autoscaler's explicit requests.
pub fn drain_requested(node: &Node, ignore_exclude_lb: bool) -> bool {
    (!ignore_exclude_lb && node.labels.contains_key(LABEL_EXCLUDE_FROM_LB)) || node.drain_requested
}

/// The phase of a drain that started at `started` (`None`: not started), at `now`.
pub fn drain_phase(started: Option<Instant>, now: Instant, period: Duration) -> DrainPhase {
    match started {
        None => DrainPhase::Serving,
        Some(t) => {
            let ends = t + period;
            if now < ends {
                DrainPhase::Draining { ends }
            } else {
                DrainPhase::Drained
            }
        }
    }
}

/// The drain of this speaker's node: when its signal was first seen.
///
/// A drain starts only from a node seen without the signal: a speaker that starts on a node
/// already carrying it (a control-plane node kubeadm labels excluded, a node drained before
/// this speaker started) announced nothing from it, so there is nothing to move away, and it
/// goes straight to [`DrainPhase::Drained`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// How long routes stay announced with GRACEFUL_SHUTDOWN before they are withdrawn.
    pub period: Duration,
    started: Option<Instant>,
    /// The node has been seen (with or without the signal).
    seen: bool,
    /// The signal was there when the node was first seen (until it goes).
    from_start: bool,
}

impl Drain {
    /// No drain yet, with this period.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            started: None,
            seen: false,
            from_start: false,
        }
    }

    /// Takes the signal as seen at `now` (`None`: the node is not known yet, nothing changes):
    /// a new signal starts the drain, a removed one ends it.
    pub fn observe(&mut self, requested: Option<bool>, now: Instant) -> DrainPhase {
        match requested {
            None => {}
            Some(false) => {
                self.started = None;
                self.from_start = false;
            }
            Some(true) if self.started.is_none() && !self.from_start => {
                if self.seen {
                    self.started = Some(now);
                } else {
                    self.from_start = true;
                }
            }
            Some(true) => {}
        }
        if requested.is_some() {
            self.seen = true;
        }
        if self.from_start {
            return DrainPhase::Drained;
        }
        drain_phase(self.started, now, self.period)
    }
}

/// `desired` with every route marked for a graceful shutdown (RFC 8326 §4.1): the
/// GRACEFUL_SHUTDOWN community added and LOCAL_PREF 0, which crates/bgp sends to iBGP peers
/// only (RFC 4271 §5.1.5). Equal routes still share one `Arc`.
pub fn gracefully_shut(desired: &BgpDesired) -> BgpDesired {
    let mut interned: Vec<(Arc<Route>, Arc<Route>)> = Vec::new();
    let mut mark = |r: &Arc<Route>| -> Arc<Route> {
        if let Some((_, m)) = interned.iter().find(|(orig, _)| orig == r) {
            return Arc::clone(m);
        }
        let mut route = Route::clone(r);
        route.communities.insert(Community::GRACEFUL_SHUTDOWN);
        route.local_pref = Some(0);
        let m = Arc::new(route);
        interned.push((Arc::clone(r), Arc::clone(&m)));
        m
    };
    BgpDesired {
        peers: desired
            .peers
            .iter()
            .map(|(name, p)| {
                let routes = p.routes.iter().map(|(n, r)| (*n, mark(r))).collect();
                (
                    name.clone(),
                    Arc::new(PeerAnnouncement {
                        session: p.session.clone(),
                        routes,
                    }),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_secs(30);

    #[test]
    fn a_drain_runs_its_period_then_withdraws_and_ends_with_its_signal() {
        let t0 = Instant::now();
        let mut d = Drain::new(P);
        assert_eq!(
            d.observe(None, t0),
            DrainPhase::Serving,
            "node not known yet"
        );
        assert_eq!(d.observe(Some(false), t0), DrainPhase::Serving);
        let ends = t0 + P;
        assert_eq!(d.observe(Some(true), t0), DrainPhase::Draining { ends });
        // Seen again later: the drain keeps its start.
        assert_eq!(
            d.observe(Some(true), t0 + Duration::from_secs(10)),
            DrainPhase::Draining { ends }
        );
        assert_eq!(d.observe(Some(true), ends), DrainPhase::Drained);
        assert_eq!(d.observe(Some(false), ends), DrainPhase::Serving);
        // A new signal starts a new drain.
        let t1 = ends + Duration::from_secs(1);
        assert_eq!(
            d.observe(Some(true), t1),
            DrainPhase::Draining { ends: t1 + P }
        );
    }

    #[test]
    fn a_node_with_the_signal_from_the_start_is_drained_without_a_drain() {
        let t0 = Instant::now();
        let mut d = Drain::new(P);
        assert_eq!(d.observe(None, t0), DrainPhase::Serving);
        assert_eq!(d.observe(Some(true), t0), DrainPhase::Drained);
        assert_eq!(d.observe(Some(true), t0 + P), DrainPhase::Drained);
        // Once the signal goes, the next one is a real drain.
        assert_eq!(d.observe(Some(false), t0 + P), DrainPhase::Serving);
        let t1 = t0 + P + P;
        assert_eq!(
            d.observe(Some(true), t1),
            DrainPhase::Draining { ends: t1 + P }
        );
    }

    #[test]
    fn every_signal_counts_but_a_cordon_does_not() {
        let mut n = Node::new("n", Default::default());
        assert!(!drain_requested(&n, false));
        n.unschedulable = true;
        assert!(!drain_requested(&n, false), "cordon alone is no drain");
        n.labels
            .insert(LABEL_EXCLUDE_FROM_LB.to_owned(), String::new());
        assert!(drain_requested(&n, false));
        assert!(!drain_requested(&n, true), "--ignore-exclude-lb");
        n.drain_requested = true;
        assert!(drain_requested(&n, true), "annotation or taint");
    }
}
