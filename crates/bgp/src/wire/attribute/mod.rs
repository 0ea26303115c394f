//! Path attributes (RFC 4271 §4.3, §5) with RFC 7606 error classification.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |O|T|P|E|  0000 |  Attr. Type   | Length (1, or 2 if E) | Value...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! O = Optional, T = Transitive, P = Partial, E = Extended Length.
//!
//! Decoding checks syntax only and classifies each problem (RFC 7606 §2-§7): the UPDATE still
//! decodes and carries [`AttributeError`] findings, unless the error forces a session reset.
//! Meaning (missing mandatory attributes and the like) is checked by `Update::validate`.
//! Files are named by attribute type code.
//!
//! Coverage and error handling (decode, RFC 7606 unless noted):
//!
//! | code | attribute | flags | malformed → |
//! |---|---|---|---|
//! | 1 | ORIGIN | well-known | treat-as-withdraw (§7.1) |
//! | 2 | AS_PATH (2/4-octet per ctx) | well-known | treat-as-withdraw (§7.2) |
//! | 3 | NEXT_HOP | well-known | treat-as-withdraw (§7.3); bad address: `validate` |
//! | 4 | MULTI_EXIT_DISC | optional | treat-as-withdraw (§7.4) |
//! | 5 | LOCAL_PREF | well-known | treat-as-withdraw (§7.5) |
//! | 6 | ATOMIC_AGGREGATE | well-known | attribute discard (§7.6) |
//! | 7 | AGGREGATOR (2/4-octet per ctx) | opt. transitive | attribute discard (§7.7) |
//! | 8 | COMMUNITIES | opt. transitive | treat-as-withdraw (§7.8) |
//! | 14 | MP_REACH_NLRI (IPv4/IPv6 uni/multicast) | optional | session reset 3/9 or 3/10 (§7.11, §5.3) |
//! | 15 | MP_UNREACH_NLRI | optional | session reset 3/9 or 3/10 (§7.12, §5.3) |
//! | 16 | EXTENDED COMMUNITIES | opt. transitive | treat-as-withdraw (§7.14) |
//! | 17 | AS4_PATH | opt. transitive | attribute discard (RFC 6793 §6); discarded from a 4-octet peer |
//! | 18 | AS4_AGGREGATOR | opt. transitive | attribute discard (RFC 6793 §6); discarded from a 4-octet peer |
//! | 32 | LARGE_COMMUNITY | opt. transitive | treat-as-withdraw (RFC 8092 §6) |
//! | other | kept raw with flags | optional | well-known unknown: session reset 3/2 |
//!
//! Any attribute: O/T flags in conflict → treat-as-withdraw (§3 c); duplicate → discard, but
//! a duplicate MP_(UN)REACH_NLRI → 3/1 (§3 g); length overrun → treat-as-withdraw (§4).
//! MP attributes from an unsupported family are discarded. Not decoded (kept raw):
//! ORIGINATOR_ID, CLUSTER_LIST and everything newer.

mod attr_01_origin;
mod attr_02_17_as_path;
mod attr_07_18_aggregator;
mod attr_08_16_32_communities;
mod attr_14_15_mp;

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

pub use attr_01_origin::Origin;
pub use attr_02_17_as_path::{AsPath, AsSegment, AsSegmentType};
pub use attr_07_18_aggregator::Aggregator;
pub use attr_08_16_32_communities::{Community, ExtendedCommunity, LargeCommunity};
pub use attr_14_15_mp::{MpNextHop, MpReach, MpUnreach};

use attr_08_16_32_communities::{
    encode_communities, encode_extended_communities, encode_large_communities, parse_communities,
    parse_extended_communities, parse_large_communities,
};
use attr_14_15_mp::MpError;

use super::error::{
    update_subcode, AttributeError, EncodingError, ErrorAction, ErrorCode, MessageError,
};
use super::iana::AttrType;
use super::DecodeCtx;

/// Attribute flag: Optional (RFC 4271 §4.3).
pub const FLAG_OPTIONAL: u8 = 0x80;
/// Attribute flag: Transitive.
pub const FLAG_TRANSITIVE: u8 = 0x40;
/// Attribute flag: Partial (some optional transitive attribute was not understood on the way).
pub const FLAG_PARTIAL: u8 = 0x20;
/// Attribute flag: Extended Length (2-octet length field).
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
const OPTIONAL_TRANSITIVE: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
const OPTIONAL_NON_TRANSITIVE: u8 = FLAG_OPTIONAL;

