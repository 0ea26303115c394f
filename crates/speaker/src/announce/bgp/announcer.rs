//! [`BgpAnnouncer`]: the plan of [`compute_bgp`](super::compute_bgp) kept up to date one Service
//! at a time.
//!
//! A change to one Service (its object or its EndpointSlices) can only change that Service's
//! report and the routes it asks for; everything else in the plan depends on the configuration
//! and this node's Node, which the caller reports as [`ChangeSet::all`]. So the announcer keeps,
//! per Service, the routes it asked for, and per (peer, prefix) the attribute sets asked with a
//! count: replacing one Service's asks touches only the (peer, prefix) pairs it asked for before
//! or asks for now, and each of those is merged again from what the remaining Services ask
//! (rule 7 of [`super`]: a prefix shared by several Services stays until the last one goes; the
//! highest LOCAL_PREF wins and a disagreement is a [`RouteConflict`]).
//!
//! Merging is commutative and associative (set unions and maxima), which is why the result
//! cannot depend on the order Services were added in and equals the full computation;
//! `tests/announce_incremental.rs` checks exactly that after random change sequences.

// Inputs come from users and the API server: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ferrolb_api::model::Config;
use ipnet::IpNet;

use super::{
    merge_attrs_times, scale_link_bandwidth, shared, skip_all, BgpDesired, PeerAnnouncement,
    PeerName, PlanCtx, Route, RouteConflict, ServiceStatus,
};
use crate::announce::change::ChangeSet;
use crate::announce::input::{Cluster, ServiceKey};
use crate::announce::reason::SkipReason;
use crate::announce::SpeakerOptions;

/// One route one Service asks for: the peer (its index among the applying peers), the prefix
/// and the attributes one advertisement gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ask {
    peer: u32,
    prefix: IpNet,
    attrs: Arc<Route>,
}

/// The distinct attribute sets asked for one (peer, prefix), each with how many times it is
/// asked (by every Service and advertisement together). Nearly every prefix is asked for with
/// one set, so that case holds no separate allocation.
#[derive(Debug, Clone)]
enum Asked {
    One(Arc<Route>, u32),
    Many(Vec<(Arc<Route>, u32)>),
}

impl Asked {
    fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        let (one, many) = match self {
            Asked::One(attrs, _) => (Some(attrs), &[][..]),
            Asked::Many(list) => (None, list.as_slice()),
        };
        one.into_iter().chain(many.iter().map(|(attrs, _)| attrs))
    }

    /// One more ask of `attrs`.
    fn add(&mut self, attrs: &Arc<Route>) {
        match self {
            Asked::One(existing, count) if existing == attrs => *count += 1,
            Asked::One(existing, count) => {
                *self = Asked::Many(vec![(Arc::clone(existing), *count), (Arc::clone(attrs), 1)]);
            }
            Asked::Many(list) => match list.iter_mut().find(|(a, _)| a == attrs) {
                Some((_, count)) => *count += 1,
                None => list.push((Arc::clone(attrs), 1)),
            },
        }
    }

    /// One ask of `attrs` fewer; `false` when nothing is asked any more.
    fn remove(&mut self, attrs: &Arc<Route>) -> bool {
        match self {
            Asked::One(existing, count) => {
                if existing == attrs {
                    *count = count.saturating_sub(1);
                }
                *count > 0
            }
            Asked::Many(list) => {
                if let Some(pos) = list.iter().position(|(a, _)| a == attrs) {
                    if let Some((_, count)) = list.get_mut(pos) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            list.swap_remove(pos);
                        }
                    }
                }
                match list.as_slice() {
                    [] => false,
                    [(attrs, count)] => {
                        *self = Asked::One(Arc::clone(attrs), *count);
                        true
                    }
                    _ => true,
                }
            }
        }
    }

    /// Each distinct attribute set with how many times it is asked.
    fn counted(&self) -> impl Iterator<Item = (&Arc<Route>, u32)> {
        let (one, many) = match self {
            Asked::One(attrs, count) => (Some((attrs, *count)), &[][..]),
            Asked::Many(list) => (None, list.as_slice()),
        };
        one.into_iter()
            .chain(many.iter().map(|(attrs, count)| (attrs, *count)))
    }

    /// Rules 7 and 9: the route announced, merged from every attribute set asked, a link
    /// bandwidth counted as often as it is asked (Services sharing a prefix add up).
    fn merged(&self) -> Route {
        let mut sets = self.counted();
        let mut merged = match sets.next() {
            Some((attrs, count)) => {
                let mut first = Route::clone(attrs);
                scale_link_bandwidth(&mut first, count);
                first
            }
            None => Route::default(),
        };
        for (other, count) in sets {
            merge_attrs_times(&mut merged, other, count);
        }
        merged
    }

    /// The LOCAL_PREF values asked for, when they disagree (rule 7's conflict).
    fn conflicting_local_prefs(&self) -> Option<BTreeSet<Option<u32>>> {
        let asked: BTreeSet<Option<u32>> = self.iter().map(|a| a.local_pref).collect();
        (asked.len() > 1).then_some(asked)
    }
}

