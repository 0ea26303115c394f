//! BGP mode: which peers this node talks to and which routes it sends each of them.
//!
//! The rules, in the order they are applied (MetalLB speaker `bgp_controller.go` and
//! `ShouldAnnounce`):
//!
//! 1. A BGPPeer applies to this node when its `nodeSelectors` are empty or any matches the
//!    node's labels. Applying peers are in the plan even with no route (the session stays up).
//! 2. A Service is considered when it is `type: LoadBalancer`, of our `loadBalancerClass`, and has
//!    an IP in its status.
//! 3. Nothing is announced from a node that has `NetworkUnavailable` or carries the
//!    exclude-from-external-load-balancers label (unless `ignore_exclude_lb`). A cordoned or
//!    not-Ready node still announces ([`crate::announce::node_gate`]).
//! 4. `externalTrafficPolicy: Local` needs an endpoint on this node that can serve; `Cluster`
//!    needs one anywhere ([`crate::announce::input::Endpoint::can_serve`]).
//! 5. Per VIP: its pool must be selected by BGPAdvertisements; of those, the ones whose
//!    `nodeSelectors` match this node and whose `serviceSelectors` match the Service apply.
//! 6. Each applying advertisement sends, to every applying peer it names (all when `peers` is
//!    empty), the VIP masked to `aggregationLength` (`aggregationLengthV6` for IPv6): the default
//!    32/128 gives a host route, a shorter length the covering aggregate (MetalLB
//!    `lbIP.Mask(CIDRMask(len))`). A session only gets its peer address's family unless
//!    `dualStackAddressFamily` is set or it is unnumbered ([`PeerSkip::FamilyNotCarried`]).
//! 7. Routes for the same prefix and peer merge as MetalLB's FRR backend merges them
//!    (`mergeAdvertisements`): communities and large communities are unioned; LOCAL_PREF, sent to
//!    iBGP peers only (RFC 4271 §5.1.5: "MUST NOT include this attribute in UPDATE messages it
//!    sends to external peers"), must agree. MetalLB rejects a disagreement; we keep announcing
//!    with the highest value and report a [`RouteConflict`] so the daemon can log it.
//! 8. The next hop is the session's local address ([`NextHop::SessionLocal`]) when the route
//!    has the family of the session (none of the MetalLB CRDs configures another one). A route
//!    of the other family (`dualStackAddressFamily`) cannot use it: RFC 4760 §3 wants a next hop
//!    of the NLRI's family (for IPv6 a global address, RFC 2545 §3), so it gets
//!    [`NextHop::Explicit`] with this Node's first non-link-local `InternalIP` of that family
//!    (`status.addresses`, sorted). A node with none does not send the VIP to that peer
//!    ([`PeerSkip::NoNextHopForFamily`]), so the report never claims a route the BGP layer would
//!    drop. Unnumbered (`interface`) sessions keep the session's address (RFC 8950 territory).
//! 9. FerroLB only: an advertisement annotated `ferrolb.io/weighted-ecmp: endpoints` adds a
//!    link bandwidth extended community (draft-ietf-idr-link-bandwidth) of
//!    [`BANDWIDTH_PER_ENDPOINT`] per ready, non-terminating endpoint of the Service on this node
//!    (`externalTrafficPolicy: Local`), or of one endpoint's worth (`Cluster`: every node
//!    forwards to every endpoint, so all carry the same value). Routers with multipath install
//!    the nodes as next hops weighted in that proportion. Each Service adds its value once per
//!    peer and prefix, however many advertisements or VIPs of it ask for the prefix, and the
//!    values of the Services sharing a prefix add up (rule 7 merges by summing them). The AS
//!    field is the session's local AS (AS_TRANS when it needs four octets).

// Inputs come from users and the API server: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_api::model::{BgpAdvertisement, BgpCommunity, BgpPeer, Config, IpFamily, WeightedEcmp};
use ferrolb_api::selector::any_matches;
use ipnet::IpNet;

