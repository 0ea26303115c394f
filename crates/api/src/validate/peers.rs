//! BFDProfile and BGPPeer rules: ASNs (fixed or dynamic, exclusive), addresses, RFC 4271 timers,
//! password or basic-auth Secret, BFD profile reference, node selectors, and no two peers
//! opening the same session from the same node.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::{check_name, selectors, NodeIndex, ObjRef};
use crate::crd::{BGPPeer, DynamicASNMode};
use crate::error::{ConfigError, Reason};
use crate::model::{BfdProfile, BgpPeer, PeerAsn};
use crate::parse::parse_duration;
use crate::source::Resources;

/// Secret type MetalLB requires for `passwordSecret`.
pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";

pub(super) fn validate_bfd_profiles(
    res: &Resources,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, BfdProfile> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for b in &res.bfd_profiles {
        let obj = ObjRef::new("BFDProfile", &b.metadata);
        let name = check_name(&obj, &b.metadata, &mut seen, "BFDProfile", errors);
        let s = &b.spec;
        let mut range = |path: &str, v: Option<u32>, min: u32, max: u32| {
            if let Some(v) = v.filter(|v| !(min..=max).contains(v)) {
                errors.push(obj.err(
                    path,
                    v,
                    Reason::OutOfRange {
                        min: min.into(),
                        max: max.into(),
                    },
                ));
            }
            v
        };
        let profile = BfdProfile {
            name: name.clone().unwrap_or_default(),
            detect_multiplier: range("spec.detectMultiplier", s.detect_multiplier, 2, 255),
            receive_interval_ms: range("spec.receiveInterval", s.receive_interval, 10, 60000),
            transmit_interval_ms: range("spec.transmitInterval", s.transmit_interval, 10, 60000),
            echo_interval_ms: range("spec.echoInterval", s.echo_interval, 10, 60000),
            minimum_ttl: range("spec.minimumTtl", s.minimum_ttl, 1, 254),
            echo_mode: s.echo_mode.unwrap_or(false),
            passive_mode: s.passive_mode.unwrap_or(false),
        };
        if let Some(name) = name {
            out.insert(name, profile);
        }
    }
    out
}

pub(super) fn validate_peers(
    res: &Resources,
    bfd: &BTreeMap<String, BfdProfile>,
    nodes: &NodeIndex,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, BgpPeer> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeMap::new();
    let mut sessions: Vec<(ObjRef, BgpPeer)> = Vec::new();
    for p in &res.bgp_peers {
        let obj = ObjRef::new("BGPPeer", &p.metadata);
        let name = check_name(&obj, &p.metadata, &mut seen, "BGPPeer", errors);
        let before = errors.len();
        let peer = peer(&obj, p, res, bfd, errors);
        let (Some(name), Some(mut peer)) = (name, peer) else {
            continue;
        };
        if errors.len() != before {
            continue;
        }
        peer.name = name.clone();
        // Two peers with the same address, port and VRF would open the same TCP session from
        // any node both select; MetalLB rejects exact duplicates, we reject the clash itself.
        if let Some((other, _)) = sessions.iter().find(|(_, o)| same_session(o, &peer, nodes)) {
            errors.push(obj.err(
                "spec.peerAddress",
                peer.peer_address,
                Reason::DuplicatePeer {
                    other: other.display(),
                },
            ));
        }
        sessions.push((obj, peer.clone()));
        out.insert(name, peer);
    }
    out
}

fn same_session(a: &BgpPeer, b: &BgpPeer, nodes: &NodeIndex) -> bool {
    if a.peer_address != b.peer_address
        || a.interface != b.interface
        || a.vrf != b.vrf
        || a.peer_port != b.peer_port
    {
        return false;
    }
    if nodes.is_empty() {
        // Without Node objects, assume selectors overlap unless both are set and differ.
        return a.node_selectors.is_empty()
            || b.node_selectors.is_empty()
            || a.node_selectors == b.node_selectors;
    }
    let a_nodes: BTreeSet<&str> = nodes.selected(&a.node_selectors).into_iter().collect();
    nodes
        .selected(&b.node_selectors)
        .iter()
        .any(|n| a_nodes.contains(n))
}

fn duration(
    obj: &ObjRef,
    path: &str,
    v: Option<&String>,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    let v = v?;
    match parse_duration(v) {
        Ok(d) => Some(d),
        Err(why) => {
            errors.push(obj.err(path, v, Reason::BadDuration(why)));
            None
        }
    }
}

fn ip(
    obj: &ObjRef,
    path: &str,
    v: Option<&String>,
    errors: &mut Vec<ConfigError>,
) -> Option<IpAddr> {
    let v = v.filter(|v| !v.is_empty())?;
    match v.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errors.push(obj.err(path, v, Reason::BadIp));
            None
        }
    }
}

/// Largest hold time that fits the 2-octet OPEN field (RFC 4271 §4.2).
const MAX_HOLD_SECS: u64 = 65535;

