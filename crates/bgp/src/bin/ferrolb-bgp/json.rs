//! The JSON contract of `ferrolb-bgp decode`: one object per message.
//!
//! Scripts depend on these shapes, so they are spelled out as types here and documented in
//! `crates/bgp/README.md`; `tests/cli_decode.rs` checks each clause against the real binary.
//! Field order is the declaration order. Optional keys are omitted when absent; arrays are
//! always present (empty when there is nothing). Rules that hold for every object:
//!
//! - `"type"` is `"OPEN"`, `"UPDATE"`, `"NOTIFICATION"`, `"KEEPALIVE"` or `"ROUTE-REFRESH"`;
//!   only a malformed message whose header type is unknown or unreadable has `"UNKNOWN"`.
//! - A malformed message (one that must be answered with a NOTIFICATION) has `"notification"`
//!   and `"error"` and no decoded fields.
//! - Byte strings are lowercase hex without separators.

use std::net::IpAddr;

use ferrolb_bgp::wire::{
    Afi, AsSegmentType, AttributeError, Capability, ErrorAction, Family, Message, MessageError,
    MessageType, MpNextHop, Notification, Open, Origin, PathAttributes, RouteRefresh, Safi, Update,
};
use serde::Serialize;

/// One output line.
#[derive(Debug, Serialize)]
pub struct Output {
    /// The message, or the NOTIFICATION it must be answered with.
    #[serde(flatten)]
    pub object: Object,
    /// `--reencode`: the message as FerroLB's encoder writes it (hex). Absent for malformed
    /// messages and for UPDATEs with RFC 7606 findings: the encoder never writes a malformed
    /// attribute, so those could not decode to the same JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reencoded: Option<String>,
    /// `--reencode`: why the encoder refused the decoded message (a FerroLB bug; exit 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reencode_error: Option<String>,
}

/// A decoded message or a malformed one.
// One value lives per output line, briefly: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Object {
    /// A message that decoded (an UPDATE may still carry RFC 7606 findings).
    Decoded(Decoded),
    /// A message that must be answered with a NOTIFICATION.
    Malformed(Malformed),
}

/// A decoded message, tagged by `"type"`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum Decoded {
    /// OPEN (RFC 4271 §4.2).
    #[serde(rename = "OPEN")]
    Open(OpenJson),
    /// UPDATE (RFC 4271 §4.3).
    #[serde(rename = "UPDATE")]
    Update(UpdateJson),
    /// NOTIFICATION (RFC 4271 §4.5).
    #[serde(rename = "NOTIFICATION")]
    Notification(NotificationJson),
    /// KEEPALIVE (RFC 4271 §4.4): no fields.
    #[serde(rename = "KEEPALIVE")]
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918 §3).
    #[serde(rename = "ROUTE-REFRESH")]
    RouteRefresh(RouteRefreshJson),
}

/// A message that must be answered with a NOTIFICATION (RFC 4271 §6).
#[derive(Debug, Serialize)]
pub struct Malformed {
    /// The type named by the header, or `"UNKNOWN"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The NOTIFICATION FerroLB would send.
    pub notification: NotificationRef,
    /// Which field was wrong and why.
    pub error: ErrorJson,
}

/// `"notification": {"code", "subcode", "data", "name"}`.
#[derive(Debug, Serialize)]
pub struct NotificationRef {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data field, hex ("" when empty).
    pub data: String,
    /// RFC names of code and subcode.
    pub name: String,
}

/// `"error": {"field", "reason"}`.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    /// The wire field, e.g. `"update.lengths"`.
    pub field: &'static str,
    /// Why it was rejected, citing the RFC.
    pub reason: &'static str,
}

/// An OPEN.
#[derive(Debug, Serialize)]
pub struct OpenJson {
    version: u8,
    /// My Autonomous System as on the wire (AS_TRANS 23456 for a 4-octet ASN).
    my_as: u16,
    /// The speaker's ASN: the 4-octet AS capability if present, else `my_as`.
    asn: u32,
    hold_time: u16,
    bgp_id: String,
    capabilities: Vec<CapabilityJson>,
}