use super::input::{Cluster, Node, Service, ServiceKey, SmolStr, TrafficPolicy};
use super::reason::{PeerSkip, SkipReason};
use super::{node_gate, service_gate, SpeakerOptions};

mod announcer;
pub(crate) use announcer::changed_statuses;
pub use announcer::BgpAnnouncer;

/// The route type is crates/bgp's, from this computation to the UPDATE packer: a
/// [`NextHop`] (rule 8), communities and large communities as sorted sets (rule 7), and
/// LOCAL_PREF, always `None` towards eBGP peers here; towards iBGP peers `None` means "not
/// configured" and the BGP layer sends its default (RFC 4271 §5.1.5).
pub use ferrolb_bgp::rib::{NextHop, Route};
use ferrolb_bgp::wire::{Community, ExtendedCommunity, LargeCommunity};

/// The link bandwidth one endpoint is worth (rule 9), in bytes per second: 1 Mbit/s, so FRR's
/// `show bgp` prints a node's endpoint count as its Mbps, and an operator's own
/// `set extcommunity bandwidth N` (N in Mbit/s) on other routes means N endpoints' worth.
/// Only the proportion between nodes matters to weighted ECMP; counts up to 1072 endpoints on
/// a node are exact in the community's 32-bit float.
pub const BANDWIDTH_PER_ENDPOINT: f64 = 125_000.0;

/// One peer's session settings and the complete set of routes it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAnnouncement {
    /// The BGPPeer as configured (address, ASNs, timers, password, ...).
    pub session: BgpPeer,
    /// Every prefix this node sends to the peer. Anything not here must be withdrawn.
    ///
    /// Routes with equal attributes share one `Arc`: the VIPs of one pool and advertisement
    /// all carry the same attributes, so 10k routes hold a handful of sets, and an entry is a
    /// prefix and a pointer (inline attributes made this map ~1.8 MiB at 10k; docs/speaker.md).
    pub routes: BTreeMap<IpNet, Arc<Route>>,
}

/// The desired BGP state of this node: peer name -> session and routes. This is the value the BGP
/// [`crate::advertiser::Advertiser`] is given; it replaces the previous one whole.
///
/// Each peer's announcement sits behind an `Arc`, so the copy the reconciler keeps to compare
/// against and the one the backend converges to share their route maps (at 10k VIPs one copy
/// is ~1.8 MiB; docs/speaker.md). Cloning a `BgpDesired` copies only the peer names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BgpDesired {
    pub peers: BTreeMap<String, Arc<PeerAnnouncement>>,
}

/// A peer's name as the statuses hold it: one allocation per peer, shared by every VIP's report.
pub type PeerName = Arc<str>;

/// What happened to one VIP of a Service on this node.
///
/// Compact on purpose: one per announced VIP is kept for as long as the Service exists, so
/// lists are boxed slices sorted by name, not B-trees (a one-element B-tree allocates a whole
/// 11-slot node; that made the reports 16.6 MiB at 10k Services, docs/speaker.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipStatus {
    /// Announced to `peers` (by name) as `prefixes`.
    Announced {
        /// The announced prefix: the VIP itself or its aggregate (several when advertisements
        /// differ in aggregation length). Sorted, no duplicates.
        prefixes: Box<[IpNet]>,
        /// Sorted, no duplicates.
        peers: Box<[PeerName]>,
        /// Applying peers that do not get it, and why; sorted by peer name.
        skipped_peers: Box<[(PeerName, PeerSkip)]>,
    },
    /// Not announced to any peer.
    NotAnnounced {
        reason: SkipReason,
        /// Filled for [`SkipReason::NoPeer`]: each applying peer and why it was skipped, sorted
        /// by peer name.
        skipped_peers: Box<[(PeerName, PeerSkip)]>,
    },
}

