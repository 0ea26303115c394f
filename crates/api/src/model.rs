//! The validated configuration model both daemons compute from.
//!
//! A [`Config`] only exists when every config object was valid (all-or-nothing): validation in
//! this crate turns the metallb.io resources plus referenced Secrets into a `Config`, or into a
//! list of errors, in which case the daemons keep running on their last good `Config`.
//!
//! Everything here is resolved already: Community aliases are replaced by their values, pool
//! selectors of advertisements are resolved to pool names, durations are parsed, passwords are
//! read from their Secrets. Consumers never need the raw CRs.
//!
//! Collections are `BTreeMap`/`BTreeSet`/sorted `Vec` so that a `Config` compares and iterates
//! deterministically: the speaker's and controller's pure functions must depend only on inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::selector::{LabelSelector, Labels};

/// Address family of a pool range, a VIP or a Service's `ipFamilies` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpFamily {
    /// The family of `ip`.
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

/// An inclusive range of addresses of one family, `start <= end`. A CIDR `10.0.0.0/24` is the
/// range `10.0.0.0-10.0.0.255`; MetalLB accepts both notations in `spec.addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressRange {
    /// First address (inclusive).
    pub start: IpAddr,
    /// Last address (inclusive).
    pub end: IpAddr,
    /// Prefix length when the range was written as a CIDR (needed for aggregationLength checks
    /// and avoidBuggyIPs); `None` for `a-b` ranges.
    pub cidr_len: Option<u8>,
}

impl AddressRange {
    /// Address family of both ends.
    pub fn family(&self) -> IpFamily {
        IpFamily::of(&self.start)
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        IpFamily::of(ip) == self.family() && self.start <= *ip && *ip <= self.end
    }
}

/// A validated IPAddressPool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`, for `ipAddressPoolSelectors`.
    pub labels: Labels,
    /// Non-overlapping, in `spec.addresses` order (the order allocation walks them).
    pub ranges: Vec<AddressRange>,
    /// `spec.autoAssign`, default true.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`, default false: never hand out addresses ending in .0 or .255.
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation`; `None` means the pool serves any Service (lowest priority).
    pub service_allocation: Option<ServiceAllocation>,
}

impl Pool {
    /// Whether `ip` lies in one of the pool's ranges.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }
}

/// `spec.serviceAllocation` of an IPAddressPool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAllocation {
    /// Lower value = higher priority (MetalLB semantics); `None` = after all prioritised pools.
    pub priority: Option<i32>,
    /// Empty = any namespace (subject to `namespace_selectors`).
    pub namespaces: BTreeSet<String>,
    /// `namespaceSelectors`: namespaces whose labels match any of these may use the pool.
    pub namespace_selectors: Vec<LabelSelector>,
    /// `serviceSelectors`: Services whose labels match any of these may use the pool.
    pub service_selectors: Vec<LabelSelector>,
}

/// The peer's ASN as configured on a BGPPeer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAsn {
    /// `spec.peerASN`.
    Fixed(u32),
    /// `spec.dynamicASN: internal`: the peer's ASN equals ours (iBGP).
    Internal,
    /// `spec.dynamicASN: external`: any ASN other than ours (eBGP), learnt from its OPEN.
    External,
}

/// A validated BGPPeer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    /// `metadata.name`.
    pub name: String,
    /// `spec.myASN`.
    pub my_asn: u32,
    /// `spec.localASN`: the AS this session speaks as instead of `my_asn` (FRR's `neighbor X
    /// local-as N no-prepend replace-as`, as MetalLB's FRR mode writes it).
    pub local_asn: Option<u32>,
    /// `spec.peerASN` or `spec.dynamicASN`.
    pub peer_asn: PeerAsn,
    /// `spec.peerAddress`; `::` for an unnumbered peer ([`BgpPeer::interface`]), whose
    /// link-local address each node discovers on that interface.
    pub peer_address: IpAddr,
    /// `spec.peerPort`, default 179.
    pub peer_port: u16,
    /// `spec.sourceAddress`.
    pub source_address: Option<IpAddr>,
    /// `spec.routerID`; `None` = chosen by the speaker.
    pub router_id: Option<Ipv4Addr>,
    /// `spec.holdTime`; `None` = default (90 s). `Some(ZERO)` = no keepalives.
    pub hold_time: Option<Duration>,
    /// `spec.keepaliveTime`; `None` = hold time / 3.
    pub keepalive_time: Option<Duration>,
    /// `spec.connectTime`: connect retry interval; `None` = implementation default.
    pub connect_time: Option<Duration>,
    /// `spec.ebgpMultiHop`.
    pub ebgp_multihop: bool,
    /// From `spec.password` or the `password` key of `spec.passwordSecret`.
    pub password: Option<String>,
    /// `spec.bfdProfile` (exists in [`Config::bfd_profiles`]).
    pub bfd_profile: Option<String>,
    /// The BFDProfile `bfd_profile` names, resolved, so the speaker's peer settings carry
    /// the timers: a profile edit changes the peer's settings and reaches its BFD session.
    pub bfd: Option<BfdProfile>,
    /// `spec.enableGracefulRestart`.
    pub enable_graceful_restart: bool,
    /// Empty = every node.
    pub node_selectors: Vec<LabelSelector>,
    /// `spec.vrf`.
    pub vrf: Option<String>,
    /// `spec.interface` without `spec.peerAddress`: unnumbered BGP over this interface's IPv6
    /// link-local addresses (the router's found from its Router Advertisements).
    pub interface: Option<String>,
    /// `spec.disableMP` (deprecated).
    pub disable_mp: bool,
    /// `spec.dualStackAddressFamily`.
    pub dual_stack_address_family: bool,
}

