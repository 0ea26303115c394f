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
}

impl AttrCache {
    /// The attributes of `route` for `prefix` on session `s` (`None`: cannot be carried).
    pub fn get(
        &mut self,
        prefix: &IpNet,
        route: &Arc<Route>,
        s: &SessionView,
    ) -> Option<Arc<RouteAttributes>> {
        let key = (Arc::clone(route), matches!(prefix, IpNet::V4(_)));
        self.map
            .entry(key)
            .or_insert_with(|| attributes_for(prefix, route, s).map(Arc::new))
            .clone()
    }
}

/// What was sent to one peer: prefix → shared attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdjRibOut {
    sent: BTreeMap<IpNet, Arc<RouteAttributes>>,
}

impl AdjRibOut {
    /// The routes sent.
    pub fn routes(&self) -> &BTreeMap<IpNet, Arc<RouteAttributes>> {
        &self.sent
    }

    /// The attributes sent for `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<&Arc<RouteAttributes>> {
        self.sent.get(prefix)
    }

    /// Whether `attrs` for `prefix` is what was sent already (the diff's test).
    pub fn has(&self, prefix: &IpNet, attrs: &Arc<RouteAttributes>) -> bool {
        self.sent
            .get(prefix)
            .is_some_and(|a| Arc::ptr_eq(a, attrs) || a == attrs)
    }

    /// Number of prefixes announced.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether nothing is announced.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Records an announcement.
    pub fn insert(&mut self, prefix: IpNet, attrs: Arc<RouteAttributes>) {
        self.sent.insert(prefix, attrs);
    }

    /// Records many announcements at once. `BTreeMap::append` rebuilds the tree from two sorted
    /// runs with full nodes, about half the memory of one-by-one inserts of ascending keys.
    pub fn insert_batch(&mut self, batch: &mut BTreeMap<IpNet, Arc<RouteAttributes>>) {
        self.sent.append(batch);
    }

    /// Records a withdrawal.
    pub fn remove(&mut self, prefix: &IpNet) {
        self.sent.remove(prefix);
    }

    /// The prefixes sent that `routes` no longer has, or that this session can no longer
    /// carry.
    pub fn stale(&self, routes: &Routes, cache: &mut AttrCache, s: &SessionView) -> Vec<IpNet> {
        self.sent
            .keys()
            .filter(|p| routes.get(p).and_then(|r| cache.get(p, r, s)).is_none())
            .copied()
            .collect()
    }

    /// Forgets everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.sent.clear();
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

    #[test]
    fn stale_lists_removed_prefixes_only() {
        let route = Arc::new(Route::default());
        let mut cache = AttrCache::default();
        let mut rib = AdjRibOut::default();
        let p1: IpNet = "198.51.100.1/32".parse().expect("net");
        let p2: IpNet = "198.51.100.2/32".parse().expect("net");
        for p in [p1, p2] {
            let a = cache.get(&p, &route, &view()).expect("carried");
            rib.insert(p, a);
        }
        let routes: Routes = [(p1, Arc::clone(&route))].into();
        assert_eq!(rib.stale(&routes, &mut cache, &view()), vec![p2]);
        let a = cache.get(&p1, &route, &view()).expect("carried");
        assert!(rib.has(&p1, &a));
    }
}