fn peer(
    obj: &ObjRef,
    p: &BGPPeer,
    res: &Resources,
    bfd: &BTreeMap<String, BfdProfile>,
    errors: &mut Vec<ConfigError>,
) -> Option<BgpPeer> {
    let s = &p.spec;
    if s.my_asn == 0 {
        errors.push(obj.err("spec.myASN", 0, Reason::Required));
    }
    // MetalLB treats peerASN 0 as unset.
    let fixed = s.peer_asn.filter(|a| *a != 0);
    let dynamic = match s.dynamic_asn.as_deref() {
        None | Some("") => None,
        Some(d) => match DynamicASNMode::parse(d) {
            Some(m) => Some(m),
            None => {
                errors.push(obj.err(
                    "spec.dynamicASN",
                    d,
                    Reason::NotOneOf {
                        allowed: "internal, external",
                    },
                ));
                None
            }
        },
    };
    let peer_asn = match (fixed, dynamic, s.dynamic_asn.as_deref()) {
        (Some(_), Some(_), _) => {
            errors.push(obj.err(
                "spec.dynamicASN",
                s.dynamic_asn.clone().unwrap_or_default(),
                Reason::Exclusive {
                    other: "spec.peerASN",
                },
            ));
            None
        }
        (Some(a), None, _) => Some(PeerAsn::Fixed(a)),
        (None, Some(DynamicASNMode::Internal), _) => Some(PeerAsn::Internal),
        (None, Some(DynamicASNMode::External), _) => Some(PeerAsn::External),
        (None, None, Some(d)) if !d.is_empty() => None, // already reported
        (None, None, _) => {
            errors.push(obj.err(
                "spec.peerASN",
                s.peer_asn.unwrap_or(0),
                Reason::OneOfRequired("spec.peerASN, spec.dynamicASN"),
            ));
            None
        }
    };
    // localASN is FRR's `neighbor X local-as N no-prepend replace-as` (MetalLB's FRR mode):
    // the session speaks as N, so whether it is iBGP is decided against N.
    let session_asn = s.local_asn.unwrap_or(s.my_asn);
    if s.local_asn == Some(0) {
        errors.push(obj.err(
            "spec.localASN",
            0,
            Reason::OutOfRange {
                min: 1,
                max: u32::MAX.into(),
            },
        ));
    }
    let ibgp = match peer_asn {
        Some(PeerAsn::Fixed(a)) => a == session_asn,
        Some(PeerAsn::Internal) => true,
        _ => false,
    };
    if ibgp && s.ebgp_multi_hop == Some(true) {
        errors.push(obj.err("spec.ebgpMultiHop", true, Reason::MultihopOnIbgp));
    }

    let has_addr = s.peer_address.as_deref().is_some_and(|a| !a.is_empty());
    let has_iface = s.interface.as_deref().is_some_and(|a| !a.is_empty());
    let peer_address = match (has_addr, has_iface) {
        (true, true) => {
            errors.push(obj.err(
                "spec.interface",
                s.interface.clone().unwrap_or_default(),
                Reason::Exclusive {
                    other: "spec.peerAddress",
                },
            ));
            None
        }
        // Unnumbered BGP (spec.interface without spec.peerAddress), as MetalLB's FRR mode: the
        // router's link-local address is found on the interface by each node. The interface is
        // a node's, so, as in MetalLB, its name is not checked here: a node without it has
        // that session down.
        (false, true) => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        (false, false) => {
            errors.push(obj.err(
                "spec.peerAddress",
                "",
                Reason::OneOfRequired("spec.peerAddress, spec.interface"),
            ));
            None
        }
        (true, false) => ip(obj, "spec.peerAddress", s.peer_address.as_ref(), errors),
    };
    let source_address = ip(obj, "spec.sourceAddress", s.source_address.as_ref(), errors);
    let router_id = match s.router_id.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => match r.parse::<Ipv4Addr>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(obj.err("spec.routerID", r, Reason::BadRouterId));
                None
            }
        },
    };
    let peer_port = match s.peer_port {
        None => 179,
        Some(port) if (1..=16384).contains(&port) => port,
        Some(port) => {
            errors.push(obj.err(
                "spec.peerPort",
                port,
                Reason::OutOfRange { min: 1, max: 16384 },
            ));
            179
        }
    };

    let (hold_time, keepalive_time) =
        timers(obj, s.hold_time.as_ref(), s.keepalive_time.as_ref(), errors);
    let connect_time = duration(obj, "spec.connectTime", s.connect_time.as_ref(), errors);
    if let Some(ct) = connect_time {
        // MetalLB's CRD (CEL): "connect time should be between 1 seconds to 65535" and
        // "should contain a whole number of seconds" (the FRR timer is in seconds).
        let text = s.connect_time.clone().unwrap_or_default();
        if ct < Duration::from_secs(1) || ct.as_secs() > 65535 {
            errors.push(obj.err(
                "spec.connectTime",
                &text,
                Reason::OutOfRange { min: 1, max: 65535 },
            ));
        } else if ct.subsec_nanos() != 0 {
            errors.push(obj.err("spec.connectTime", &text, Reason::NotWholeSeconds));
        }
    }

    let password = password(obj, p, res, errors);
    if let Some(b) = s.bfd_profile.as_deref().filter(|b| !b.is_empty()) {
        if !bfd.contains_key(b) {
            errors.push(obj.err(
                "spec.bfdProfile",
                b,
                Reason::MissingReference { kind: "BFDProfile" },
            ));
        }
    }
    let node_selectors = selectors::selectors(obj, "spec.nodeSelectors", &s.node_selectors, errors);

    Some(BgpPeer {
        name: String::new(),
        my_asn: s.my_asn,
        local_asn: s.local_asn,
        peer_asn: peer_asn?,
        peer_address: peer_address?,
        peer_port,
        source_address,
        router_id,
        hold_time,
        keepalive_time,
        connect_time,
        ebgp_multihop: s.ebgp_multi_hop.unwrap_or(false),
        password,
        bfd_profile: s.bfd_profile.clone().filter(|b| !b.is_empty()),
        bfd: s.bfd_profile.as_deref().and_then(|b| bfd.get(b)).cloned(),
        enable_graceful_restart: s.enable_graceful_restart.unwrap_or(false),
        node_selectors,
        vrf: s.vrf.clone().filter(|v| !v.is_empty()),
        interface: s.interface.clone().filter(|_| !has_addr),
        disable_mp: s.disable_mp.unwrap_or(false),
        dual_stack_address_family: s.dual_stack_address_family.unwrap_or(false),
    })
}

