//! Desired routes and the per-peer Adj-RIB-Out (RFC 4271 §3.2). Pure: no I/O.
//!
//! [`Route`] is the one route type from the caller's announcement computation to the UPDATE
//! packer: the caller says what it wants (next hop, communities, LOCAL_PREF), and the session
//! decides what goes on the wire ([`crate::packer::Packer`]: AS_PATH, NEXT_HOP, LOCAL_PREF
//! only towards iBGP). [`AdjRibOut`] keeps what was last sent so [`AdjRibOut::diff`] yields
//! only the difference: setting the same desired state twice yields nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::wire::{Community, ExtendedCommunity, Families, Family, LargeCommunity};

/// The NEXT_HOP (RFC 4271 §5.1.3) or MP_REACH_NLRI next hop (RFC 4760 §3) of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum NextHop {
    /// The local address of the BGP session's TCP connection, known only once it is up. It
    /// serves only prefixes of that address's family: RFC 4760 §3 wants a next hop of the
    /// NLRI's family, so a session over IPv4 does not carry an IPv6 prefix with it.
    #[default]
    SessionLocal,
    /// A given address, for prefixes of the other family than the session's (a node's own
    /// address of that family; for IPv6 a global address, RFC 2545 §3).
    Explicit(IpAddr),
}

/// A route the caller wants announced: what it asks for, independent of the session.
///
/// Ordered and hashable so callers can intern equal routes (one `Arc` per distinct value,
/// shared by every prefix that uses it: 100k prefixes with a few attribute sets cost a pointer
/// each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Route {
    /// Next hop of the route.
    pub next_hop: NextHop,
    /// COMMUNITIES (RFC 1997), sorted, no duplicates.
    pub communities: BTreeSet<Community>,
    /// LARGE_COMMUNITY (RFC 8092), sorted, no duplicates.
    pub large_communities: BTreeSet<LargeCommunity>,
    /// EXTENDED COMMUNITIES (RFC 4360), sorted, no duplicates: e.g. a link bandwidth
    /// ([`ExtendedCommunity::link_bandwidth`]) for weighted ECMP at the receiver.
    pub extended_communities: BTreeSet<ExtendedCommunity>,
    /// LOCAL_PREF, sent to iBGP peers only (RFC 4271 §5.1.5: "MUST NOT include this attribute
    /// in UPDATE messages it sends to external peers"). `None` towards an iBGP peer means "not
    /// configured": LOCAL_PREF "SHALL be included in all UPDATE messages" to internal peers, so
    /// the default [`DEFAULT_LOCAL_PREF`] is sent.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC (RFC 4271 §5.1.4).
    pub med: Option<u32>,
}

/// LOCAL_PREF sent to iBGP peers for a route that does not set one (RFC 4271 §5.1.5 makes the
/// attribute mandatory towards internal peers; 100 is the customary default).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

impl Route {
    /// The next hop of this route for `prefix` on session `s`, or `None` when the session
    /// cannot carry it: the prefix's family is not negotiated, or the next hop is not of the
    /// prefix's family (RFC 4760 §3).
    pub fn next_hop_for(&self, prefix: &IpNet, s: &SessionView) -> Option<IpAddr> {
        let family = match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        };
        if !s.families.contains(family) {
            return None;
        }
        let next_hop = match self.next_hop {
            NextHop::SessionLocal => s.local_addr,
            NextHop::Explicit(ip) => ip,
        };
        // RFC 8950 §4: with Extended Next Hop Encoding an IPv4 prefix may have an IPv6 next hop.
        let v4_over_v6 = s.ipv4_via_ipv6 && prefix.addr().is_ipv4() && next_hop.is_ipv6();
        (v4_over_v6 || next_hop.is_ipv4() == prefix.addr().is_ipv4()).then_some(next_hop)
    }

    /// The LOCAL_PREF this route carries on session `s` (RFC 4271 §5.1.5: only towards iBGP,
    /// and always there).
    pub fn local_pref_for(&self, s: &SessionView) -> Option<u32> {
        s.ibgp
            .then(|| self.local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
    }

    /// Whether `self` and `other` put the same attributes on the wire for `prefix` on `s`:
    /// they differ at most in what the session does not send (LOCAL_PREF towards eBGP, an
    /// absent LOCAL_PREF against the default towards iBGP).
    pub fn same_on_wire(&self, other: &Route, prefix: &IpNet, s: &SessionView) -> bool {
        self.med == other.med
            && self.communities == other.communities
            && self.large_communities == other.large_communities
            && self.extended_communities == other.extended_communities
            && self.local_pref_for(s) == other.local_pref_for(s)
            && self.next_hop_for(prefix, s) == other.next_hop_for(prefix, s)
    }
}

