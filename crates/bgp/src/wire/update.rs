//! UPDATE message (RFC 4271 §4.3) with RFC 7606 revised error handling.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```
//!
//! FerroLB's choices where RFC 7606 leaves one: a malformed NLRI or Withdrawn Routes field
//! (§5.3) is a session reset with 3/10 Invalid Network Field; lengths that make the UPDATE
//! unparseable are a session reset with 3/1 Malformed Attribute List.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net};

use super::attribute::{
    attribute_len, encode_attribute_header, parse_attributes, MpReach, MpUnreach, PathAttributes,
    FLAG_OPTIONAL,
};
use super::error::{
    update_subcode, AttributeError, EncodingError, ErrorAction, ErrorCode, MessageError,
};
use super::iana::{Afi, AttrType};
use super::nlri::{decode_ipv4_prefixes, encode_ipv4_prefixes, prefix_encoded_len};
use super::{DecodeCtx, Family};

/// An UPDATE message.
///
/// `treat_as_withdraw` and `attribute_errors` are decode results (RFC 7606); a session adds
/// the findings of [`Update::validate`] to them before handing a received UPDATE over. The
/// encoder ignores them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Update {
    /// IPv4 unicast prefixes withdrawn (Withdrawn Routes field).
    pub withdrawn: Vec<Ipv4Net>,
    /// MP_UNREACH_NLRI (RFC 4760 §4): withdrawn prefixes of another family.
    pub mp_unreach: Option<MpUnreach>,
    /// MP_REACH_NLRI (RFC 4760 §3): announced prefixes of another family and their next hop.
    pub mp_reach: Option<MpReach>,
    /// All other path attributes.
    pub attrs: PathAttributes,
    /// IPv4 unicast prefixes announced (NLRI field).
    pub nlri: Vec<Ipv4Net>,
    /// RFC 7606 "treat-as-withdraw": set by the decoder (or a session's [`Update::validate`])
    /// when an attribute error requires every prefix announced here (NLRI and MP_REACH_NLRI)
    /// to be handled as withdrawn.
    pub treat_as_withdraw: bool,
    /// Every RFC 7606 finding of the decoder, in wire order (then a session's validation).
    pub attribute_errors: Vec<AttributeError>,
}