/// An attribute kept as received: one we do not decode. Optional ones are kept (transitive
/// ones must be passed on, RFC 4271 §5); an unrecognised well-known one resets the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RawAttribute {
    /// Flags exactly as received (the Extended Length bit is set on encode if needed).
    pub flags: u8,
    /// Type code.
    pub type_code: AttrType,
    /// Value.
    pub value: Vec<u8>,
}

/// The path attributes of an UPDATE other than MP_REACH_NLRI / MP_UNREACH_NLRI (which are
/// fields of `Update`). `None` / `false` means absent. Hash and Eq make it usable as the
/// grouping key of the packer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PathAttributes {
    /// ORIGIN (1), well-known mandatory.
    pub origin: Option<Origin>,
    /// AS_PATH (2), well-known mandatory; ASNs as negotiated (2 or 4 octets on the wire).
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (3), well-known mandatory when IPv4 NLRI are present.
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC (4), optional non-transitive.
    pub med: Option<u32>,
    /// LOCAL_PREF (5), well-known, iBGP only.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE (6), well-known discretionary, no value.
    pub atomic_aggregate: bool,
    /// AGGREGATOR (7), optional transitive.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES (8, RFC 1997), optional transitive; never `Some(empty)` on the wire.
    pub communities: Option<Vec<Community>>,
    /// EXTENDED COMMUNITIES (16, RFC 4360), optional transitive.
    pub extended_communities: Option<Vec<ExtendedCommunity>>,
    /// AS4_PATH (17, RFC 6793), only between a 4-octet and a 2-octet speaker.
    pub as4_path: Option<AsPath>,
    /// AS4_AGGREGATOR (18, RFC 6793), only between a 4-octet and a 2-octet speaker.
    pub as4_aggregator: Option<Aggregator>,
    /// LARGE_COMMUNITY (32, RFC 8092), optional transitive.
    pub large_communities: Option<Vec<LargeCommunity>>,
    /// Attributes we do not decode, sorted by type code.
    pub unknown: Vec<RawAttribute>,
}

/// Length of an attribute with a value of `value_len` octets; the Extended Length form is used
/// when the value needs it or `force_extended` (a raw attribute received that way).
#[inline]
pub fn attribute_len(value_len: usize, force_extended: bool) -> usize {
    if value_len > 255 || force_extended {
        4 + value_len
    } else {
        3 + value_len
    }
}

/// Appends an attribute header; `flags` gets the Extended Length bit when needed.
#[inline]
pub(crate) fn encode_attribute_header(
    flags: u8,
    code: AttrType,
    value_len: usize,
    buf: &mut BytesMut,
) {
    if value_len > 255 || flags & FLAG_EXTENDED_LENGTH != 0 {
        buf.put_u8(flags | FLAG_EXTENDED_LENGTH);
        buf.put_u8(code.0);
        buf.put_u16(u16::try_from(value_len).unwrap_or(u16::MAX));
    } else {
        buf.put_u8(flags);
        buf.put_u8(code.0);
        buf.put_u8(u8::try_from(value_len).unwrap_or(u8::MAX));
    }
}

/// Known attribute codes in encoding order (ascending, RFC 4271 §5; MP attributes are written
/// before all of these, RFC 7606 §5.1).
const KNOWN_ORDER: [AttrType; 12] = [
    AttrType::ORIGIN,
    AttrType::AS_PATH,
    AttrType::NEXT_HOP,
    AttrType::MULTI_EXIT_DISC,
    AttrType::LOCAL_PREF,
    AttrType::ATOMIC_AGGREGATE,
    AttrType::AGGREGATOR,
    AttrType::COMMUNITIES,
    AttrType::EXTENDED_COMMUNITIES,
    AttrType::AS4_PATH,
    AttrType::AS4_AGGREGATOR,
    AttrType::LARGE_COMMUNITIES,
];