impl VipStatus {
    /// The peers it is announced to (empty when not announced).
    pub fn peers(&self) -> &[PeerName] {
        match self {
            VipStatus::Announced { peers, .. } => peers,
            VipStatus::NotAnnounced { .. } => &[],
        }
    }

    /// The applying peers that do not get it, and why.
    pub fn skipped_peers(&self) -> &[(PeerName, PeerSkip)] {
        match self {
            VipStatus::Announced { skipped_peers, .. }
            | VipStatus::NotAnnounced { skipped_peers, .. } => skipped_peers,
        }
    }
}

/// Per-VIP reports of one Service, sorted by VIP (a small sorted list, see [`VipStatus`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VipStatuses(Box<[(IpAddr, VipStatus)]>);

impl VipStatuses {
    /// The report of `vip`.
    pub fn get(&self, vip: &IpAddr) -> Option<&VipStatus> {
        self.0
            .binary_search_by(|(ip, _)| ip.cmp(vip))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, status)| status)
    }

    /// `(vip, report)` in VIP order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &VipStatus)> {
        self.0.iter().map(|(ip, status)| (ip, status))
    }

    /// The reports in VIP order.
    pub fn values(&self) -> impl Iterator<Item = &VipStatus> {
        self.0.iter().map(|(_, status)| status)
    }

    /// Number of VIPs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No VIP.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(IpAddr, VipStatus)> for VipStatuses {
    /// Sorted by VIP; of two reports for one VIP the last is kept.
    fn from_iter<I: IntoIterator<Item = (IpAddr, VipStatus)>>(iter: I) -> Self {
        let map: BTreeMap<IpAddr, VipStatus> = iter.into_iter().collect();
        Self(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a VipStatuses {
    type Item = (&'a IpAddr, &'a VipStatus);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (IpAddr, VipStatus)>,
        fn(&'a (IpAddr, VipStatus)) -> (&'a IpAddr, &'a VipStatus),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(ip, status)| (ip, status))
    }
}

/// What happened to one Service on this node, for ServiceBGPStatus and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceStatus {
    /// Nothing of the Service is announced, for one reason that covers all its VIPs.
    Skipped(SkipReason),
    /// Decided per VIP.
    Vips(VipStatuses),
}

impl ServiceStatus {
    /// Names of the peers any VIP of the Service is announced to (ServiceBGPStatus `peers`).
    pub fn peers(&self) -> BTreeSet<String> {
        match self {
            ServiceStatus::Skipped(_) => BTreeSet::new(),
            ServiceStatus::Vips(vips) => vips
                .values()
                .flat_map(VipStatus::peers)
                .map(|name| name.to_string())
                .collect(),
        }
    }
}

/// Two advertisements asked for different LOCAL_PREFs for the same prefix and peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteConflict {
    pub peer: String,
    pub prefix: IpNet,
    /// Every value asked for (`None` = an advertisement without `localPref`).
    pub local_prefs: BTreeSet<Option<u32>>,
    /// The value announced: the highest.
    pub chosen: Option<u32>,
}

/// The result of [`compute_bgp`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BgpPlan {
    pub desired: BgpDesired,
    /// Every Service of the cluster, announced or not.
    pub services: BTreeMap<ServiceKey, ServiceStatus>,
    /// LOCAL_PREF disagreements resolved by taking the highest value.
    pub conflicts: BTreeSet<RouteConflict>,
}