impl Update {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast,
    /// otherwise an UPDATE with only an empty MP_UNREACH_NLRI.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            Update::default()
        } else {
            Update {
                mp_unreach: Some(MpUnreach {
                    family,
                    withdrawn: Vec::new(),
                }),
                ..Update::default()
            }
        }
    }

    /// The family this UPDATE marks End-of-RIB for, if it is such a marker (RFC 4724 §2).
    pub fn end_of_rib_family(&self) -> Option<Family> {
        let no_routes =
            self.withdrawn.is_empty() && self.nlri.is_empty() && self.mp_reach.is_none();
        if !no_routes || self.attrs != PathAttributes::default() {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::IPV4_UNICAST),
            Some(u) if u.withdrawn.is_empty() => Some(u.family),
            Some(_) => None,
        }
    }

    /// Every announced prefix: NLRI then MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.nlri
            .iter()
            .copied()
            .map(IpNet::V4)
            .chain(self.mp_reach.iter().flat_map(|m| m.nlri.iter().copied()))
    }

    /// Every withdrawn prefix: Withdrawn Routes then MP_UNREACH_NLRI. With
    /// `treat_as_withdraw`, the session must also withdraw [`Update::announced`].
    pub fn withdrawn_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.withdrawn.iter().copied().map(IpNet::V4).chain(
            self.mp_unreach
                .iter()
                .flat_map(|m| m.withdrawn.iter().copied()),
        )
    }

    /// The strongest RFC 7606 action among the decoder's findings.
    pub fn strongest_action(&self) -> Option<ErrorAction> {
        self.attribute_errors.iter().map(|e| e.action).max()
    }

    fn mp_reach_len(&self) -> usize {
        self.mp_reach
            .as_ref()
            .map_or(0, |m| attribute_len(m.value_len(), false))
    }

    fn mp_unreach_len(&self) -> usize {
        self.mp_unreach
            .as_ref()
            .map_or(0, |m| attribute_len(m.value_len(), false))
    }

    fn withdrawn_len(&self) -> usize {
        self.withdrawn
            .iter()
            .map(|n| prefix_encoded_len(n.prefix_len()))
            .sum()
    }

    fn nlri_len(&self) -> usize {
        self.nlri
            .iter()
            .map(|n| prefix_encoded_len(n.prefix_len()))
            .sum()
    }

    /// Total Path Attribute Length as encoded.
    pub fn attributes_len(&self, ctx: &DecodeCtx) -> usize {
        self.mp_reach_len() + self.mp_unreach_len() + self.attrs.encoded_len(ctx)
    }

    /// Body length on the wire (without the 19-octet header).
    pub fn body_len(&self, ctx: &DecodeCtx) -> usize {
        2 + self.withdrawn_len() + 2 + self.attributes_len(ctx) + self.nlri_len()
    }

    /// Checks every field can be encoded under `ctx`.
    pub fn check_encodable(&self, ctx: &DecodeCtx) -> Result<(), EncodingError> {
        self.attrs.check_encodable(ctx)?;
        if let Some(m) = &self.mp_reach {
            m.check()?;
        }
        if let Some(m) = &self.mp_unreach {
            m.check()?;
        }
        for (field, len) in [
            ("update.withdrawn", self.withdrawn_len()),
            ("update.path_attributes", self.attributes_len(ctx)),
        ] {
            if len > usize::from(u16::MAX) {
                return Err(EncodingError::TooLong {
                    field,
                    actual: len,
                    max: usize::from(u16::MAX),
                });
            }
        }
        Ok(())
    }

    /// Appends the body. Call [`Update::check_encodable`] first.
    pub fn encode_body(&self, ctx: &DecodeCtx, buf: &mut BytesMut) {
        buf.put_u16(u16::try_from(self.withdrawn_len()).unwrap_or(u16::MAX));
        encode_ipv4_prefixes(&self.withdrawn, buf);
        buf.put_u16(u16::try_from(self.attributes_len(ctx)).unwrap_or(u16::MAX));
        // RFC 7606 §5.1: MP_REACH_NLRI and MP_UNREACH_NLRI first, so a receiver can find the
        // NLRI even if a later attribute is malformed.
        if let Some(m) = &self.mp_reach {
            encode_attribute_header(FLAG_OPTIONAL, AttrType::MP_REACH_NLRI, m.value_len(), buf);
            m.encode(buf);
        }
        if let Some(m) = &self.mp_unreach {
            encode_attribute_header(FLAG_OPTIONAL, AttrType::MP_UNREACH_NLRI, m.value_len(), buf);
            m.encode(buf);
        }
        self.attrs.encode(ctx, buf);
        encode_ipv4_prefixes(&self.nlri, buf);
    }

    /// Decodes an UPDATE body: syntax only, attribute errors classified per RFC 7606.
    pub fn decode(body: &[u8], ctx: &DecodeCtx) -> Result<Update, MessageError> {
        let malformed_list = |reason| {
            MessageError::new(
                ErrorCode::UPDATE_MESSAGE,
                update_subcode::MALFORMED_ATTRIBUTE_LIST,
                Vec::new(),
                "update.lengths",
                reason,
            )
        };
        let invalid_network = |field, reason| {
            MessageError::new(
                ErrorCode::UPDATE_MESSAGE,
                update_subcode::INVALID_NETWORK_FIELD,
                Vec::new(),
                field,
                reason,
            )
        };
        // RFC 4271 §6.3: "If the Withdrawn Routes Length or Total Attribute Length is too large
        // (i.e., if Withdrawn Routes Length + Total Attribute Length + 23 exceeds the message
        // Length), then the Error Subcode MUST be set to Malformed Attribute List."
        let Some(([wh, wl], rest)) = body.split_first_chunk::<2>() else {
            return Err(malformed_list(
                "UPDATE shorter than the Withdrawn Routes Length field",
            ));
        };
        let Some((withdrawn_bytes, rest)) =
            rest.split_at_checked(usize::from(u16::from_be_bytes([*wh, *wl])))
        else {
            return Err(malformed_list(
                "Withdrawn Routes Length exceeds the message",
            ));
        };
        let Some(([ah, al], rest)) = rest.split_first_chunk::<2>() else {
            return Err(malformed_list(
                "Withdrawn Routes Length leaves no room for Total Path Attribute Length",
            ));
        };
        let Some((attr_bytes, nlri_bytes)) =
            rest.split_at_checked(usize::from(u16::from_be_bytes([*ah, *al])))
        else {
            return Err(malformed_list(
                "Total Path Attribute Length exceeds the message",
            ));
        };

        let mut withdrawn = Vec::new();
        // RFC 7606 §5.3: a Withdrawn Routes field that cannot be parsed -> session reset;
        // FerroLB sends 3/10.
        decode_ipv4_prefixes(withdrawn_bytes, &mut withdrawn).map_err(|_| {
            invalid_network(
                "update.withdrawn_routes",
                "Withdrawn Routes field malformed (RFC 7606 §5.3)",
            )
        })?;
        let parsed = parse_attributes(attr_bytes, ctx)?;
        let mut nlri = Vec::new();
        decode_ipv4_prefixes(nlri_bytes, &mut nlri)
            .map_err(|_| invalid_network("update.nlri", "NLRI field malformed (RFC 7606 §5.3)"))?;

        let treat_as_withdraw = parsed
            .errors
            .iter()
            .any(|e| e.action == ErrorAction::TreatAsWithdraw);
        Ok(Update {
            withdrawn,
            mp_unreach: parsed.mp_unreach,
            mp_reach: parsed.mp_reach,
            attrs: parsed.attrs,
            nlri,
            treat_as_withdraw,
            attribute_errors: parsed.errors,
        })
    }

    /// RFC 7606 §3 d: "If any of the well-known mandatory attributes are not present in an
    /// UPDATE message, then 'treat-as-withdraw' MUST be used": ORIGIN and AS_PATH when it
    /// announces anything, NEXT_HOP when it has IPv4 NLRI. A session applies these to every
    /// UPDATE it receives; the rest of [`Update::validate`] (a loopback NEXT_HOP, say) is
    /// local policy for a session, not a protocol error.
    pub fn missing_mandatory_attributes(&self) -> Vec<AttributeError> {
        let mut out = Vec::new();
        let mut push = |attr_type, reason| {
            out.push(AttributeError {
                attr_type,
                action: ErrorAction::TreatAsWithdraw,
                reason,
            })
        };
        let announces =
            !self.nlri.is_empty() || self.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
        if announces {
            if self.attrs.origin.is_none() {
                push(AttrType::ORIGIN, "ORIGIN missing (RFC 7606 §3 d)");
            }
            if self.attrs.as_path.is_none() {
                push(AttrType::AS_PATH, "AS_PATH missing (RFC 7606 §3 d)");
            }
        }
        if !self.nlri.is_empty() && self.attrs.next_hop.is_none() {
            push(
                AttrType::NEXT_HOP,
                "NEXT_HOP missing with IPv4 NLRI (RFC 7606 §3 d)",
            );
        }
        out
    }

    /// Semantic checks of a decoded UPDATE (RFC 7606 §3 d, RFC 4271 §6.3, RFC 4760 §3), kept
    /// apart from syntax: missing well-known mandatory attributes, a bad NEXT_HOP, a family
    /// not negotiated. Returns the findings; an empty list means the UPDATE is usable.
    pub fn validate(&self, ctx: &DecodeCtx) -> Vec<AttributeError> {
        let mut out = self.missing_mandatory_attributes();
        let mut push = |attr_type, action, reason| {
            out.push(AttributeError {
                attr_type,
                action,
                reason,
            })
        };
        if let Some(nh) = self.attrs.next_hop.filter(|_| !self.nlri.is_empty()) {
            if !is_valid_next_hop(nh) {
                push(
                    AttrType::NEXT_HOP,
                    ErrorAction::TreatAsWithdraw,
                    "NEXT_HOP is not a unicast host address (RFC 4271 §6.3, RFC 7606 §7.3)",
                );
            }
        }
        for family in self
            .mp_reach
            .iter()
            .map(|m| m.family)
            .chain(self.mp_unreach.iter().map(|m| m.family))
        {
            if !ctx.families.contains(family) {
                push(
                    if self.mp_reach.as_ref().is_some_and(|m| m.family == family) {
                        AttrType::MP_REACH_NLRI
                    } else {
                        AttrType::MP_UNREACH_NLRI
                    },
                    ErrorAction::AttributeDiscard,
                    "family not negotiated (RFC 4760 §7)",
                );
            }
        }
        if let Some(m) = &self.mp_reach {
            if m.family.afi == Afi::IPV6 && matches!(m.next_hop, super::MpNextHop::V4(_)) {
                push(
                    AttrType::MP_REACH_NLRI,
                    ErrorAction::TreatAsWithdraw,
                    "IPv4 next hop for IPv6 NLRI (RFC 2545 §3)",
                );
            }
        }
        out
    }
}

/// RFC 4271 §6.3: the NEXT_HOP must be a valid unicast host address; 0.0.0.0, loopback,
/// multicast and broadcast are not.
fn is_valid_next_hop(nh: Ipv4Addr) -> bool {
    !(nh.is_unspecified() || nh.is_loopback() || nh.is_multicast() || nh.is_broadcast())
}