/// The Optional and Transitive bits each known attribute must have (RFC 7606 §3 c).
fn expected_flags(code: AttrType) -> Option<u8> {
    Some(match code {
        AttrType::ORIGIN
        | AttrType::AS_PATH
        | AttrType::NEXT_HOP
        | AttrType::LOCAL_PREF
        | AttrType::ATOMIC_AGGREGATE => WELL_KNOWN,
        AttrType::MULTI_EXIT_DISC | AttrType::MP_REACH_NLRI | AttrType::MP_UNREACH_NLRI => {
            OPTIONAL_NON_TRANSITIVE
        }
        AttrType::AGGREGATOR
        | AttrType::COMMUNITIES
        | AttrType::EXTENDED_COMMUNITIES
        | AttrType::AS4_PATH
        | AttrType::AS4_AGGREGATOR
        | AttrType::LARGE_COMMUNITIES => OPTIONAL_TRANSITIVE,
        _ => return None,
    })
}

impl PathAttributes {
    /// Value length of the known attribute `code`, if present.
    fn known_value_len(&self, code: AttrType, ctx: &DecodeCtx) -> Option<usize> {
        Some(match code {
            AttrType::ORIGIN => self.origin.map(|_| 1)?,
            AttrType::AS_PATH => self.as_path.as_ref()?.value_len(ctx.four_octet_as),
            AttrType::NEXT_HOP => self.next_hop.map(|_| 4)?,
            AttrType::MULTI_EXIT_DISC => self.med.map(|_| 4)?,
            AttrType::LOCAL_PREF => self.local_pref.map(|_| 4)?,
            AttrType::ATOMIC_AGGREGATE if self.atomic_aggregate => 0,
            AttrType::AGGREGATOR => self
                .aggregator
                .map(|_| Aggregator::value_len(ctx.four_octet_as))?,
            AttrType::COMMUNITIES => 4 * self.communities.as_ref()?.len(),
            AttrType::EXTENDED_COMMUNITIES => 8 * self.extended_communities.as_ref()?.len(),
            AttrType::AS4_PATH => self.as4_path.as_ref()?.value_len(true),
            AttrType::AS4_AGGREGATOR => self.as4_aggregator.map(|_| 8)?,
            AttrType::LARGE_COMMUNITIES => 12 * self.large_communities.as_ref()?.len(),
            _ => return None,
        })
    }

    /// Encoded length of all these attributes under `ctx`, as [`PathAttributes::encode`]
    /// writes them.
    pub fn encoded_len(&self, ctx: &DecodeCtx) -> usize {
        let known: usize = KNOWN_ORDER
            .iter()
            .filter_map(|&code| self.known_value_len(code, ctx))
            .map(|len| attribute_len(len, false))
            .sum();
        let unknown: usize = self
            .unknown
            .iter()
            .map(|a| attribute_len(a.value.len(), a.flags & FLAG_EXTENDED_LENGTH != 0))
            .sum();
        known + unknown
    }

    /// Checks every attribute can be encoded under `ctx`.
    pub fn check_encodable(&self, ctx: &DecodeCtx) -> Result<(), EncodingError> {
        if let Some(p) = &self.as_path {
            p.check(ctx.four_octet_as, "as_path")?;
        }
        if let Some(p) = &self.as4_path {
            p.check(true, "as4_path")?;
        }
        if let Some(a) = &self.aggregator {
            if !ctx.four_octet_as && a.asn > u32::from(u16::MAX) {
                return Err(EncodingError::Invalid {
                    field: "aggregator.asn",
                    reason: "4-octet ASN towards a 2-octet peer: use AS_TRANS and AS4_AGGREGATOR (RFC 6793 §4.2.2)",
                });
            }
        }
        for (field, empty) in [
            (
                "communities",
                self.communities.as_ref().is_some_and(Vec::is_empty),
            ),
            (
                "extended_communities",
                self.extended_communities
                    .as_ref()
                    .is_some_and(Vec::is_empty),
            ),
            (
                "large_communities",
                self.large_communities.as_ref().is_some_and(Vec::is_empty),
            ),
        ] {
            if empty {
                return Err(EncodingError::Invalid {
                    field,
                    reason:
                        "an empty list is malformed on the wire (RFC 7606 §7.8, §7.14; RFC 8092 §6)",
                });
            }
        }
        for code in KNOWN_ORDER {
            if let Some(len) = self.known_value_len(code, ctx) {
                if len > usize::from(u16::MAX) {
                    return Err(EncodingError::TooLong {
                        field: "path attribute value",
                        actual: len,
                        max: usize::from(u16::MAX),
                    });
                }
            }
        }
        for raw in &self.unknown {
            if expected_flags(raw.type_code).is_some() {
                return Err(EncodingError::Invalid {
                    field: "unknown.type_code",
                    reason:
                        "raw attribute uses a type code this crate decodes; use the typed field",
                });
            }
            if raw.value.len() > usize::from(u16::MAX) {
                return Err(EncodingError::TooLong {
                    field: "unknown.value",
                    actual: raw.value.len(),
                    max: usize::from(u16::MAX),
                });
            }
        }
        Ok(())
    }