/// Computes the BGP plan of node `opts.node_name`. Pure and total: never fails, never panics.
///
/// The reference computation: [`BgpAnnouncer`] keeps the same plan up to date one Service at a
/// time and must always agree with it (`tests/announce_incremental.rs`).
pub fn compute_bgp(config: &Config, cluster: &Cluster, opts: &SpeakerOptions) -> BgpPlan {
    let mut plan = BgpPlan::default();
    let Some(ctx) = PlanCtx::new(config, cluster, opts, &[]) else {
        // MetalLB starts no session before it has seen its Node's labels.
        plan.services = skip_all(cluster, SkipReason::NodeNotFound);
        return plan;
    };

    let announcements: BTreeMap<String, PeerAnnouncement> = ctx
        .peers
        .iter()
        .map(|p| {
            let announcement = PeerAnnouncement {
                session: p.peer.clone(),
                routes: BTreeMap::new(),
            };
            (p.peer.name.clone(), announcement)
        })
        .collect();

    let mut table = PeerRoutes {
        announcements,
        asked_local_prefs: BTreeMap::new(),
        attr_sets: BTreeSet::new(),
    };
    let endpoints = cluster.endpoint_index();
    // Collected, then built in one go: a B-tree filled by in-order inserts keeps its nodes
    // half full, and these maps are kept until the next snapshot (~0.8 MiB at 10k).
    let mut services = Vec::with_capacity(cluster.services.len());
    for (key, svc) in &cluster.services {
        let status = ctx.service_status(
            svc,
            || endpoints.serving_nodes(&svc.key),
            || endpoints.ready_on_node(&svc.key, &opts.node_name),
            &mut |_, peer, prefix, attrs| table.add(&peer.peer.name, prefix, attrs),
        );
        services.push((key.clone(), status));
    }
    plan.services = services.into_iter().collect();
    let PeerRoutes {
        announcements,
        asked_local_prefs,
        ..
    } = table;
    plan.desired.peers = announcements
        .into_iter()
        .map(|(name, mut announcement)| {
            announcement.routes = std::mem::take(&mut announcement.routes)
                .into_iter()
                .collect();
            (name, Arc::new(announcement))
        })
        .collect();

    for ((peer, prefix), asked) in asked_local_prefs {
        if asked.len() > 1 {
            let chosen = asked.iter().max().copied().flatten();
            plan.conflicts.insert(RouteConflict {
                peer,
                prefix,
                local_prefs: asked,
                chosen,
            });
        }
    }
    plan
}

/// Where the routes of one Service go as they are decided: the index of the peer in
/// [`PlanCtx::peers`], the peer, the prefix and the attributes one advertisement asks for.
pub(crate) type RouteSink<'s, 'c> = dyn FnMut(usize, &ApplyingPeer<'c>, IpNet, Route) + 's;

/// What every Service's decision reads besides the Service itself: the parts of the plan that
/// change only with the configuration or this node's Node object.
pub(crate) struct PlanCtx<'c> {
    config: &'c Config,
    node: &'c Node,
    opts: &'c SpeakerOptions,
    /// Rule 1: the BGPPeers that apply to this node, in name order.
    pub(crate) peers: Vec<ApplyingPeer<'c>>,
}

impl<'c> PlanCtx<'c> {
    /// The context of `opts.node_name`, or `None` while its Node is unknown. Peer names equal
    /// to one in `known_names` reuse that allocation, so statuses computed at different times
    /// still share one name per peer.
    pub(crate) fn new(
        config: &'c Config,
        cluster: &'c Cluster,
        opts: &'c SpeakerOptions,
        known_names: &[PeerName],
    ) -> Option<Self> {
        let node = cluster.nodes.get(opts.node_name.as_str())?;
        let peers = config
            .bgp_peers
            .values()
            .filter(|p| any_matches(&p.node_selectors, &node.labels))
            .map(|peer| ApplyingPeer {
                peer,
                name: known_names
                    .iter()
                    .find(|known| ***known == *peer.name)
                    .cloned()
                    .unwrap_or_else(|| PeerName::from(peer.name.as_str())),
            })
            .collect();
        Some(Self {
            config,
            node,
            opts,
            peers,
        })
    }