/// One capability: `code`, `name` when known, then the fields of that capability.
#[derive(Debug, Default, Serialize)]
pub struct CapabilityJson {
    code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    afi: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safi: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_flags: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart_time: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    families: Option<Vec<GracefulRestartFamilyJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

/// A Graceful Restart per-family entry (RFC 4724 §3).
#[derive(Debug, Serialize)]
pub struct GracefulRestartFamilyJson {
    afi: u16,
    safi: u8,
    flags: u8,
    /// The F bit: forwarding state preserved.
    forwarding_state: bool,
}

/// An UPDATE.
#[derive(Debug, Serialize)]
pub struct UpdateJson {
    /// NLRI then MP_REACH_NLRI prefixes; empty under treat-as-withdraw.
    announced: Vec<String>,
    /// Withdrawn Routes, MP_UNREACH_NLRI, then (under treat-as-withdraw) the announced ones.
    withdrawn: Vec<String>,
    /// RFC 7606 treat-as-withdraw applies.
    treat_as_withdraw: bool,
    /// The family this UPDATE is the End-of-RIB marker of (RFC 4724 §2), if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_of_rib: Option<String>,
    /// The path attributes kept (discarded ones are absent).
    attributes: AttributesJson,
    /// RFC 7606 findings: syntax (decoder) then meaning (validation).
    attribute_errors: Vec<AttributeErrorJson>,
}

/// Path attributes by RFC name.
#[derive(Debug, Default, Serialize)]
pub struct AttributesJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_path: Option<Vec<SegmentJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_hop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_exit_disc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_pref: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    atomic_aggregate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregator: Option<AggregatorJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    communities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extended_communities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as4_path: Option<Vec<SegmentJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as4_aggregator: Option<AggregatorJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    large_communities: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mp_reach_nlri: Option<MpReachJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mp_unreach_nlri: Option<FamilyJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unknown: Vec<RawAttributeJson>,
}

/// One AS_PATH / AS4_PATH segment.
#[derive(Debug, Serialize)]
pub struct SegmentJson {
    #[serde(rename = "type")]
    kind: &'static str,
    asns: Vec<u32>,
}

/// AGGREGATOR / AS4_AGGREGATOR.
#[derive(Debug, Serialize)]
pub struct AggregatorJson {
    asn: u32,
    address: String,
}

/// MP_REACH_NLRI without its prefixes (they are in `"announced"`).
#[derive(Debug, Serialize)]
pub struct MpReachJson {
    afi: u16,
    safi: u8,
    next_hop: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    link_local_next_hop: Option<String>,
}

/// An AFI/SAFI pair (MP_UNREACH_NLRI; its prefixes are in `"withdrawn"`).
#[derive(Debug, Serialize)]
pub struct FamilyJson {
    afi: u16,
    safi: u8,
}

/// An attribute kept raw.
#[derive(Debug, Serialize)]
pub struct RawAttributeJson {
    type_code: u8,
    flags: u8,
    value: String,
}

/// One RFC 7606 finding.
#[derive(Debug, Serialize)]
pub struct AttributeErrorJson {
    type_code: u8,
    /// `"attribute-discard"`, `"treat-as-withdraw"` or `"session-reset"` (RFC 7606 §2 terms).
    action: &'static str,
    reason: &'static str,
}

/// A received NOTIFICATION.
#[derive(Debug, Serialize)]
pub struct NotificationJson {
    code: u8,
    subcode: u8,
    name: String,
    data: String,
    /// Cease 2 or 4 with a Shutdown Communication (RFC 9003 §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_communication: Option<String>,
    /// Why the Shutdown Communication could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_communication_error: Option<String>,
}

/// A ROUTE-REFRESH.
#[derive(Debug, Serialize)]
pub struct RouteRefreshJson {
    afi: u16,
    safi: u8,
    /// RFC 7313 §3.2: 0 request, 1 BoRR, 2 EoRR.
    subtype: u8,
}

/// Lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The JSON name of a header type; `"UNKNOWN"` outside the five message types.
pub fn type_name(t: MessageType) -> &'static str {
    match t {
        MessageType::OPEN => "OPEN",
        MessageType::UPDATE => "UPDATE",
        MessageType::NOTIFICATION => "NOTIFICATION",
        MessageType::KEEPALIVE => "KEEPALIVE",
        MessageType::ROUTE_REFRESH => "ROUTE-REFRESH",
        _ => "UNKNOWN",
    }
}