    fn encode_known(&self, code: AttrType, ctx: &DecodeCtx, buf: &mut BytesMut) {
        let Some(len) = self.known_value_len(code, ctx) else {
            return;
        };
        let flags = expected_flags(code).unwrap_or(OPTIONAL_TRANSITIVE);
        encode_attribute_header(flags, code, len, buf);
        match code {
            AttrType::ORIGIN => {
                if let Some(o) = self.origin {
                    buf.put_u8(o.value());
                }
            }
            AttrType::AS_PATH => {
                if let Some(p) = &self.as_path {
                    p.encode(ctx.four_octet_as, buf);
                }
            }
            AttrType::NEXT_HOP => {
                if let Some(nh) = self.next_hop {
                    buf.put_slice(&nh.octets());
                }
            }
            AttrType::MULTI_EXIT_DISC => {
                if let Some(v) = self.med {
                    buf.put_u32(v);
                }
            }
            AttrType::LOCAL_PREF => {
                if let Some(v) = self.local_pref {
                    buf.put_u32(v);
                }
            }
            AttrType::AGGREGATOR => {
                if let Some(a) = &self.aggregator {
                    a.encode(ctx.four_octet_as, buf);
                }
            }
            AttrType::COMMUNITIES => {
                if let Some(list) = &self.communities {
                    encode_communities(list, buf);
                }
            }
            AttrType::EXTENDED_COMMUNITIES => {
                if let Some(list) = &self.extended_communities {
                    encode_extended_communities(list, buf);
                }
            }
            AttrType::AS4_PATH => {
                if let Some(p) = &self.as4_path {
                    p.encode(true, buf);
                }
            }
            AttrType::AS4_AGGREGATOR => {
                if let Some(a) = &self.as4_aggregator {
                    a.encode(true, buf);
                }
            }
            AttrType::LARGE_COMMUNITIES => {
                if let Some(list) = &self.large_communities {
                    encode_large_communities(list, buf);
                }
            }
            // ATOMIC_AGGREGATE has no value.
            _ => {}
        }
    }

    /// Appends all attributes in ascending type code order (RFC 4271 §5), unknown ones merged
    /// in by code. Call [`PathAttributes::check_encodable`] first.
    pub fn encode(&self, ctx: &DecodeCtx, buf: &mut BytesMut) {
        let mut unknown = self.unknown.iter().peekable();
        for code in KNOWN_ORDER {
            // Bounded by self.unknown.len() over the whole loop.
            while let Some(raw) = unknown.next_if(|raw| raw.type_code < code) {
                encode_raw(raw, buf);
            }
            self.encode_known(code, ctx, buf);
        }
        for raw in unknown {
            encode_raw(raw, buf);
        }
    }

    /// The attributes to send when passing this route on to another peer (RFC 4271 §5, §9.1.3):
    /// unknown optional transitive attributes get the Partial bit, unknown non-transitive ones
    /// are dropped.
    pub fn readvertised(&self) -> PathAttributes {
        let mut out = self.clone();
        out.unknown.retain(|a| a.flags & FLAG_TRANSITIVE != 0);
        for a in &mut out.unknown {
            if a.flags & FLAG_OPTIONAL != 0 {
                a.flags |= FLAG_PARTIAL;
            }
        }
        out
    }