/// The BGP plan of this node, kept up to date by [`update`](Self::update) with what changed.
///
/// After any sequence of updates, [`desired`](Self::desired), [`statuses`](Self::statuses) and
/// [`conflicts`](Self::conflicts) equal the fields of the [`BgpPlan`](super::BgpPlan) that
/// [`compute_bgp`](super::compute_bgp) gives for the last inputs, provided every change was
/// reported: the configuration and Nodes as [`ChangeSet::all`], a Service or its
/// EndpointSlices by naming the Service.
#[derive(Debug, Clone)]
pub struct BgpAnnouncer {
    opts: SpeakerOptions,
    state: State,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// A full computation has been done; until then every update is one.
    built: bool,
    desired: BgpDesired,
    statuses: BTreeMap<ServiceKey, ServiceStatus>,
    conflicts: BTreeSet<RouteConflict>,
    /// The applying peers' names; an [`Ask`]'s peer indexes it, and `asks`.
    peer_names: Vec<PeerName>,
    /// Per applying peer, per prefix: what the Services ask for.
    asks: Vec<BTreeMap<IpNet, Asked>>,
    /// The routes each Service asks for, in the order they were decided; Services that ask for
    /// none are left out.
    contributions: HashMap<ServiceKey, Box<[Ask]>>,
    /// The distinct attribute sets in use, each allocated once (as in the full computation).
    /// Rebuilt on every full recompute, so sets no longer used do not pile up.
    attr_sets: BTreeSet<Arc<Route>>,
}

impl BgpAnnouncer {
    /// An announcer with nothing computed yet; the first [`update`](Self::update) should say
    /// [`ChangeSet::all`].
    pub fn new(opts: SpeakerOptions) -> Self {
        Self {
            opts,
            state: State::default(),
        }
    }

    /// Brings the plan up to date with (`config`, `cluster`) given what changed since the last
    /// call; returns the Services whose status changed (added, removed or different), in key
    /// order.
    pub fn update(
        &mut self,
        config: &Config,
        cluster: &Cluster,
        changed: &ChangeSet,
    ) -> Vec<ServiceKey> {
        if changed.all || !self.state.built {
            let old = std::mem::take(&mut self.state);
            self.state = State::build(config, cluster, &self.opts, &old.peer_names);
            return changed_statuses(&old.statuses, &self.state.statuses);
        }
        let mut out = Vec::new();
        let ctx = PlanCtx::new(config, cluster, &self.opts, &self.state.peer_names);
        for key in &changed.services {
            let new = cluster.services.get(key).map(|svc| match &ctx {
                // MetalLB starts no session before it has seen its Node's labels.
                None => (ServiceStatus::Skipped(SkipReason::NodeNotFound), Vec::new()),
                Some(ctx) => {
                    let mut asked = Vec::new();
                    let status = ctx.service_status(
                        svc,
                        || cluster.serving_nodes(key),
                        || cluster.ready_on_node(key, &self.opts.node_name),
                        &mut |peer, _, prefix, attrs| asked.push((peer, prefix, attrs)),
                    );
                    (status, asked)
                }
            });
            let state = &mut self.state;
            let (status, asked) = new.unzip();
            let asks = asked
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(peer, prefix, attrs)| {
                    Some(Ask {
                        peer: u32::try_from(peer).ok()?,
                        prefix,
                        attrs: shared(&mut state.attr_sets, attrs),
                    })
                })
                .collect();
            state.replace_asks(key, asks);
            let old = match status {
                Some(status) => state.statuses.insert(key.clone(), status),
                None => state.statuses.remove(key),
            };
            if old.as_ref() != state.statuses.get(key) {
                out.push(key.clone());
            }
        }
        out
    }

    /// An announcer whose last report is `statuses` and that has computed nothing yet (the
    /// status file's tests).
    #[cfg(test)]
    pub(crate) fn with_statuses(
        opts: SpeakerOptions,
        statuses: BTreeMap<ServiceKey, ServiceStatus>,
    ) -> Self {
        let mut announcer = Self::new(opts);
        announcer.state.statuses = statuses;
        announcer
    }

    /// The routes and sessions this node wants, as [`BgpPlan::desired`](super::BgpPlan).
    pub fn desired(&self) -> &BgpDesired {
        &self.state.desired
    }

    /// Every Service of the cluster and what happened to it, as
    /// [`BgpPlan::services`](super::BgpPlan).
    pub fn statuses(&self) -> &BTreeMap<ServiceKey, ServiceStatus> {
        &self.state.statuses
    }

    /// LOCAL_PREF disagreements resolved by taking the highest value, as
    /// [`BgpPlan::conflicts`](super::BgpPlan).
    pub fn conflicts(&self) -> &BTreeSet<RouteConflict> {
        &self.state.conflicts
    }
}

