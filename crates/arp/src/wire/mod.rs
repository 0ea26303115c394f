//! Ethernet, ARP and NDP frames as plain data: pure parsers (`parse_*`) and encoders
//! (`encode_*`), no I/O.
//!
//! A received frame is handed to [`parse_frame`], which either yields a [`Frame`] or a
//! [`FrameError`] the caller counts (by [`FrameError::metric_label`]) and drops. Nothing here
//! panics on any input: decoders read through [`Reader`], which returns
//! [`FrameError::Truncated`] instead of indexing out of bounds.
//!
//! Only the messages Layer 2 mode needs are typed: ARP over Ethernet/IPv4 (RFC 826) and the
//! ICMPv6 Neighbor Solicitation / Advertisement (RFC 4861 §4.3, §4.4) carried directly in IPv6
//! (no extension headers: RFC 4861 §7.1.1 has receivers check the hop limit, which a router
//! cannot have forwarded, and NDP senders never add extension headers).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod arp;
mod ethernet;
mod ndp;

use std::fmt;

pub use arp::{encode_arp, parse_arp, ArpOp, ArpPacket};
pub use ethernet::{encode_ethernet, parse_ethernet, EtherType, EthernetHeader};
pub use ndp::{
    encode_ndp, icmpv6_checksum, parse_ndp, solicited_node_address, Icmpv6Type, Ipv6Header,
    NdpMessage, NdpOption, NeighborAdvertisement, NeighborSolicitation, ALL_NODES,
};

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`, e.g. the unknown target hardware address of an ARP request.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The Ethernet multicast address an IPv6 multicast address maps to: `33:33` followed by the
    /// last four octets of the IPv6 address (RFC 2464 §7).
    pub fn ipv6_multicast(group: std::net::Ipv6Addr) -> MacAddr {
        let [.., a, b, c, d] = group.octets();
        MacAddr([0x33, 0x33, a, b, c, d])
    }

    /// True for group addresses (the I/G bit, the least significant bit of the first octet).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a received frame was not turned into a [`Frame`].
///
/// Some variants mean "not for us" (another EtherType, another ICMPv6 type) and are expected on a
/// busy link; the rest mean a malformed frame. [`FrameError::is_malformed`] tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame ended before `field` could be read.
    #[error("truncated frame: {field} needs {needed} more octets, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Octets the field needs.
        needed: usize,
        /// Octets that were left.
        available: usize,
    },
    /// Neither ARP nor IPv6.
    #[error("unsupported ethertype {0:#06x}")]
    UnsupportedEtherType(u16),
    /// An ARP packet for another hardware or protocol type (RFC 826: ar$hrd, ar$pro).
    #[error(
        "unsupported ARP {field} {value:#x}: only Ethernet (1) / IPv4 (0x0800) with lengths 6/4"
    )]
    UnsupportedArp {
        /// `hardware type`, `protocol type`, `hardware length` or `protocol length`.
        field: &'static str,
        /// The value found.
        value: u16,
    },
    /// IPv6 version field was not 6.
    #[error("bad IPv6 version {0}")]
    BadIpVersion(u8),
    /// The IPv6 payload length exceeds the frame.
    #[error("IPv6 payload length {declared} exceeds the {available} octets in the frame")]
    BadPayloadLength {
        /// Payload Length field.
        declared: u16,
        /// Octets after the IPv6 header.
        available: usize,
    },
    /// IPv6 next header is not ICMPv6 (58).
    #[error("IPv6 next header {0} is not ICMPv6")]
    NotIcmpv6(u8),
    /// An ICMPv6 type other than Neighbor Solicitation or Advertisement.
    #[error("ICMPv6 type {0} is not NS/NA")]
    UnsupportedIcmpv6Type(u8),
    /// The ICMPv6 checksum does not match (RFC 4443 §2.3; RFC 4861 §7.1.1 drops such messages).
    #[error("bad ICMPv6 checksum {found:#06x}, expected {expected:#06x}")]
    BadChecksum {
        /// Checksum field as received.
        found: u16,
        /// Checksum computed over the pseudo-header and message.
        expected: u16,
    },
    /// An NDP option with length 0 (RFC 4861 §4.6: "Nodes MUST silently discard an ND packet
    /// that contains an option with length zero").
    #[error("NDP option type {kind} has length zero")]
    ZeroLengthOption {
        /// Option type.
        kind: u8,
    },
    /// An NDP option runs past the end of the message.
    #[error("NDP option type {kind} of {len} octets exceeds the {available} octets left")]
    OptionOverrun {
        /// Option type.
        kind: u8,
        /// Declared length in octets.
        len: usize,
        /// Octets left in the message.
        available: usize,
    },
    /// A link-layer address option whose length is not one 8-octet unit (RFC 4861 §4.6.1 for
    /// Ethernet: 6-octet address, length 1).
    #[error("link-layer address option type {kind} has length {units} units, expected 1")]
    BadLinkLayerOption {
        /// Option type (1 = source, 2 = target).
        kind: u8,
        /// Length field in 8-octet units.
        units: u8,
    },
}

impl FrameError {
    /// A short, stable label for a counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            FrameError::Truncated { .. } => "truncated",
            FrameError::UnsupportedEtherType(_) => "unsupported_ethertype",
            FrameError::UnsupportedArp { .. } => "unsupported_arp",
            FrameError::BadIpVersion(_) => "bad_ip_version",
            FrameError::BadPayloadLength { .. } => "bad_payload_length",
            FrameError::NotIcmpv6(_) => "not_icmpv6",
            FrameError::UnsupportedIcmpv6Type(_) => "unsupported_icmpv6_type",
            FrameError::BadChecksum { .. } => "bad_checksum",
            FrameError::ZeroLengthOption { .. } => "zero_length_option",
            FrameError::OptionOverrun { .. } => "option_overrun",
            FrameError::BadLinkLayerOption { .. } => "bad_link_layer_option",
        }
    }

    /// False for frames that are well-formed but simply not ARP/NS/NA; true otherwise.
    pub fn is_malformed(&self) -> bool {
        !matches!(
            self,
            FrameError::UnsupportedEtherType(_)
                | FrameError::UnsupportedArp { .. }
                | FrameError::NotIcmpv6(_)
                | FrameError::UnsupportedIcmpv6Type(_)
        )
    }
}

/// A bounds-checked cursor over received octets.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    /// The unread octets.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Takes the next `n` octets, or fails naming `field`.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FrameError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(FrameError::Truncated {
            field,
            needed: n,
            available: self.rest.len(),
        })?;
        self.rest = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, field)?;
        // `take` returned exactly N octets, so the conversion cannot fail; map anyway rather
        // than unwrap.
        bytes.try_into().map_err(|_| FrameError::Truncated {
            field,
            needed: N,
            available: bytes.len(),
        })
    }

    /// Takes one octet.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, FrameError> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    /// Takes a big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Takes a big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, FrameError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Takes a MAC address.
    pub fn mac(&mut self, field: &'static str) -> Result<MacAddr, FrameError> {
        Ok(MacAddr(self.array(field)?))
    }
}

/// One received or to-be-sent frame of a kind Layer 2 mode handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An ARP packet in an Ethernet frame.
    Arp {
        /// Ethernet header (EtherType ARP).
        eth: EthernetHeader,
        /// The ARP packet.
        arp: ArpPacket,
    },
    /// An NS or NA in IPv6 in an Ethernet frame.
    Ndp {
        /// Ethernet header (EtherType IPv6).
        eth: EthernetHeader,
        /// IPv6 header; its payload length is derived when encoding.
        ip: Ipv6Header,
        /// The ICMPv6 message.
        msg: NdpMessage,
    },
}

impl Frame {
    /// The Ethernet header.
    pub fn eth(&self) -> &EthernetHeader {
        match self {
            Frame::Arp { eth, .. } | Frame::Ndp { eth, .. } => eth,
        }
    }
}

/// Parses an Ethernet frame (without FCS, as AF_PACKET delivers it). Trailing padding after the
/// ARP packet or the IPv6 payload is ignored.
pub fn parse_frame(input: &[u8]) -> Result<Frame, FrameError> {
    let mut r = Reader::new(input);
    let eth = parse_ethernet(&mut r)?;
    match eth.ethertype {
        EtherType::ARP => Ok(Frame::Arp {
            eth,
            arp: parse_arp(&mut r)?,
        }),
        EtherType::IPV6 => {
            let (ip, msg) = parse_ndp(&mut r)?;
            Ok(Frame::Ndp { eth, ip, msg })
        }
        EtherType(other) => Err(FrameError::UnsupportedEtherType(other)),
    }
}

/// Encodes a frame, computing the IPv6 payload length and ICMPv6 checksum. ARP frames are
/// padded to the 60-octet Ethernet minimum (IEEE 802.3 §3.2.8, FCS excluded) because some
/// drivers send short frames unpadded.
pub fn encode_frame(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETHERNET_MIN_FRAME);
    encode_ethernet(frame.eth(), &mut out);
    match frame {
        Frame::Arp { arp, .. } => {
            encode_arp(arp, &mut out);
            if out.len() < ETHERNET_MIN_FRAME {
                out.resize(ETHERNET_MIN_FRAME, 0);
            }
        }
        Frame::Ndp { ip, msg, .. } => encode_ndp(ip, msg, &mut out),
    }
    out
}

/// Shortest Ethernet frame without FCS.
const ETHERNET_MIN_FRAME: usize = 60;