    /// Attributes received from a 2-octet peer with the 4-octet information merged back
    /// (RFC 6793 §4.2.3): AS_PATH rebuilt from AS_PATH and AS4_PATH, AGGREGATOR from
    /// AS4_AGGREGATOR; AS4_PATH and AS4_AGGREGATOR removed. The inverse of
    /// [`PathAttributes::for_two_octet_peer`] for paths of AS_SEQUENCEs.
    pub fn with_as4_merged(&self) -> PathAttributes {
        let mut out = self.clone();
        let as4_path = out.as4_path.take();
        let as4_aggregator = out.as4_aggregator.take();
        // RFC 6793 §4.2.3: "If the AGGREGATOR attribute carries an AS number other than
        // AS_TRANS, then AS4_AGGREGATOR and AS4_PATH ... SHALL be ignored".
        if let Some(agg) = self.aggregator {
            if agg.asn != u32::from(super::iana::AS_TRANS) {
                return out;
            }
            if let Some(agg4) = as4_aggregator {
                out.aggregator = Some(agg4);
            }
        }
        if let (Some(path), Some(path4)) = (&self.as_path, as4_path) {
            out.as_path = Some(path.merged_with_as4_path(&path4));
        }
        out
    }

    /// For a 2-octet peer (RFC 6793 §4.2.2): AS_PATH and AGGREGATOR with AS_TRANS in place of
    /// 4-octet ASNs, and the real values in AS4_PATH / AS4_AGGREGATOR when any was replaced.
    pub fn for_two_octet_peer(&self) -> PathAttributes {
        let mut out = self.clone();
        if let Some(path) = &self.as_path {
            if path.has_four_octet_asn() {
                out.as4_path = Some(path.clone());
                out.as_path = Some(path.with_as_trans());
            }
        }
        if let Some(agg) = self.aggregator {
            if agg.asn > u32::from(u16::MAX) {
                out.as4_aggregator = Some(agg);
                out.aggregator = Some(Aggregator {
                    asn: u32::from(super::iana::AS_TRANS),
                    address: agg.address,
                });
            }
        }
        out
    }
}

fn encode_raw(raw: &RawAttribute, buf: &mut BytesMut) {
    encode_attribute_header(raw.flags, raw.type_code, raw.value.len(), buf);
    buf.put_slice(&raw.value);
}

/// The result of parsing the Path Attributes field.
#[derive(Debug, Default)]
pub(crate) struct ParsedAttributes {
    pub attrs: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub errors: Vec<AttributeError>,
}

fn finding(
    errors: &mut Vec<AttributeError>,
    code: AttrType,
    action: ErrorAction,
    reason: &'static str,
) {
    errors.push(AttributeError {
        attr_type: code,
        action,
        reason,
    });
}

fn update_error(
    subcode: u8,
    data: &[u8],
    field: &'static str,
    reason: &'static str,
) -> MessageError {
    MessageError::new(
        ErrorCode::UPDATE_MESSAGE,
        subcode,
        data.to_vec(),
        field,
        reason,
    )
}