impl State {
    /// The whole plan from scratch; `known_names` are the previous peer names, reused.
    fn build(
        config: &Config,
        cluster: &Cluster,
        opts: &SpeakerOptions,
        known_names: &[PeerName],
    ) -> Self {
        let mut state = State {
            built: true,
            ..State::default()
        };
        let Some(ctx) = PlanCtx::new(config, cluster, opts, known_names) else {
            state.statuses = skip_all(cluster, SkipReason::NodeNotFound);
            return state;
        };
        state.peer_names = ctx.peers.iter().map(|p| p.name.clone()).collect();

        let endpoints = cluster.endpoint_index();
        let mut statuses = Vec::with_capacity(cluster.services.len());
        let mut all_asks: Vec<(u32, IpNet, Arc<Route>)> = Vec::new();
        let mut contributions = Vec::new();
        for (key, svc) in &cluster.services {
            let mut asks = Vec::new();
            let status = ctx.service_status(
                svc,
                || endpoints.serving_nodes(key),
                || endpoints.ready_on_node(key, &opts.node_name),
                &mut |peer, _, prefix, attrs| {
                    if let Ok(peer) = u32::try_from(peer) {
                        let attrs = shared(&mut state.attr_sets, attrs);
                        all_asks.push((peer, prefix, Arc::clone(&attrs)));
                        asks.push(Ask {
                            peer,
                            prefix,
                            attrs,
                        });
                    }
                },
            );
            if !asks.is_empty() {
                contributions.push((key.clone(), asks.into_boxed_slice()));
            }
            statuses.push((key.clone(), status));
        }
        // Maps built in one go from sorted input keep their B-tree nodes full (see
        // `Cluster::from_objects`); these live until the next full recompute.
        state.statuses = statuses.into_iter().collect();
        state.contributions = contributions.into_iter().collect();

        all_asks.sort_by_key(|a| (a.0, a.1));
        let mut per_peer: Vec<Vec<(IpNet, Asked)>> = vec![Vec::new(); ctx.peers.len()];
        for (peer, prefix, attrs) in all_asks {
            let Some(list) = usize::try_from(peer).ok().and_then(|i| per_peer.get_mut(i)) else {
                continue;
            };
            match list.last_mut() {
                Some((last, asked)) if *last == prefix => asked.add(&attrs),
                _ => list.push((prefix, Asked::One(attrs, 1))),
            }
        }
        let mut peers = BTreeMap::new();
        for (applying, asks) in ctx.peers.iter().zip(&per_peer) {
            let mut routes = Vec::with_capacity(asks.len());
            for (prefix, asked) in asks {
                routes.push((*prefix, shared(&mut state.attr_sets, asked.merged())));
                if let Some(local_prefs) = asked.conflicting_local_prefs() {
                    state
                        .conflicts
                        .insert(conflict(&applying.name, *prefix, local_prefs));
                }
            }
            let announcement = PeerAnnouncement {
                session: applying.peer.clone(),
                routes: routes.into_iter().collect(),
            };
            peers.insert(applying.peer.name.clone(), Arc::new(announcement));
        }
        state.desired.peers = peers;
        state.asks = per_peer
            .into_iter()
            .map(|asks| asks.into_iter().collect())
            .collect();
        state
    }