impl BgpPeer {
    /// The AS of our end of this session: `spec.localASN` when set, else `spec.myASN`.
    pub fn session_asn(&self) -> u32 {
        self.local_asn.unwrap_or(self.my_asn)
    }

    /// iBGP when the peer is in our AS (the session's: [`BgpPeer::session_asn`]).
    pub fn is_ibgp(&self) -> bool {
        match self.peer_asn {
            PeerAsn::Fixed(asn) => asn == self.session_asn(),
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }
}

/// One BGP community value after alias resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BgpCommunity {
    /// RFC 1997 `AA:NN`, stored as `(AA << 16) | NN`.
    Standard(u32),
    /// RFC 8092 `large:A:B:C`.
    Large(u32, u32, u32),
}

/// A validated BGPAdvertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpAdvertisement {
    /// `metadata.name`.
    pub name: String,
    /// Names of the pools this advertisement applies to, resolved from `ipAddressPools` and
    /// `ipAddressPoolSelectors` (both empty = every pool).
    pub pools: BTreeSet<String>,
    /// `spec.aggregationLength`, default 32.
    pub aggregation_length: u8,
    /// `spec.aggregationLengthV6`, default 128.
    pub aggregation_length_v6: u8,
    /// `spec.localPref`; only sent to iBGP peers.
    pub local_pref: Option<u32>,
    /// Sorted and deduplicated.
    pub communities: Vec<BgpCommunity>,
    /// `spec.peers`: BGPPeer names; empty = all peers.
    pub peers: BTreeSet<String>,
    /// Empty = every node.
    pub node_selectors: Vec<LabelSelector>,
    /// Empty = every Service.
    pub service_selectors: Vec<LabelSelector>,
    /// FerroLB's opt-in [`WEIGHTED_ECMP_ANNOTATION`]: routes carry a link bandwidth in
    /// proportion to this node's endpoints, for weighted ECMP at the routers. `None`: plain
    /// routes, as MetalLB sends them.
    pub weighted_ecmp: Option<WeightedEcmp>,
}

/// `ferrolb.io/weighted-ecmp` on a BGPAdvertisement (an annotation, so MetalLB's CRD schema
/// stays untouched): what the link bandwidth extended community of its routes is proportional
/// to. Its only value is `endpoints`.
pub const WEIGHTED_ECMP_ANNOTATION: &str = "ferrolb.io/weighted-ecmp";

/// What a weighted route's link bandwidth follows (see [`WEIGHTED_ECMP_ANNOTATION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WeightedEcmp {
    /// `endpoints`: the ready, non-terminating endpoints of the Service on this node
    /// (`externalTrafficPolicy: Local`); the same value on every node for `Cluster`.
    Endpoints,
}

impl WeightedEcmp {
    /// The annotation values accepted, for error messages.
    pub const ALLOWED: &'static str = "endpoints";

    /// Parses the annotation's value; `None` when it is not one of [`Self::ALLOWED`].
    pub fn parse(value: &str) -> Option<Self> {
        (value == "endpoints").then_some(WeightedEcmp::Endpoints)
    }
}

/// A validated L2Advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Advertisement {
    /// `metadata.name`.
    pub name: String,
    /// Resolved like [`BgpAdvertisement::pools`].
    pub pools: BTreeSet<String>,
    /// Empty = every node.
    pub node_selectors: Vec<LabelSelector>,
    /// `spec.interfaces`; empty = every interface with an address in the VIP's subnet.
    pub interfaces: Vec<String>,
    /// Empty = every Service.
    pub service_selectors: Vec<LabelSelector>,
}

/// A validated BFDProfile. Unset fields stay `None`; the speaker applies MetalLB's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdProfile {
    /// `metadata.name`.
    pub name: String,
    /// `spec.receiveInterval` (ms).
    pub receive_interval_ms: Option<u32>,
    /// `spec.transmitInterval` (ms).
    pub transmit_interval_ms: Option<u32>,
    /// `spec.detectMultiplier`.
    pub detect_multiplier: Option<u32>,
    /// `spec.echoInterval` (ms).
    pub echo_interval_ms: Option<u32>,
    /// `spec.echoMode`.
    pub echo_mode: bool,
    /// `spec.passiveMode`.
    pub passive_mode: bool,
    /// `spec.minimumTtl`.
    pub minimum_ttl: Option<u32>,
}

/// The whole validated configuration. Maps are keyed by object name (the config namespace is
/// single, as in MetalLB).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// IPAddressPools by name.
    pub pools: BTreeMap<String, Pool>,
    /// BGPPeers by name.
    pub bgp_peers: BTreeMap<String, BgpPeer>,
    /// BGPAdvertisements by name.
    pub bgp_advertisements: BTreeMap<String, BgpAdvertisement>,
    /// L2Advertisements by name.
    pub l2_advertisements: BTreeMap<String, L2Advertisement>,
    /// BFDProfiles by name.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
}

impl Config {
    /// The pool holding `ip`, if any (pools never overlap, so at most one).
    pub fn pool_of(&self, ip: &IpAddr) -> Option<&Pool> {
        self.pools.values().find(|p| p.contains(ip))
    }
}