/// Parses the Path Attributes field. `Err` is a session reset; everything softer is a
/// finding in the result.
pub(crate) fn parse_attributes(
    input: &[u8],
    ctx: &DecodeCtx,
) -> Result<ParsedAttributes, MessageError> {
    use ErrorAction::{AttributeDiscard, TreatAsWithdraw};
    let mut out = ParsedAttributes::default();
    let mut seen = [0u64; 4];
    let mut rest = input;
    // Each attribute consumes at least 3 octets: bounded by input.len() / 3.
    while !rest.is_empty() {
        let (flags, code, len_width) = match rest {
            [flags, code, ..] => (
                *flags,
                AttrType(*code),
                if flags & FLAG_EXTENDED_LENGTH != 0 {
                    2
                } else {
                    1
                },
            ),
            _ => (0, AttrType(0), 1),
        };
        let header_len = 2 + len_width;
        let value_len = match (len_width, rest.get(2..header_len)) {
            (1, Some([l])) => usize::from(*l),
            (2, Some([h, l])) => usize::from(u16::from_be_bytes([*h, *l])),
            _ => {
                // RFC 7606 §4: "fewer than three octets remain (or fewer than four octets, if
                // the Attribute Flags field has the Extended Length bit set)" -> treat-as-withdraw,
                // and the Total Attribute Length is taken to be correct.
                finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "attribute header truncated (RFC 7606 §4)",
                );
                break;
            }
        };
        let Some(raw) = rest.get(..header_len + value_len) else {
            // RFC 7606 §4: an attribute length overrunning the Total Attribute Length ->
            // treat-as-withdraw.
            finding(
                &mut out.errors,
                code,
                TreatAsWithdraw,
                "attribute length overruns the attributes (RFC 7606 §4)",
            );
            break;
        };
        let value = raw.get(header_len..).unwrap_or_default();
        rest = rest.get(header_len + value_len..).unwrap_or_default();

        let word = usize::from(code.0 / 64);
        let bit = 1u64 << (code.0 % 64);
        let duplicate = seen.get(word).is_some_and(|w| w & bit != 0);
        if let Some(w) = seen.get_mut(word) {
            *w |= bit;
        }
        if duplicate {
            if code == AttrType::MP_REACH_NLRI || code == AttrType::MP_UNREACH_NLRI {
                // RFC 7606 §3 g: MP_REACH_NLRI or MP_UNREACH_NLRI more than once -> 3/1.
                return Err(update_error(
                    update_subcode::MALFORMED_ATTRIBUTE_LIST,
                    &[],
                    "update.path_attributes",
                    "MP_REACH_NLRI or MP_UNREACH_NLRI appears twice (RFC 7606 §3 g)",
                ));
            }
            // RFC 7606 §3 g: other duplicates are discarded, the first occurrence kept.
            finding(
                &mut out.errors,
                code,
                AttributeDiscard,
                "duplicate attribute discarded (RFC 7606 §3 g)",
            );
            continue;
        }

        if let Some(expected) = expected_flags(code) {
            if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expected {
                // RFC 7606 §3 c: Optional/Transitive bits in conflict with the type ->
                // malformed, treat-as-withdraw. The value is still parsed so the NLRI are
                // known.
                finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "attribute flags conflict with the type code (RFC 7606 §3 c)",
                );
            }
        }

        let attrs = &mut out.attrs;
        match code {
            AttrType::ORIGIN => match Origin::parse(value) {
                Some(o) => attrs.origin = Some(o),
                None => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "ORIGIN length or value invalid (RFC 7606 §7.1)",
                ),
            },
            AttrType::AS_PATH => match AsPath::parse(value, ctx.four_octet_as) {
                Some(p) => attrs.as_path = Some(p),
                None => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "AS_PATH malformed (RFC 7606 §7.2)",
                ),
            },
            AttrType::NEXT_HOP => match <[u8; 4]>::try_from(value) {
                Ok(nh) => attrs.next_hop = Some(Ipv4Addr::from(nh)),
                Err(_) => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "NEXT_HOP length is not 4 (RFC 7606 §7.3)",
                ),
            },
            AttrType::MULTI_EXIT_DISC => match <[u8; 4]>::try_from(value) {
                Ok(v) => attrs.med = Some(u32::from_be_bytes(v)),
                Err(_) => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "MULTI_EXIT_DISC length is not 4 (RFC 7606 §7.4)",
                ),
            },
            AttrType::LOCAL_PREF => match <[u8; 4]>::try_from(value) {
                Ok(v) => attrs.local_pref = Some(u32::from_be_bytes(v)),
                Err(_) => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "LOCAL_PREF length is not 4 (RFC 7606 §7.5)",
                ),
            },
            AttrType::ATOMIC_AGGREGATE => {
                if value.is_empty() {
                    attrs.atomic_aggregate = true;
                } else {
                    finding(
                        &mut out.errors,
                        code,
                        AttributeDiscard,
                        "ATOMIC_AGGREGATE length is not 0 (RFC 7606 §7.6)",
                    );
                }
            }
            AttrType::AGGREGATOR => match Aggregator::parse(value, ctx.four_octet_as) {
                Some(a) => attrs.aggregator = Some(a),
                None => finding(
                    &mut out.errors,
                    code,
                    AttributeDiscard,
                    "AGGREGATOR length invalid (RFC 7606 §7.7)",
                ),
            },
            AttrType::COMMUNITIES => match parse_communities(value) {
                Some(c) => attrs.communities = Some(c),
                None => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "COMMUNITIES length not a non-zero multiple of 4 (RFC 7606 §7.8)",
                ),
            },
            AttrType::EXTENDED_COMMUNITIES => match parse_extended_communities(value) {
                Some(c) => attrs.extended_communities = Some(c),
                None => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "EXTENDED COMMUNITIES length not a non-zero multiple of 8 (RFC 7606 §7.14)",
                ),
            },
            AttrType::LARGE_COMMUNITIES => match parse_large_communities(value) {
                Some(c) => attrs.large_communities = Some(c),
                None => finding(
                    &mut out.errors,
                    code,
                    TreatAsWithdraw,
                    "LARGE_COMMUNITY length not a non-zero multiple of 12 (RFC 8092 §6)",
                ),
            },
            AttrType::AS4_PATH | AttrType::AS4_AGGREGATOR if ctx.four_octet_as => {
                // RFC 6793 §3: between two NEW speakers these "MUST be discarded".
                finding(
                    &mut out.errors,
                    code,
                    AttributeDiscard,
                    "AS4_PATH/AS4_AGGREGATOR from a 4-octet AS peer (RFC 6793 §3)",
                );
            }
            AttrType::AS4_PATH => match AsPath::parse(value, true) {
                Some(p) => attrs.as4_path = Some(p),
                None => finding(
                    &mut out.errors,
                    code,
                    AttributeDiscard,
                    "AS4_PATH malformed (RFC 6793 §6: attribute discard)",
                ),
            },
            AttrType::AS4_AGGREGATOR => match Aggregator::parse(value, true) {
                Some(a) => attrs.as4_aggregator = Some(a),
                None => finding(
                    &mut out.errors,
                    code,
                    AttributeDiscard,
                    "AS4_AGGREGATOR length is not 8 (RFC 6793 §6)",
                ),
            },
            AttrType::MP_REACH_NLRI => match MpReach::parse(value) {
                Ok(mp) => out.mp_reach = Some(mp),
                Err(e) => mp_failure(e, code, raw, &mut out.errors)?,
            },
            AttrType::MP_UNREACH_NLRI => match MpUnreach::parse(value) {
                Ok(mp) => out.mp_unreach = Some(mp),
                Err(e) => mp_failure(e, code, raw, &mut out.errors)?,
            },
            _ => {
                if flags & FLAG_OPTIONAL == 0 {
                    // RFC 4271 §6.3: "If any of the well-known mandatory attributes are not
                    // recognized, then the Error Subcode MUST be set to Unrecognized
                    // Well-known Attribute. The Data field MUST contain the unrecognized
                    // attribute (type, length, and value)."
                    return Err(update_error(
                        update_subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                        raw,
                        "update.path_attributes.type",
                        "unrecognized well-known attribute",
                    ));
                }
                attrs.unknown.push(RawAttribute {
                    flags,
                    type_code: code,
                    value: value.to_vec(),
                });
            }
        }
    }
    // Sorted by type code so encoding can merge them with the known attributes in order.
    out.attrs.unknown.sort_by_key(|a| a.type_code);
    Ok(out)
}