    /// Rules 2-9 for one Service: its report, and each route it asks for handed to `add`.
    /// `serving` (the nodes with an endpoint of the Service that can serve) is only called
    /// when the earlier gates pass; `ready_here` (this node's ready, non-terminating endpoints
    /// of the Service) only when a weighted advertisement applies.
    pub(crate) fn service_status(
        &self,
        svc: &Service,
        serving: impl FnOnce() -> BTreeSet<Option<SmolStr>>,
        ready_here: impl FnOnce() -> u32,
        add: &mut RouteSink<'_, 'c>,
    ) -> ServiceStatus {
        match service_gate(svc, self.opts)
            .and_then(|()| node_gate(self.node, self.opts))
            .and_then(|()| endpoints_gate(&serving(), svc, &self.opts.node_name))
        {
            Err(reason) => ServiceStatus::Skipped(reason),
            Ok(()) => {
                let mut weight = Weight::new(svc, ready_here);
                ServiceStatus::Vips(
                    svc.ips
                        .iter()
                        .map(|vip| (*vip, self.announce_vip(svc, *vip, &mut weight, add)))
                        .collect(),
                )
            }
        }
    }
}

/// Every Service skipped for one node-wide reason.
pub(crate) fn skip_all(
    cluster: &Cluster,
    reason: SkipReason,
) -> BTreeMap<ServiceKey, ServiceStatus> {
    cluster
        .services
        .keys()
        .map(|k| (k.clone(), ServiceStatus::Skipped(reason.clone())))
        .collect()
}

/// Rule 4: MetalLB `ShouldAnnounce`: Local needs a serving endpoint here, Cluster one anywhere.
fn endpoints_gate(
    serving: &BTreeSet<Option<SmolStr>>,
    svc: &Service,
    node_name: &str,
) -> Result<(), SkipReason> {
    match svc.traffic_policy {
        TrafficPolicy::Local if !serving.iter().any(|n| n.as_deref() == Some(node_name)) => {
            Err(SkipReason::NoLocalEndpoints)
        }
        TrafficPolicy::Cluster if serving.is_empty() => Err(SkipReason::NoEndpoints),
        _ => Ok(()),
    }
}

/// The BGPAdvertisements that apply to `vip` of `svc` on `node` (rule 5), or why none does.
fn applying_advertisements<'c>(
    config: &'c Config,
    node: &Node,
    svc: &Service,
    vip: IpAddr,
) -> Result<Vec<&'c BgpAdvertisement>, SkipReason> {
    let pool = config.pool_of(&vip).ok_or(SkipReason::NoPool)?;
    let for_pool: Vec<_> = config
        .bgp_advertisements
        .values()
        .filter(|a| a.pools.contains(&pool.name))
        .collect();
    if for_pool.is_empty() {
        return Err(SkipReason::NoAdvertisement);
    }
    let for_node: Vec<_> = for_pool
        .into_iter()
        .filter(|a| any_matches(&a.node_selectors, &node.labels))
        .collect();
    if for_node.is_empty() {
        return Err(SkipReason::AdvertisementNodeMismatch);
    }
    let for_service: Vec<_> = for_node
        .into_iter()
        .filter(|a| any_matches(&a.service_selectors, &svc.labels))
        .collect();
    if for_service.is_empty() {
        return Err(SkipReason::ServiceSelectorMismatch);
    }
    Ok(for_service)
}

/// A BGPPeer that applies to this node, with its name shared by every status that names it.
pub(crate) struct ApplyingPeer<'c> {
    pub(crate) peer: &'c BgpPeer,
    pub(crate) name: PeerName,
}

