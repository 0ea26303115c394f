//! [`ConfigError`]: one invalid thing in the configuration, naming the object, the field path,
//! the offending value and the reason, so an operator can act on a single log line.

use std::fmt;

/// One configuration error. `Display` is one line:
/// `IPAddressPool metallb-system/pool-a: spec.addresses[1] = "10.0.0.0/33": invalid CIDR: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {}: {path} = {value:?}: {reason}", ObjectName(namespace, name))]
pub struct ConfigError {
    /// Kind of the offending object (`IPAddressPool`, `BGPPeer`, ...).
    pub kind: String,
    /// Namespace of the offending object (empty when it has none).
    pub namespace: String,
    /// Name of the offending object.
    pub name: String,
    /// Field path inside the object, e.g. `spec.addresses[1]`.
    pub path: String,
    /// The offending value as written (empty when the field is missing).
    pub value: String,
    /// Why the value is rejected.
    pub reason: Reason,
}

struct ObjectName<'a>(&'a str, &'a str);

impl fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            write!(f, "{}", self.1)
        } else {
            write!(f, "{}/{}", self.0, self.1)
        }
    }
}

impl ConfigError {
    /// True for errors MetalLB calls transient: the configuration references an object that
    /// may simply not have arrived yet (a Secret). The config is still rejected (all-or-nothing)
    /// but the offline `validate` command reports these as warnings, since Secrets usually live
    /// only in the cluster.
    pub fn is_transient(&self) -> bool {
        matches!(self.reason, Reason::MissingSecret)
    }
}