fn mp_failure(
    e: MpError,
    code: AttrType,
    raw: &[u8],
    errors: &mut Vec<AttributeError>,
) -> Result<(), MessageError> {
    match e {
        MpError::Malformed => {
            // RFC 7606 §7.11: the NLRI cannot be located reliably -> "session reset" (we do
            // not implement AFI/SAFI disable). Data: the attribute (RFC 4271 §6.3).
            Err(update_error(
                update_subcode::OPTIONAL_ATTRIBUTE_ERROR,
                raw,
                "update.path_attributes.mp",
                "MP_REACH_NLRI/MP_UNREACH_NLRI fixed fields or next hop length malformed (RFC 7606 §7.11)",
            ))
        }
        MpError::BadNlri => {
            // RFC 7606 §5.3: a malformed NLRI -> session reset; FerroLB sends 3/10.
            Err(update_error(
                update_subcode::INVALID_NETWORK_FIELD,
                &[],
                "update.path_attributes.mp.nlri",
                "MP NLRI or withdrawn routes malformed (RFC 7606 §5.3)",
            ))
        }
        MpError::UnsupportedFamily(_) => {
            finding(
                errors,
                code,
                ErrorAction::AttributeDiscard,
                "MP attribute for a family this speaker does not decode (RFC 4760 §7)",
            );
            Ok(())
        }
    }
}