/// The desired routes: prefix → route. Routes are shared (`Arc`), so 100k prefixes with a few
/// distinct attribute sets cost a pointer each, not a copy of the attributes.
pub type Routes = BTreeMap<IpNet, Arc<Route>>;

/// What a session needs to know to build attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView {
    /// Our ASN.
    pub local_as: u32,
    /// Whether the peer is in our AS.
    pub ibgp: bool,
    /// The local address of the TCP connection.
    pub local_addr: IpAddr,
    /// The families negotiated.
    pub families: Families,
    /// Both sides sent Extended Next Hop Encoding for IPv4 unicast over IPv6 (RFC 8950,
    /// [`crate::enh`]): IPv4 prefixes may take an IPv6 next hop (unnumbered sessions).
    pub ipv4_via_ipv6: bool,
}

/// What was sent to one peer (RFC 4271 §3.2 Adj-RIB-Out), kept as the desired-routes snapshot
/// that was last sent in full: the routes the peer holds are exactly the ones of that snapshot
/// this session can carry ([`Route::next_hop_for`]). The snapshot is the same `Arc` the speaker
/// shares with every peer, so an Adj-RIB-Out costs one pointer, not a second table of 100k
/// prefixes (a per-prefix copy cost about 3 MiB of peak RSS at 100k).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdjRibOut {
    sent: Arc<Routes>,
}

/// One difference between what a peer holds and what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Announce (or re-announce with new attributes) this prefix.
    Announce(IpNet, Arc<Route>),
    /// Withdraw this prefix.
    Withdraw(IpNet),
}

impl AdjRibOut {
    /// The snapshot last sent in full.
    pub fn sent(&self) -> &Arc<Routes> {
        &self.sent
    }

    /// Records that `routes` went out in full (after every change of [`AdjRibOut::diff`]).
    pub fn set(&mut self, routes: Arc<Routes>) {
        self.sent = routes;
    }

    /// Forgets everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.sent = Arc::default();
    }

    /// The changes that turn what the peer holds into `desired`, in prefix order, by one merge
    /// of the two sorted maps. Prefixes whose route is the same `Arc`, or puts the same
    /// attributes on the wire ([`Route::same_on_wire`]), produce nothing, so setting the same
    /// state twice sends nothing.
    pub fn diff<'a>(&'a self, desired: &'a Routes, s: SessionView) -> Diff<'a> {
        Diff {
            old: self.sent.iter().peekable(),
            new: desired.iter().peekable(),
            view: s,
            carried: 0,
            skipped: 0,
        }
    }
}

/// The iterator of [`AdjRibOut::diff`]; after it ends, [`Diff::carried`] and [`Diff::skipped`]
/// count the desired prefixes this session carries and cannot carry.
#[derive(Debug)]
pub struct Diff<'a> {
    old: std::iter::Peekable<std::collections::btree_map::Iter<'a, IpNet, Arc<Route>>>,
    new: std::iter::Peekable<std::collections::btree_map::Iter<'a, IpNet, Arc<Route>>>,
    view: SessionView,
    carried: usize,
    skipped: usize,
}

impl Diff<'_> {
    /// Desired prefixes the session carries (the Adj-RIB-Out's size once the diff is sent).
    pub fn carried(&self) -> usize {
        self.carried
    }

    /// Desired prefixes the session cannot carry (family or next hop missing).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

impl Diff<'_> {
    fn carries(&self, prefix: &IpNet, route: &Route) -> bool {
        route.next_hop_for(prefix, &self.view).is_some()
    }
}