impl<'c> PlanCtx<'c> {
    /// Rules 5-9 for one VIP: hands its routes to `add` and says what happened.
    fn announce_vip(
        &self,
        svc: &Service,
        vip: IpAddr,
        weight: &mut Weight<impl FnOnce() -> u32>,
        add: &mut RouteSink<'_, 'c>,
    ) -> VipStatus {
        let (config, node) = (self.config, self.node);
        let ads = match applying_advertisements(config, node, svc, vip) {
            Ok(ads) => ads,
            Err(reason) => {
                return VipStatus::NotAnnounced {
                    reason,
                    skipped_peers: Box::default(),
                }
            }
        };

        let mut prefixes = BTreeSet::new();
        let mut announced_to = BTreeSet::new();
        let mut skipped_peers = BTreeMap::new();
        for (index, applying) in self.peers.iter().enumerate() {
            let ApplyingPeer { peer, name } = applying;
            if !carries_family(peer, vip) {
                skipped_peers.insert(name.clone(), PeerSkip::FamilyNotCarried);
                continue;
            }
            let next_hop = match next_hop_for(peer, node, vip) {
                Ok(next_hop) => next_hop,
                Err(skip) => {
                    skipped_peers.insert(name.clone(), skip);
                    continue;
                }
            };
            let mut sent = false;
            for ad in ads
                .iter()
                .filter(|a| a.peers.is_empty() || a.peers.contains(&peer.name))
            {
                let prefix = route_prefix(ad, vip);
                let mut attrs = route_attrs(ad, peer, next_hop);
                if let Some(bandwidth) = weight.take(ad, index, prefix) {
                    attrs
                        .extended_communities
                        .insert(link_bandwidth(peer.my_asn, bandwidth));
                }
                add(index, applying, prefix, attrs);
                prefixes.insert(prefix);
                sent = true;
            }
            if sent {
                announced_to.insert(name.clone());
            } else {
                skipped_peers.insert(name.clone(), PeerSkip::NotInAdvertisementPeers);
            }
        }

        // Sets and maps above keep the lists sorted and unique; the report keeps plain slices.
        let skipped_peers = skipped_peers.into_iter().collect();
        if announced_to.is_empty() {
            VipStatus::NotAnnounced {
                reason: SkipReason::NoPeer,
                skipped_peers,
            }
        } else {
            VipStatus::Announced {
                prefixes: prefixes.into_iter().collect(),
                peers: announced_to.into_iter().collect(),
                skipped_peers,
            }
        }
    }
}

/// Whether `peer`'s session carries `vip`'s address family. As in MetalLB (the BGPPeer CRD's
/// `dualStackAddressFamily` doc and its FRR backend): a session carries the family of its peer
/// address; both families (the other one as RFC 4760 multiprotocol NLRI) only with
/// `dualStackAddressFamily` or on an unnumbered (`interface`) session. `disableMP` is deprecated
/// and has no effect.
fn carries_family(peer: &BgpPeer, vip: IpAddr) -> bool {
    peer.dual_stack_address_family
        || peer.interface.is_some()
        || IpFamily::of(&peer.peer_address) == IpFamily::of(&vip)
}

/// Rule 8: the next hop of `vip`'s routes towards `peer`, or why the node has none.
fn next_hop_for(peer: &BgpPeer, node: &Node, vip: IpAddr) -> Result<NextHop, PeerSkip> {
    let family = IpFamily::of(&vip);
    if peer.interface.is_some() || IpFamily::of(&peer.peer_address) == family {
        return Ok(NextHop::SessionLocal);
    }
    // RFC 4760 §3: the next hop's family follows the NLRI's AFI, not the session's transport;
    // RFC 2545 §3: an IPv6 next hop must carry a global address (a link-local one may only
    // accompany it), so a link-local InternalIP is never chosen.
    node.internal_addresses
        .iter()
        .find(|addr| IpFamily::of(addr) == family && !is_link_local(addr))
        .map(|addr| NextHop::Explicit(*addr))
        .ok_or(PeerSkip::NoNextHopForFamily)
}

/// 169.254.0.0/16 (RFC 3927) or fe80::/10 (RFC 4291 §2.5.6): unusable as a routed next hop.
fn is_link_local(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.octets();
            first == 0xfe && (second & 0xc0) == 0x80
        }
    }
}

