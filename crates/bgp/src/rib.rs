//! Desired routes and the per-peer Adj-RIB-Out (RFC 4271 §3.2). Pure: no I/O.
//!
//! The caller's [`Route`]s are turned into wire attributes per session
//! ([`attributes_for`]: AS_PATH, NEXT_HOP, LOCAL_PREF only towards iBGP), and [`AdjRibOut`]
//! keeps what was last sent so [`AdjRibOut::diff`] yields only the difference: setting the
//! same desired state twice yields nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::packer::RouteAttributes;
use crate::wire::{
    AsPath, Community, Families, Family, LargeCommunity, MpNextHop, Origin, PathAttributes,
};

/// A route the caller wants announced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Route {
    /// Next hop; `None` = the session's local address (of the prefix's family).
    pub next_hop: Option<IpAddr>,
    /// COMMUNITIES (RFC 1997).
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITY (RFC 8092).
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF, sent to iBGP peers only (RFC 4271 §5.1.5).
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
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
}

/// The wire attributes of `route` for `prefix` on a session, or `None` when the session cannot
/// carry it (family not negotiated, or no next hop of the prefix's family).
pub fn attributes_for(prefix: &IpNet, route: &Route, s: &SessionView) -> Option<RouteAttributes> {
    let mut attrs = PathAttributes {
        origin: Some(Origin::Igp),
        // RFC 4271 §5.1.2: towards eBGP "prepend its own AS number"; towards iBGP an
        // originated route has an empty AS_PATH.
        as_path: Some(if s.ibgp {
            AsPath::default()
        } else {
            AsPath::sequence(vec![s.local_as])
        }),
        med: route.med,
        local_pref: if s.ibgp {
            Some(route.local_pref.unwrap_or(100))
        } else {
            None
        },
        communities: (!route.communities.is_empty()).then(|| route.communities.clone()),
        large_communities: (!route.large_communities.is_empty())
            .then(|| route.large_communities.clone()),
        ..PathAttributes::default()
    };
    let next_hop = route.next_hop.unwrap_or(s.local_addr);
    match prefix {
        IpNet::V4(_) => {
            if !s.families.contains(Family::IPV4_UNICAST) {
                return None;
            }
            let IpAddr::V4(nh) = next_hop else {
                return None;
            };
            attrs.next_hop = Some(nh);
            Some(RouteAttributes {
                attrs,
                mp_next_hop: None,
            })
        }
        IpNet::V6(_) => {
            if !s.families.contains(Family::IPV6_UNICAST) {
                return None;
            }
            let IpAddr::V6(nh) = next_hop else {
                return None;
            };
            Some(RouteAttributes {
                attrs,
                mp_next_hop: Some(MpNextHop::V6 {
                    global: nh,
                    link_local: None,
                }),
            })
        }
    }
}

/// Interns the wire attributes of routes for one session pass: one `Arc<RouteAttributes>` per
/// distinct (route, family), shared by every prefix that uses it.
#[derive(Debug, Default)]
pub struct AttrCache {
    /// Keyed by the route's value and the prefix family; values shared.
    map: HashMap<(Arc<Route>, bool), Option<Arc<RouteAttributes>>>,
    /// The last lookup: consecutive prefixes usually share one `Arc<Route>` (100k prefixes, a
    /// few attribute sets), and a pointer comparison is cheaper than hashing the route.
    last: Option<(Arc<Route>, bool, Option<Arc<RouteAttributes>>)>,
}

impl AttrCache {
    /// The attributes of `route` for `prefix` on session `s` (`None`: cannot be carried).
    pub fn get(
        &mut self,
        prefix: &IpNet,
        route: &Arc<Route>,
        s: &SessionView,
    ) -> Option<Arc<RouteAttributes>> {
        let v4 = matches!(prefix, IpNet::V4(_));
        if let Some((r, family, attrs)) = &self.last {
            if *family == v4 && Arc::ptr_eq(r, route) {
                return attrs.clone();
            }
        }
        let attrs = self
            .map
            .entry((Arc::clone(route), v4))
            .or_insert_with(|| attributes_for(prefix, route, s).map(Arc::new))
            .clone();
        self.last = Some((Arc::clone(route), v4, attrs.clone()));
        attrs
    }
}