/// `"ipv4-unicast"`, `"ipv6-unicast"`, ... or `"afi-25-safi-70"`.
pub fn family_name(f: Family) -> String {
    let afi = match f.afi {
        Afi::IPV4 => "ipv4",
        Afi::IPV6 => "ipv6",
        _ => return format!("afi-{}-safi-{}", f.afi.0, f.safi.0),
    };
    match f.safi {
        Safi::UNICAST => format!("{afi}-unicast"),
        Safi::MULTICAST => format!("{afi}-multicast"),
        _ => format!("afi-{}-safi-{}", f.afi.0, f.safi.0),
    }
}

/// The object for a malformed message whose header named `kind`.
pub fn malformed(kind: &'static str, e: &MessageError) -> Malformed {
    Malformed {
        kind,
        notification: NotificationRef {
            code: e.notification.code.0,
            subcode: e.notification.subcode,
            data: hex(&e.notification.data),
            name: e.notification.name(),
        },
        error: ErrorJson {
            field: e.field,
            reason: e.reason,
        },
    }
}

/// The object for a decoded message. `validation` holds the findings of `Update::validate`
/// (ignored for other types).
pub fn decoded(message: &Message, validation: &[AttributeError]) -> Decoded {
    match message {
        Message::Open(o) => Decoded::Open(open(o)),
        Message::Update(u) => Decoded::Update(update(u, validation)),
        Message::Notification(n) => Decoded::Notification(notification(n)),
        Message::Keepalive => Decoded::Keepalive,
        Message::RouteRefresh(rr) => Decoded::RouteRefresh(route_refresh(rr)),
    }
}

fn open(o: &Open) -> OpenJson {
    OpenJson {
        version: o.version,
        my_as: o.my_as,
        asn: o.asn(),
        hold_time: o.hold_time.seconds(),
        bgp_id: o.bgp_id.to_string(),
        capabilities: o.capabilities.iter().map(capability).collect(),
    }
}

fn capability(c: &Capability) -> CapabilityJson {
    let code = c.code();
    let base = CapabilityJson {
        code: code.0,
        name: code.name(),
        ..CapabilityJson::default()
    };
    match c {
        Capability::Multiprotocol(f) => CapabilityJson {
            afi: Some(f.afi.0),
            safi: Some(f.safi.0),
            ..base
        },
        Capability::RouteRefresh | Capability::ExtendedMessage => base,
        Capability::GracefulRestart(gr) => CapabilityJson {
            restart_flags: Some(gr.restart_flags),
            restart_time: Some(gr.restart_time),
            families: Some(
                gr.families
                    .iter()
                    .map(|f| GracefulRestartFamilyJson {
                        afi: f.family.afi.0,
                        safi: f.family.safi.0,
                        flags: f.flags,
                        forwarding_state: f.flags
                            & ferrolb_bgp::wire::GracefulRestartFamily::FORWARDING_STATE
                            != 0,
                    })
                    .collect(),
            ),
            ..base
        },
        Capability::FourOctetAs(asn) => CapabilityJson {
            asn: Some(*asn),
            ..base
        },
        Capability::Fqdn { hostname, domain } => CapabilityJson {
            hostname: Some(hostname.clone()),
            domain: Some(domain.clone()),
            ..base
        },
        Capability::Unknown { value, .. } => CapabilityJson {
            value: Some(hex(value)),
            ..base
        },
    }
}

fn action_name(a: ErrorAction) -> &'static str {
    match a {
        ErrorAction::AttributeDiscard => "attribute-discard",
        ErrorAction::TreatAsWithdraw => "treat-as-withdraw",
        ErrorAction::SessionReset => "session-reset",
    }
}