/// Rule 6: the VIP masked to the advertisement's aggregation length of its family. A length
/// beyond the family's width (rejected by validation) is treated as a host route, never a panic.
pub fn route_prefix(ad: &BgpAdvertisement, vip: IpAddr) -> IpNet {
    let (len, max) = match vip {
        IpAddr::V4(_) => (ad.aggregation_length, 32),
        IpAddr::V6(_) => (ad.aggregation_length_v6, 128),
    };
    IpNet::new(vip, len.min(max))
        .map(|net| net.trunc())
        .unwrap_or_else(|_| IpNet::from(vip))
}

/// The attributes one advertisement asks for towards one peer.
fn route_attrs(ad: &BgpAdvertisement, peer: &BgpPeer, next_hop: NextHop) -> Route {
    let mut attrs = Route {
        next_hop,
        local_pref: if peer.is_ibgp() { ad.local_pref } else { None },
        ..Route::default()
    };
    for community in &ad.communities {
        match *community {
            BgpCommunity::Standard(value) => {
                attrs.communities.insert(Community(value));
            }
            BgpCommunity::Large(global, local1, local2) => {
                attrs.large_communities.insert(LargeCommunity {
                    global_admin: global,
                    local_data_1: local1,
                    local_data_2: local2,
                });
            }
        }
    }
    attrs
}

/// Rule 9 for one Service: its link bandwidth, computed on first use, handed out once per
/// (peer, prefix).
struct Weight<F> {
    traffic_policy: TrafficPolicy,
    ready_here: Option<F>,
    endpoints: u32,
    given: BTreeSet<(usize, IpNet)>,
}

impl<F: FnOnce() -> u32> Weight<F> {
    fn new(svc: &Service, ready_here: F) -> Self {
        Self {
            traffic_policy: svc.traffic_policy,
            ready_here: Some(ready_here),
            endpoints: 0,
            given: BTreeSet::new(),
        }
    }

    /// The bandwidth (bytes/s) the route to `prefix` towards peer `peer` gets from `ad`:
    /// `None` when `ad` is not weighted or this Service already gave this route its value.
    fn take(&mut self, ad: &BgpAdvertisement, peer: usize, prefix: IpNet) -> Option<f64> {
        let Some(WeightedEcmp::Endpoints) = ad.weighted_ecmp else {
            return None;
        };
        if !self.given.insert((peer, prefix)) {
            return None;
        }
        if let Some(count) = self.ready_here.take() {
            self.endpoints = match self.traffic_policy {
                // The endpoints gate let the Service through, so there is at least one.
                TrafficPolicy::Local => count(),
                TrafficPolicy::Cluster => 1,
            };
        }
        Some(f64::from(self.endpoints) * BANDWIDTH_PER_ENDPOINT)
    }
}

/// The link bandwidth community of `bytes_per_second` from `local_as`.
fn link_bandwidth(local_as: u32, bytes_per_second: f64) -> ExtendedCommunity {
    // f32 is the community's format; counts beyond its exact range round, harmlessly.
    #[allow(clippy::cast_possible_truncation)]
    let value = bytes_per_second as f32;
    ExtendedCommunity::link_bandwidth(local_as, value)
}

/// The routes of every applying peer while a plan is computed.
struct PeerRoutes {
    announcements: BTreeMap<String, PeerAnnouncement>,
    /// LOCAL_PREF values asked for per (peer, prefix) that more than one advertisement sends,
    /// to report disagreements; a route asked for once cannot disagree with itself.
    asked_local_prefs: BTreeMap<(String, IpNet), BTreeSet<Option<u32>>>,
    /// The distinct attribute sets of the plan, each allocated once.
    attr_sets: BTreeSet<Arc<Route>>,
}