/// What was sent to one peer (RFC 4271 §3.2 Adj-RIB-Out), kept as the desired-routes snapshot
/// that was last sent in full: the routes the peer holds are exactly the ones of that snapshot
/// this session can carry ([`attributes_for`]). The snapshot is the same `Arc` the speaker
/// shares with every peer, so an Adj-RIB-Out costs one pointer, not a second table of 100k
/// prefixes (issue 4: peak RSS at 100k; a per-prefix copy cost about 3 MiB there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdjRibOut {
    sent: Arc<Routes>,
}

/// One difference between what a peer holds and what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Announce (or re-announce with new attributes) this prefix.
    Announce(IpNet, Arc<RouteAttributes>),
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
    /// of the two sorted maps. Prefixes whose route is the same `Arc`, or yields equal
    /// attributes, produce nothing, so setting the same state twice sends nothing.
    pub fn diff<'a>(
        &'a self,
        desired: &'a Routes,
        cache: &'a mut AttrCache,
        s: SessionView,
    ) -> Diff<'a> {
        Diff {
            old: self.sent.iter().peekable(),
            new: desired.iter().peekable(),
            cache,
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
    cache: &'a mut AttrCache,
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
                    if self.cache.get(p, r, &self.view).is_some() {
                        return Some(Change::Withdraw(*p));
                    }
                }
                std::cmp::Ordering::Greater => {
                    let (p, r) = self.new.next()?;
                    match self.cache.get(p, r, &self.view) {
                        Some(a) => {
                            self.carried += 1;
                            return Some(Change::Announce(*p, a));
                        }
                        None => self.skipped += 1,
                    }
                }
                std::cmp::Ordering::Equal => {
                    let (p, old) = self.old.next()?;
                    let (_, new) = self.new.next()?;
                    if Arc::ptr_eq(old, new) {
                        match self.cache.get(p, new, &self.view) {
                            Some(_) => self.carried += 1,
                            None => self.skipped += 1,
                        }
                        continue;
                    }
                    let was = self.cache.get(p, old, &self.view);
                    match (was, self.cache.get(p, new, &self.view)) {
                        (Some(a), Some(b)) => {
                            self.carried += 1;
                            if !(Arc::ptr_eq(&a, &b) || a == b) {
                                return Some(Change::Announce(*p, b));
                            }
                        }
                        (None, Some(b)) => {
                            self.carried += 1;
                            return Some(Change::Announce(*p, b));
                        }
                        (Some(_), None) => {
                            self.skipped += 1;
                            return Some(Change::Withdraw(*p));
                        }
                        (None, None) => self.skipped += 1,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Families;

    fn view() -> SessionView {
        SessionView {
            local_as: 65001,
            ibgp: false,
            local_addr: "192.0.2.1".parse().expect("addr"),
            families: Families::IPV4_IPV6_UNICAST,
        }
    }

    #[test]
    fn cache_shares_one_attribute_set_between_prefixes() {
        let route = Arc::new(Route::default());
        let mut cache = AttrCache::default();
        let a = cache.get(&"198.51.100.1/32".parse().expect("net"), &route, &view());
        let b = cache.get(&"198.51.100.2/32".parse().expect("net"), &route, &view());
        assert!(a.is_some());
        assert!(Arc::ptr_eq(&a.clone().expect("a"), &b.expect("b")));
        // No IPv6 next hop on an IPv4 session without one configured: not carried.
        assert!(cache
            .get(&"2001:db8::1/128".parse().expect("net"), &route, &view())
            .is_none());
    }

    #[test]
    fn ebgp_gets_our_as_and_no_local_pref_ibgp_gets_local_pref() {
        let route = Route {
            local_pref: Some(200),
            ..Route::default()
        };
        let p: IpNet = "198.51.100.1/32".parse().expect("net");
        let e = attributes_for(&p, &route, &view()).expect("carried");
        assert_eq!(e.attrs.local_pref, None);
        assert_eq!(e.attrs.as_path, Some(AsPath::sequence(vec![65001])));
        let i = attributes_for(
            &p,
            &route,
            &SessionView {
                ibgp: true,
                ..view()
            },
        )
        .expect("carried");
        assert_eq!(i.attrs.local_pref, Some(200));
        assert_eq!(i.attrs.as_path, Some(AsPath::default()));
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
        let mut cache = AttrCache::default();
        let rib = AdjRibOut::default();
        let mut d = rib.diff(&desired, &mut cache, view());
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
        let mut cache = AttrCache::default();
        let mut cache2 = AttrCache::default();
        let mut d = rib.diff(&new, &mut cache2, view());
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
        assert_eq!(
            rib.diff(&new, &mut cache, view()).count(),
            0,
            "same state twice"
        );
    }
}
