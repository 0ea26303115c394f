//! IANA number spaces used on the wire, as open newtypes.
//!
//! Each space is a `struct Name(pub uN)` with associated constants for the values we know, so an
//! unknown value received from a peer is kept and re-encoded unchanged, and `Debug` prints the
//! registered name where there is one (`Afi::IPV6` prints as `IPV6`, `Afi(99)` as `Afi(99)`).

use std::fmt;

/// Defines an open enum: a newtype over an integer with named constants and a name lookup.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $constant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $constant: $name = $name($value); )*

            /// The registered name of this value, if we know it.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($constant)), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

open_enum! {
    /// Address Family Identifier (IANA "Address Family Numbers"; RFC 4760 §3).
    Afi(u16) {
        /// IP version 4.
        IPV4 = 1,
        /// IP version 6.
        IPV6 = 2,
        /// L2VPN (RFC 4761).
        L2VPN = 25,
    }
}

open_enum! {
    /// Subsequent Address Family Identifier (IANA "SAFI Values"; RFC 4760 §6).
    Safi(u8) {
        /// Unicast forwarding (RFC 4760).
        UNICAST = 1,
        /// Multicast forwarding (RFC 4760).
        MULTICAST = 2,
        /// Labeled unicast (RFC 8277).
        MPLS_LABEL = 4,
        /// EVPN (RFC 7432).
        EVPN = 70,
        /// MPLS-labeled VPN address (RFC 4364).
        MPLS_VPN = 128,
        /// Flow specification (RFC 8955).
        FLOWSPEC = 133,
    }
}

open_enum! {
    /// BGP message type (IANA "BGP Message Types"; RFC 4271 §4.1).
    MessageType(u8) {
        /// OPEN, RFC 4271 §4.2.
        OPEN = 1,
        /// UPDATE, RFC 4271 §4.3.
        UPDATE = 2,
        /// NOTIFICATION, RFC 4271 §4.5.
        NOTIFICATION = 3,
        /// KEEPALIVE, RFC 4271 §4.4.
        KEEPALIVE = 4,
        /// ROUTE-REFRESH, RFC 2918 §3.
        ROUTE_REFRESH = 5,
    }
}

open_enum! {
    /// Path attribute type code (IANA "BGP Path Attributes").
    AttrType(u8) {
        /// ORIGIN, RFC 4271 §5.1.1.
        ORIGIN = 1,
        /// AS_PATH, RFC 4271 §5.1.2.
        AS_PATH = 2,
        /// NEXT_HOP, RFC 4271 §5.1.3.
        NEXT_HOP = 3,
        /// MULTI_EXIT_DISC, RFC 4271 §5.1.4.
        MULTI_EXIT_DISC = 4,
        /// LOCAL_PREF, RFC 4271 §5.1.5.
        LOCAL_PREF = 5,
        /// ATOMIC_AGGREGATE, RFC 4271 §5.1.6.
        ATOMIC_AGGREGATE = 6,
        /// AGGREGATOR, RFC 4271 §5.1.7.
        AGGREGATOR = 7,
        /// COMMUNITIES, RFC 1997.
        COMMUNITIES = 8,
        /// ORIGINATOR_ID, RFC 4456.
        ORIGINATOR_ID = 9,
        /// CLUSTER_LIST, RFC 4456.
        CLUSTER_LIST = 10,
        /// MP_REACH_NLRI, RFC 4760 §3.
        MP_REACH_NLRI = 14,
        /// MP_UNREACH_NLRI, RFC 4760 §4.
        MP_UNREACH_NLRI = 15,
        /// EXTENDED COMMUNITIES, RFC 4360.
        EXTENDED_COMMUNITIES = 16,
        /// AS4_PATH, RFC 6793.
        AS4_PATH = 17,
        /// AS4_AGGREGATOR, RFC 6793.
        AS4_AGGREGATOR = 18,
        /// LARGE_COMMUNITY, RFC 8092.
        LARGE_COMMUNITIES = 32,
    }
}

open_enum! {
    /// Capability code (IANA "Capability Codes"; RFC 5492 §4).
    CapabilityCode(u8) {
        /// Multiprotocol Extensions, RFC 4760 §8.
        MULTIPROTOCOL = 1,
        /// Route Refresh, RFC 2918 §2.
        ROUTE_REFRESH = 2,
        /// Extended Message, RFC 8654 §3.
        EXTENDED_MESSAGE = 6,
        /// Graceful Restart, RFC 4724 §3.
        GRACEFUL_RESTART = 64,
        /// Support for 4-octet AS number, RFC 6793 §3.
        FOUR_OCTET_AS = 65,
        /// ADD-PATH, RFC 7911 §4.
        ADD_PATH = 69,
        /// Enhanced Route Refresh, RFC 7313 §3.2.
        ENHANCED_ROUTE_REFRESH = 70,
        /// FQDN (hostname), draft-walton-bgp-hostname-capability.
        FQDN = 73,
    }
}

open_enum! {
    /// OPEN optional parameter type (IANA "BGP OPEN Optional Parameter Types"; RFC 5492 §4).
    ParamType(u8) {
        /// Capabilities, RFC 5492.
        CAPABILITIES = 2,
        /// The RFC 9072 §2 marker for the extended optional parameters length encoding.
        EXTENDED_LENGTH = 255,
    }
}

/// AS_TRANS, the 2-octet stand-in for a 4-octet ASN (RFC 6793 §2, IANA "16-bit AS numbers").
pub const AS_TRANS: u16 = 23456;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_print_their_names_and_unknown_values_their_numbers() {
        assert_eq!(format!("{:?}", Afi::IPV6), "IPV6");
        assert_eq!(format!("{:?}", Afi(99)), "Afi(99)");
        assert_eq!(AttrType(32).name(), Some("LARGE_COMMUNITIES"));
        assert_eq!(CapabilityCode(200).name(), None);
    }
}