impl PeerRoutes {
    /// Rule 7: one more advertisement asks for `prefix` towards `peer` with `attrs`.
    fn add(&mut self, peer: &str, prefix: IpNet, attrs: Route) {
        let Some(announcement) = self.announcements.get_mut(peer) else {
            return;
        };
        match announcement.routes.entry(prefix) {
            Entry::Vacant(slot) => {
                slot.insert(shared(&mut self.attr_sets, attrs));
            }
            Entry::Occupied(mut slot) => {
                // Until a second advertisement asks for this route, the route holds exactly
                // the first one's LOCAL_PREF.
                self.asked_local_prefs
                    .entry((peer.to_string(), prefix))
                    .or_insert_with(|| BTreeSet::from([slot.get().local_pref]))
                    .insert(attrs.local_pref);
                let mut merged = Route::clone(slot.get());
                merge_attrs(&mut merged, &attrs);
                slot.insert(shared(&mut self.attr_sets, merged));
            }
        }
    }
}

/// `attrs` as the one allocation of its value in `sets`.
pub(crate) fn shared(sets: &mut BTreeSet<Arc<Route>>, attrs: Route) -> Arc<Route> {
    if let Some(existing) = sets.get(&attrs) {
        return Arc::clone(existing);
    }
    let attrs = Arc::new(attrs);
    sets.insert(Arc::clone(&attrs));
    attrs
}

/// Rule 7: union of communities, highest LOCAL_PREF (a conflict is reported separately);
/// rule 9: link bandwidths add up.
pub(crate) fn merge_attrs(existing: &mut Route, other: &Route) {
    merge_attrs_times(existing, other, 1);
}

/// [`merge_attrs`] with `other` asked `times` times: only the link bandwidth, a sum, depends
/// on how often a set is asked; unions and maxima do not.
pub(crate) fn merge_attrs_times(existing: &mut Route, other: &Route, times: u32) {
    existing
        .communities
        .extend(other.communities.iter().copied());
    existing
        .large_communities
        .extend(other.large_communities.iter().copied());
    existing.local_pref = existing.local_pref.max(other.local_pref);
    existing.next_hop = existing.next_hop.max(other.next_hop);
    if other.extended_communities.is_empty() {
        return;
    }
    let mut sums = take_link_bandwidths(existing, 1);
    for c in &other.extended_communities {
        match c.as_link_bandwidth() {
            Some((asn, bandwidth)) => {
                *sums.entry(asn).or_default() += f64::from(bandwidth) * f64::from(times);
            }
            None => {
                existing.extended_communities.insert(*c);
            }
        }
    }
    for (asn, bandwidth) in sums {
        existing
            .extended_communities
            .insert(link_bandwidth(u32::from(asn), bandwidth));
    }
}

/// `route` asked `times` times: its link bandwidth multiplied (rule 9's sum).
pub(crate) fn scale_link_bandwidth(route: &mut Route, times: u32) {
    if times == 1 {
        return;
    }
    for (asn, bandwidth) in take_link_bandwidths(route, times) {
        route
            .extended_communities
            .insert(link_bandwidth(u32::from(asn), bandwidth));
    }
}

/// Removes `route`'s link bandwidth communities and returns their values per AS, each
/// multiplied by `times`. Summed as f64, which holds every f32 exactly: while a node's total
/// stays within the f32's exact range ([`BANDWIDTH_PER_ENDPOINT`]) the sum cannot depend on the
/// order Services are merged in, so the incremental announcer equals the full computation.
fn take_link_bandwidths(route: &mut Route, times: u32) -> BTreeMap<u16, f64> {
    let mut out = BTreeMap::new();
    if route.extended_communities.is_empty() {
        return out;
    }
    route
        .extended_communities
        .retain(|c| match c.as_link_bandwidth() {
            Some((asn, bandwidth)) => {
                *out.entry(asn).or_default() += f64::from(bandwidth) * f64::from(times);
                false
            }
            None => true,
        });
    out
}

/// The link bandwidth `route` carries, in endpoints ([`BANDWIDTH_PER_ENDPOINT`]), if any.
pub fn announced_weight(route: &Route) -> Option<f64> {
    route
        .extended_communities
        .iter()
        .find_map(|c| c.as_link_bandwidth())
        .map(|(_, bandwidth)| f64::from(bandwidth) / BANDWIDTH_PER_ENDPOINT)
}