/// RFC 4271 §4.2 timers, defaulted as MetalLB does: one given sets the other (keepalive =
/// hold / 3, hold = 3 × keepalive); hold time must be 0 or at least 3 s after rounding down to
/// whole seconds; keepalive must not exceed hold time.
fn timers(
    obj: &ObjRef,
    hold: Option<&String>,
    keepalive: Option<&String>,
    errors: &mut Vec<ConfigError>,
) -> (Option<Duration>, Option<Duration>) {
    let h = duration(obj, "spec.holdTime", hold, errors);
    let k = duration(obj, "spec.keepaliveTime", keepalive, errors);
    let (h, k) = match (h, k) {
        (None, None) => return (None, None),
        (Some(h), Some(k)) => (h, k),
        (Some(h), None) if keepalive.is_none() => (h, h / 3),
        (None, Some(k)) if hold.is_none() => (k.saturating_mul(3), k),
        _ => return (None, None), // a parse error was reported
    };
    let secs = h.as_secs();
    // RFC 4271 §4.2: "Hold Time MUST be either zero or at least three seconds."
    if secs != 0 && secs < 3 || secs == 0 && !h.is_zero() {
        errors.push(
            obj.err(
                "spec.holdTime",
                hold.cloned()
                    .unwrap_or_else(|| format!("{}s (3 × keepaliveTime)", h.as_secs_f64())),
                Reason::HoldTimeTooShort,
            ),
        );
    } else if secs > MAX_HOLD_SECS {
        errors.push(obj.err(
            "spec.holdTime",
            hold.cloned().unwrap_or_default(),
            Reason::OutOfRange {
                min: 3,
                max: MAX_HOLD_SECS as i64,
            },
        ));
    }
    if k > h {
        errors.push(obj.err(
            "spec.keepaliveTime",
            keepalive.cloned().unwrap_or_default(),
            Reason::KeepaliveAboveHold {
                hold: format!("{}s", h.as_secs()),
            },
        ));
    }
    (Some(h), Some(k))
}

fn password(
    obj: &ObjRef,
    p: &BGPPeer,
    res: &Resources,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let s = &p.spec;
    let inline = s.password.clone().filter(|pw| !pw.is_empty());
    let secret_ref = s
        .password_secret
        .as_ref()
        .filter(|r| r.name.as_deref().is_some_and(|n| !n.is_empty()));
    let Some(r) = secret_ref else {
        return inline;
    };
    let name = r.name.clone().unwrap_or_default();
    if inline.is_some() {
        errors.push(obj.err(
            "spec.passwordSecret",
            &name,
            Reason::Exclusive {
                other: "spec.password",
            },
        ));
        return None;
    }
    // MetalLB only reads Secrets in its own namespace: the ref's namespace, else the peer's.
    let want_ns = r.namespace.clone().or_else(|| p.metadata.namespace.clone());
    let secret = res.secrets.iter().find(|sec| {
        sec.metadata.name.as_deref() == Some(name.as_str())
            && (want_ns.is_none()
                || sec.metadata.namespace.is_none()
                || sec.metadata.namespace == want_ns)
    });
    let path = "spec.passwordSecret.name";
    let Some(secret) = secret else {
        errors.push(obj.err(path, &name, Reason::MissingSecret));
        return None;
    };
    let ty = secret.type_.clone().unwrap_or_else(|| "Opaque".into());
    if ty != BASIC_AUTH {
        errors.push(obj.err(path, &name, Reason::SecretType { found: ty }));
        return None;
    }
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    let from_string_data = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get("password"))
        .cloned();
    match from_string_data.or(from_data) {
        Some(pw) => Some(pw),
        None => {
            errors.push(obj.err(path, &name, Reason::SecretNoPassword));
            None
        }
    }
}
