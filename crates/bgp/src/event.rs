//! Events out of the speaker, for logs, metrics and status.

use std::net::IpAddr;

use crate::fsm::DownReason;
use crate::wire::{Families, Update};

/// Something that happened to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerEvent {
    /// The peer's address.
    pub peer: IpAddr,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The session reached Established.
    Up {
        /// The peer's ASN.
        peer_as: u32,
        /// The peer's BGP Identifier.
        router_id: std::net::Ipv4Addr,
        /// Negotiated hold time (0 = none).
        hold_time: u16,
        /// Negotiated families.
        families: Families,
        /// Our end of the TCP connection (the session's source address): what a BFD session
        /// coupled to this one must use (RFC 5881 §2) when no source address is configured.
        local_addr: Option<IpAddr>,
    },
    /// The session left Established (or failed on the way there).
    Down {
        /// Whether it had been Established.
        was_established: bool,
        /// Why.
        reason: DownReason,
    },
    /// A connection attempt failed (refused, timed out: with TCP-MD5 a wrong password looks
    /// like a timeout).
    ConnectFailed {
        /// The error, as text.
        error: String,
    },
    /// Our own routes could not be packed into UPDATEs (an attribute set too long for one
    /// UPDATE, a route without a next hop of its family): that chunk of routes was not sent,
    /// the session stays up. A bug or a configuration the wire cannot carry, never a network
    /// failure.
    PackFailed {
        /// Why the packer refused.
        error: crate::wire::EncodingError,
    },
    /// UPDATEs were sent.
    PrefixesSent {
        /// Prefixes announced in this batch.
        announced: usize,
        /// Prefixes withdrawn in this batch.
        withdrawn: usize,
        /// UPDATE messages used.
        updates: usize,
        /// Prefixes now in the Adj-RIB-Out.
        total: usize,
        /// Desired prefixes this session cannot carry (family or next hop missing).
        skipped: usize,
    },
    /// End-of-RIB sent after the initial table (RFC 4724 §2).
    EndOfRibSent,
    /// An UPDATE arrived. Routes are counted, never stored.
    UpdateReceived {
        /// Prefixes announced in it.
        announced: usize,
        /// Prefixes withdrawn in it.
        withdrawn: usize,
        /// The UPDATE itself, only for peers configured with `deliver_updates`.
        update: Option<Update>,
    },
    /// The peer sent End-of-RIB for a family.
    EndOfRibReceived,
    /// The peer asked for a ROUTE-REFRESH; the Adj-RIB-Out was sent again.
    RouteRefreshServed,
    /// Counters of the peer task, reported when it ends (stop, deconfiguration, shutdown).
    Messages {
        /// Messages received.
        received: u64,
        /// Messages sent (a NOTIFICATION only when it went out).
        sent: u64,
        /// NOTIFICATIONs that could not go out (the peer read nothing within the limit, or
        /// the connection was gone); logged at warn each.
        notifications_unsent: u64,
        /// Prefixes announced to us (counted, never stored).
        prefixes_received: u64,
        /// Prefixes withdrawn by the peer.
        prefixes_withdrawn: u64,
    },
}