impl Iterator for Diff<'_> {
    type Item = Change;

    fn next(&mut self) -> Option<Change> {
        // Bounded: every round consumes at least one entry of one of the two maps.
        loop {
            let order = match (self.old.peek(), self.new.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((o, _)), Some((n, _))) => o.cmp(n),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (p, r) = self.old.next()?;
                    // Only what was carried was sent, so only that needs withdrawing.
                    if self.carries(p, r) {
                        return Some(Change::Withdraw(*p));
                    }
                }
                std::cmp::Ordering::Greater => {
                    let (p, r) = self.new.next()?;
                    if self.carries(p, r) {
                        self.carried += 1;
                        return Some(Change::Announce(*p, Arc::clone(r)));
                    }
                    self.skipped += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (p, old) = self.old.next()?;
                    let (_, new) = self.new.next()?;
                    let now = self.carries(p, new);
                    if now {
                        self.carried += 1;
                    } else {
                        self.skipped += 1;
                    }
                    if Arc::ptr_eq(old, new) {
                        continue;
                    }
                    match (self.carries(p, old), now) {
                        (true, true) => {
                            if !old.same_on_wire(new, p, &self.view) {
                                return Some(Change::Announce(*p, Arc::clone(new)));
                            }
                        }
                        (false, true) => return Some(Change::Announce(*p, Arc::clone(new))),
                        (true, false) => return Some(Change::Withdraw(*p)),
                        (false, false) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> SessionView {
        SessionView {
            local_as: 65001,
            ibgp: false,
            local_addr: "192.0.2.1".parse().expect("addr"),
            families: Families::IPV4_IPV6_UNICAST,
            ipv4_via_ipv6: false,
        }
    }

    #[test]
    fn the_session_local_next_hop_serves_only_the_sessions_family() {
        let route = Route::default();
        let v4 = net("198.51.100.1/32");
        let v6 = net("2001:db8::1/128");
        assert_eq!(route.next_hop_for(&v4, &view()), Some(view().local_addr));
        // RFC 4760 §3: no IPv6 next hop on an IPv4 session without one given.
        assert_eq!(route.next_hop_for(&v6, &view()), None);
        let explicit = Route {
            next_hop: NextHop::Explicit("2001:db8::9".parse().expect("ip")),
            ..Route::default()
        };
        assert!(explicit.next_hop_for(&v6, &view()).is_some());
        assert_eq!(explicit.next_hop_for(&v4, &view()), None);
        let v4_only = SessionView {
            families: Families::IPV4_UNICAST,
            ..view()
        };
        assert_eq!(
            explicit.next_hop_for(&v6, &v4_only),
            None,
            "family not negotiated"
        );
    }

    #[test]
    fn local_pref_goes_to_ibgp_only_and_defaults_to_100_there() {
        let set = Route {
            local_pref: Some(200),
            ..Route::default()
        };
        let ibgp = SessionView {
            ibgp: true,
            ..view()
        };
        assert_eq!(set.local_pref_for(&view()), None);
        assert_eq!(set.local_pref_for(&ibgp), Some(200));
        assert_eq!(
            Route::default().local_pref_for(&ibgp),
            Some(DEFAULT_LOCAL_PREF)
        );
        // Differing only in what eBGP does not get: the same on the wire.
        let p = net("198.51.100.1/32");
        assert!(set.same_on_wire(&Route::default(), &p, &view()));
        assert!(!set.same_on_wire(&Route::default(), &p, &ibgp));
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    #[test]
    fn diff_from_empty_announces_what_the_session_carries() {
        let route = Arc::new(Route::default());
        let desired: Routes = [
            (net("198.51.100.1/32"), Arc::clone(&route)),
            (net("2001:db8::1/128"), Arc::clone(&route)),
        ]
        .into();
        let rib = AdjRibOut::default();
        let mut d = rib.diff(&desired, view());
        let changes: Vec<Change> = d.by_ref().collect();
        assert_eq!(changes.len(), 1);
        assert!(matches!(&changes[..], [Change::Announce(p, _)] if *p == net("198.51.100.1/32")));
        // The IPv6 prefix has no IPv6 next hop on this IPv4 session.
        assert_eq!((d.carried(), d.skipped()), (1, 1));
    }

    #[test]
    fn diff_yields_withdrawals_changes_and_nothing_for_equal_routes() {
        let plain = Arc::new(Route::default());
        let med = Arc::new(Route {
            med: Some(10),
            ..Route::default()
        });
        let old: Routes = [
            (net("198.51.100.1/32"), Arc::clone(&plain)),
            (net("198.51.100.2/32"), Arc::clone(&plain)),
            (net("198.51.100.3/32"), Arc::clone(&plain)),
        ]
        .into();
        let mut rib = AdjRibOut::default();
        rib.set(Arc::new(old));
        let new: Routes = [
            // Equal by value, another Arc: no change.
            (net("198.51.100.1/32"), Arc::new(Route::default())),
            (net("198.51.100.3/32"), Arc::clone(&med)),
            (net("198.51.100.4/32"), Arc::clone(&plain)),
        ]
        .into();
        let mut d = rib.diff(&new, view());
        let got: Vec<(IpNet, bool)> = d
            .by_ref()
            .map(|c| match c {
                Change::Announce(p, _) => (p, true),
                Change::Withdraw(p) => (p, false),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (net("198.51.100.2/32"), false),
                (net("198.51.100.3/32"), true),
                (net("198.51.100.4/32"), true),
            ]
        );
        assert_eq!(d.carried(), 3);
        rib.set(Arc::new(new.clone()));
        assert_eq!(rib.diff(&new, view()).count(), 0, "same state twice");
    }
}