    /// Replaces what `key` asks for with `asks`, and brings every route either touches up to
    /// date.
    fn replace_asks(&mut self, key: &ServiceKey, asks: Vec<Ask>) {
        let old = self.contributions.remove(key).unwrap_or_default();
        if *old == *asks {
            if !old.is_empty() {
                self.contributions.insert(key.clone(), old);
            }
            return;
        }
        let mut touched = BTreeSet::new();
        for ask in old.iter() {
            let Some(per_prefix) = usize::try_from(ask.peer)
                .ok()
                .and_then(|i| self.asks.get_mut(i))
            else {
                continue;
            };
            if let Some(asked) = per_prefix.get_mut(&ask.prefix) {
                if !asked.remove(&ask.attrs) {
                    per_prefix.remove(&ask.prefix);
                }
            }
            touched.insert((ask.peer, ask.prefix));
        }
        for ask in &asks {
            let Some(per_prefix) = usize::try_from(ask.peer)
                .ok()
                .and_then(|i| self.asks.get_mut(i))
            else {
                continue;
            };
            per_prefix
                .entry(ask.prefix)
                .and_modify(|asked| asked.add(&ask.attrs))
                .or_insert_with(|| Asked::One(Arc::clone(&ask.attrs), 1));
            touched.insert((ask.peer, ask.prefix));
        }
        if !asks.is_empty() {
            self.contributions
                .insert(key.clone(), asks.into_boxed_slice());
        }
        for (peer, prefix) in touched {
            self.refresh(peer, prefix);
        }
    }

    /// Sets the route to `prefix` towards peer `peer` and its conflict from what is asked now.
    fn refresh(&mut self, peer: u32, prefix: IpNet) {
        let Some(index) = usize::try_from(peer).ok() else {
            return;
        };
        let (Some(name), Some(per_prefix)) = (self.peer_names.get(index), self.asks.get(index))
        else {
            return;
        };
        let Some(announcement) = self.desired.peers.get_mut(&**name) else {
            return;
        };
        let asked = per_prefix.get(&prefix);
        match asked {
            None => {
                if announcement.routes.contains_key(&prefix) {
                    // Copies the route map only when a clone of the plan still holds it.
                    Arc::make_mut(announcement).routes.remove(&prefix);
                }
            }
            Some(asked) => {
                let merged = asked.merged();
                if announcement.routes.get(&prefix).map(|r| &**r) != Some(&merged) {
                    let merged = shared(&mut self.attr_sets, merged);
                    Arc::make_mut(announcement).routes.insert(prefix, merged);
                }
            }
        }

        let wanted = asked
            .and_then(Asked::conflicting_local_prefs)
            .map(|local_prefs| conflict(name, prefix, local_prefs));
        if wanted.is_none() && self.conflicts.is_empty() {
            return;
        }
        // At most one conflict per (peer, prefix); it sorts at or after this bound.
        let bound = RouteConflict {
            peer: name.to_string(),
            prefix,
            local_prefs: BTreeSet::new(),
            chosen: None,
        };
        let current = self
            .conflicts
            .range(&bound..)
            .next()
            .filter(|c| c.peer == bound.peer && c.prefix == prefix)
            .cloned();
        if current != wanted {
            if let Some(current) = current {
                self.conflicts.remove(&current);
            }
            if let Some(wanted) = wanted {
                self.conflicts.insert(wanted);
            }
        }
    }
}

/// The conflict report of `prefix` towards `peer` asked with `local_prefs`.
fn conflict(peer: &str, prefix: IpNet, local_prefs: BTreeSet<Option<u32>>) -> RouteConflict {
    let chosen = local_prefs.iter().max().copied().flatten();
    RouteConflict {
        peer: peer.to_string(),
        prefix,
        local_prefs,
        chosen,
    }
}

/// The keys whose value differs between `old` and `new` (present in one only, or different),
/// in key order.
pub(crate) fn changed_statuses<V: PartialEq>(
    old: &BTreeMap<ServiceKey, V>,
    new: &BTreeMap<ServiceKey, V>,
) -> Vec<ServiceKey> {
    let mut out = Vec::new();
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((ka, _)), None) => {
                out.push((*ka).clone());
                a.next();
            }
            (None, Some((kb, _))) => {
                out.push((*kb).clone());
                b.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    out.push((*ka).clone());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push((*kb).clone());
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        out.push((*ka).clone());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    out
}
