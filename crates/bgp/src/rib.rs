//! Desired routes and the per-peer Adj-RIB-Out (RFC 4271 §3.2). Pure: no I/O.
//!
//! The caller's [`Route`]s are turned into wire attributes per session
//! ([`attributes_for`]: AS_PATH, NEXT_HOP, LOCAL_PREF only towards iBGP), and [`AdjRibOut`]
//! keeps what was last sent so [`AdjRibOut::diff`] yields only the difference: setting the
//! same desired state twice yields nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

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

/// The desired routes: prefix → route.
pub type Routes = BTreeMap<IpNet, Route>;

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

/// The wire form of all `routes` for a session; prefixes it cannot carry are left out and
/// counted.
pub fn desired_for(routes: &Routes, s: &SessionView) -> (BTreeMap<IpNet, RouteAttributes>, usize) {
    let mut skipped = 0;
    let mut out = BTreeMap::new();
    for (prefix, route) in routes {
        match attributes_for(prefix, route, s) {
            Some(a) => {
                out.insert(*prefix, a);
            }
            None => skipped += 1,
        }
    }
    (out, skipped)
}

/// What was sent to one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdjRibOut {
    sent: BTreeMap<IpNet, RouteAttributes>,
}

/// The change to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RibDiff {
    /// New or changed routes.
    pub announce: BTreeMap<IpNet, RouteAttributes>,
    /// Prefixes to withdraw.
    pub withdraw: BTreeSet<IpNet>,
}

impl RibDiff {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }
}

impl AdjRibOut {
    /// The routes sent.
    pub fn routes(&self) -> &BTreeMap<IpNet, RouteAttributes> {
        &self.sent
    }

    /// Number of prefixes announced.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether nothing is announced.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The difference from what was sent to `desired`.
    pub fn diff(&self, desired: &BTreeMap<IpNet, RouteAttributes>) -> RibDiff {
        let announce = desired
            .iter()
            .filter(|(p, a)| self.sent.get(p) != Some(a))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        let withdraw = self
            .sent
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        RibDiff { announce, withdraw }
    }

    /// Records that `diff` was sent.
    pub fn apply(&mut self, diff: &RibDiff) {
        for p in &diff.withdraw {
            self.sent.remove(p);
        }
        for (p, a) in &diff.announce {
            self.sent.insert(*p, a.clone());
        }
    }

    /// Forgets everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.sent.clear();
    }
}