/// Why a value is rejected. Each variant's text completes "field = value: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// A required field is missing or empty.
    #[error("is required")]
    Required,
    /// The object has no name.
    #[error("metadata.name is required")]
    MissingName,
    /// Two objects of the same kind share a name.
    #[error("duplicate {kind} name")]
    DuplicateName {
        /// The kind.
        kind: &'static str,
    },
    /// A list holds the same entry twice.
    #[error("duplicate entry, also at index {first}")]
    DuplicateEntry {
        /// Index of the first occurrence.
        first: usize,
    },
    /// Not a valid CIDR or `a-b` range.
    #[error("invalid address range: {0}")]
    BadAddresses(#[from] crate::parse::AddressError),
    /// Two address ranges overlap.
    #[error("overlaps with {other}")]
    Overlap {
        /// The other range and where it is defined.
        other: String,
    },
    /// Not a valid IP address.
    #[error("invalid IP address")]
    BadIp,
    /// Not a valid IPv4 router ID.
    #[error("invalid router ID: must be an IPv4 address")]
    BadRouterId,
    /// A number out of its allowed range.
    #[error("out of range: must be in {min}..={max}")]
    OutOfRange {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Not a valid label selector.
    #[error("invalid label selector: {0}")]
    BadSelector(String),
    /// Not a valid community value and no Community alias has this name.
    #[error("invalid community: {0}")]
    BadCommunity(#[from] crate::parse::CommunityError),
    /// aggregationLength is shorter than a pool prefix it would aggregate.
    #[error(
        "aggregation length {aggregation} is shorter than prefix /{prefix_len} of {addresses} in pool {pool}"
    )]
    AggregationTooShort {
        /// The configured aggregation length.
        aggregation: u8,
        /// The pool's most specific prefix length for that entry.
        prefix_len: u8,
        /// The pool's `spec.addresses` entry.
        addresses: String,
        /// The pool.
        pool: String,
    },
    /// Two advertisements would send different LOCAL_PREF in the same UPDATE.
    #[error("conflicts with localPref {other_value} of BGPAdvertisement {other} for pool {pool}")]
    LocalPrefConflict {
        /// The other advertisement.
        other: String,
        /// Its localPref.
        other_value: u32,
        /// The shared pool.
        pool: String,
    },
    /// Not a valid Go duration.
    #[error("invalid duration: {0}")]
    BadDuration(String),
    /// RFC 4271 §4.2: "Hold Time MUST be either zero or at least three seconds".
    #[error("hold time must be 0 or at least 3s")]
    HoldTimeTooShort,
    /// keepaliveTime above holdTime.
    #[error("keepalive time must not exceed hold time {hold}")]
    KeepaliveAboveHold {
        /// The effective hold time.
        hold: String,
    },
    /// Two fields that exclude each other are both set.
    #[error("mutually exclusive with {other}")]
    Exclusive {
        /// The other field.
        other: &'static str,
    },
    /// Neither of two alternatives is set.
    #[error("one of {0} is required")]
    OneOfRequired(&'static str),
    /// A value outside an enumeration.
    #[error("must be one of {allowed}")]
    NotOneOf {
        /// The accepted values.
        allowed: &'static str,
    },
    /// `ebgpMultiHop` set on an iBGP session.
    #[error("ebgpMultiHop is invalid for an iBGP peer (peerASN == myASN)")]
    MultihopOnIbgp,
    /// The referenced Secret is not (yet) known. Transient, see [`ConfigError::is_transient`].
    #[error("secret not found in the configuration namespace")]
    MissingSecret,
    /// The referenced Secret is not of type `kubernetes.io/basic-auth`.
    #[error("secret has type {found:?}, expected \"kubernetes.io/basic-auth\"")]
    SecretType {
        /// The type found.
        found: String,
    },
    /// The referenced Secret has no `password` key.
    #[error("secret has no \"password\" key")]
    SecretNoPassword,
    /// A referenced object does not exist.
    #[error("no {kind} named so exists")]
    MissingReference {
        /// Kind of the referenced object.
        kind: &'static str,
    },
    /// Two BGPPeers would open the same session.
    #[error("same peer address and VRF as BGPPeer {other} on overlapping nodes")]
    DuplicatePeer {
        /// The other BGPPeer.
        other: String,
    },
    /// Not a valid network interface name.
    #[error("invalid interface name: {0}")]
    BadInterface(&'static str),
    /// A duration with a fraction of a second where only whole seconds are valid (MetalLB's
    /// CRD rule for `connectTime`).
    #[error("must be a whole number of seconds")]
    NotWholeSeconds,
    /// `serviceSelectors` together with an aggregation length other than the default (MetalLB's
    /// CRD rule: a prefix rolled up from several Services cannot follow one Service's labels).
    #[error("must be the default {default} when spec.serviceSelectors is set")]
    ServiceSelectorsWithAggregation {
        /// The default length: 32 (IPv4) or 128 (IPv6).
        default: u8,
    },
    /// An IPv6 pool advertised to a peer whose BFD profile enables echo mode (BFD echo is
    /// IPv4-only in FRR; MetalLB `validateConfig`).
    #[error("advertises IPv6 pool {pool} to BGPPeer {peer}, whose BFD profile enables echo mode")]
    BfdEchoWithIpv6 {
        /// The pool.
        pool: String,
        /// The peer.
        peer: String,
    },
    /// A feature FerroLB does not implement (accepted by MetalLB with FRR only).
    #[error("not supported by FerroLB: {0}")]
    Unsupported(&'static str),
}

impl Reason {
    /// Short stable label for metrics (`ferrolb_config_errors_total{reason=...}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Reason::Required => "required",
            Reason::MissingName => "missing_name",
            Reason::DuplicateName { .. } => "duplicate_name",
            Reason::DuplicateEntry { .. } => "duplicate_entry",
            Reason::BadAddresses(_) => "bad_addresses",
            Reason::Overlap { .. } => "overlap",
            Reason::BadIp => "bad_ip",
            Reason::BadRouterId => "bad_router_id",
            Reason::OutOfRange { .. } => "out_of_range",
            Reason::BadSelector(_) => "bad_selector",
            Reason::BadCommunity(_) => "bad_community",
            Reason::AggregationTooShort { .. } => "aggregation_too_short",
            Reason::LocalPrefConflict { .. } => "local_pref_conflict",
            Reason::BadDuration(_) => "bad_duration",
            Reason::HoldTimeTooShort => "hold_time_too_short",
            Reason::KeepaliveAboveHold { .. } => "keepalive_above_hold",
            Reason::Exclusive { .. } => "exclusive",
            Reason::OneOfRequired(_) => "one_of_required",
            Reason::NotOneOf { .. } => "not_one_of",
            Reason::MultihopOnIbgp => "multihop_on_ibgp",
            Reason::MissingSecret => "missing_secret",
            Reason::SecretType { .. } => "secret_type",
            Reason::SecretNoPassword => "secret_no_password",
            Reason::MissingReference { .. } => "missing_reference",
            Reason::DuplicatePeer { .. } => "duplicate_peer",
            Reason::BadInterface(_) => "bad_interface",
            Reason::NotWholeSeconds => "not_whole_seconds",
            Reason::ServiceSelectorsWithAggregation { .. } => "service_selectors_with_aggregation",
            Reason::BfdEchoWithIpv6 { .. } => "bfd_echo_with_ipv6",
            Reason::Unsupported(_) => "unsupported",
        }
    }
}