fn update(u: &Update, validation: &[AttributeError]) -> UpdateJson {
    // RFC 7606 §2: treat-as-withdraw from syntax (decoder) or meaning (validation, §3 d).
    let treat_as_withdraw = u.treat_as_withdraw
        || validation
            .iter()
            .any(|e| e.action >= ErrorAction::TreatAsWithdraw);
    let mut announced: Vec<String> = u.announced().map(|n| n.to_string()).collect();
    let mut withdrawn: Vec<String> = u.withdrawn_prefixes().map(|n| n.to_string()).collect();
    if treat_as_withdraw {
        withdrawn.append(&mut announced);
    }
    UpdateJson {
        announced,
        withdrawn,
        treat_as_withdraw,
        end_of_rib: u.end_of_rib_family().map(family_name),
        attributes: attributes(u),
        attribute_errors: u
            .attribute_errors
            .iter()
            .chain(validation)
            .map(|e| AttributeErrorJson {
                type_code: e.attr_type.0,
                action: action_name(e.action),
                reason: e.reason,
            })
            .collect(),
    }
}

fn segments(path: &ferrolb_bgp::wire::AsPath) -> Vec<SegmentJson> {
    path.segments
        .iter()
        .map(|s| SegmentJson {
            kind: match s.kind {
                AsSegmentType::AsSet => "AS_SET",
                AsSegmentType::AsSequence => "AS_SEQUENCE",
                AsSegmentType::AsConfedSequence => "AS_CONFED_SEQUENCE",
                AsSegmentType::AsConfedSet => "AS_CONFED_SET",
            },
            asns: s.asns.clone(),
        })
        .collect()
}

fn aggregator(a: &ferrolb_bgp::wire::Aggregator) -> AggregatorJson {
    AggregatorJson {
        asn: a.asn,
        address: a.address.to_string(),
    }
}

fn attributes(u: &Update) -> AttributesJson {
    let a: &PathAttributes = &u.attrs;
    AttributesJson {
        origin: a.origin.map(|o| match o {
            Origin::Igp => "IGP",
            Origin::Egp => "EGP",
            Origin::Incomplete => "INCOMPLETE",
        }),
        as_path: a.as_path.as_ref().map(segments),
        next_hop: a.next_hop.map(|nh| nh.to_string()),
        multi_exit_disc: a.med,
        local_pref: a.local_pref,
        atomic_aggregate: a.atomic_aggregate,
        aggregator: a.aggregator.as_ref().map(aggregator),
        // Display names the RFC 1997 / IANA well-known values and prints others as asn:value.
        communities: a
            .communities
            .as_ref()
            .map(|list| list.iter().map(|c| c.to_string()).collect()),
        extended_communities: a
            .extended_communities
            .as_ref()
            .map(|list| list.iter().map(|c| hex(&c.0)).collect()),
        as4_path: a.as4_path.as_ref().map(segments),
        as4_aggregator: a.as4_aggregator.as_ref().map(aggregator),
        large_communities: a
            .large_communities
            .as_ref()
            .map(|list| list.iter().map(|c| c.to_string()).collect()),
        mp_reach_nlri: u.mp_reach.as_ref().map(|m| {
            let (next_hop, link_local) = match m.next_hop {
                MpNextHop::V4(a) => (IpAddr::V4(a), None),
                MpNextHop::V6 { global, link_local } => (IpAddr::V6(global), link_local),
            };
            MpReachJson {
                afi: m.family.afi.0,
                safi: m.family.safi.0,
                next_hop: next_hop.to_string(),
                link_local_next_hop: link_local.map(|ll| ll.to_string()),
            }
        }),
        mp_unreach_nlri: u.mp_unreach.as_ref().map(|m| FamilyJson {
            afi: m.family.afi.0,
            safi: m.family.safi.0,
        }),
        unknown: a
            .unknown
            .iter()
            .map(|r| RawAttributeJson {
                type_code: r.type_code.0,
                flags: r.flags,
                value: hex(&r.value),
            })
            .collect(),
    }
}

fn notification(n: &Notification) -> NotificationJson {
    let (text, text_error) = match n.shutdown_communication() {
        None => (None, None),
        Some(Ok(t)) => (Some(t.to_owned()), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    NotificationJson {
        code: n.code.0,
        subcode: n.subcode,
        name: n.name(),
        data: hex(&n.data),
        shutdown_communication: text,
        shutdown_communication_error: text_error,
    }
}

fn route_refresh(rr: &RouteRefresh) -> RouteRefreshJson {
    RouteRefreshJson {
        afi: rr.afi.0,
        safi: rr.safi.0,
        subtype: rr.subtype,
    }
}
