//! Community, BGPAdvertisement and L2Advertisement rules: community syntax and aliases,
//! aggregation lengths against the pools' prefixes, localPref only towards iBGP and without
//! conflicting values for one UPDATE, selectors, interface names.

use std::collections::{BTreeMap, BTreeSet};

use super::{check_name, check_unique, selectors, NodeIndex, ObjRef};
use crate::error::{ConfigError, Reason};
use crate::model::{
    BfdProfile, BgpAdvertisement, BgpCommunity, BgpPeer, IpFamily, L2Advertisement, Pool,
    WeightedEcmp, WEIGHTED_ECMP_ANNOTATION,
};
use crate::parse::{parse_address_range, parse_community, shortest_prefix_len, CommunityError};
use crate::selector::LabelSelector;
use crate::source::Resources;

/// Alias name → value, from every Community object.
pub(super) fn validate_communities(
    res: &Resources,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, BgpCommunity> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for c in &res.communities {
        let obj = ObjRef::new("Community", &c.metadata);
        check_name(&obj, &c.metadata, &mut seen, "Community", errors);
        for (i, alias) in c.spec.communities.iter().enumerate() {
            let path = format!("spec.communities[{i}]");
            let name = alias.name.clone().unwrap_or_default();
            if name.is_empty() {
                errors.push(obj.err(format!("{path}.name"), "", Reason::Required));
                continue;
            }
            let value = alias.value.clone().unwrap_or_default();
            match parse_community(&value) {
                Ok(v) => {
                    // Aliases are global across Community objects, as in MetalLB.
                    if out.insert(name.clone(), v).is_some() {
                        errors.push(obj.err(
                            format!("{path}.name"),
                            &name,
                            Reason::DuplicateName {
                                kind: "community alias",
                            },
                        ));
                    }
                }
                Err(e) => {
                    errors.push(obj.err(format!("{path}.value"), &value, Reason::BadCommunity(e)))
                }
            }
        }
    }
    out
}

/// Pools selected by an advertisement: the named ones that exist plus those matching a
/// selector; both lists empty selects every pool (MetalLB semantics).
fn selected_pools(
    names: &[String],
    pool_selectors: &[LabelSelector],
    pools: &BTreeMap<String, Pool>,
) -> BTreeSet<String> {
    if names.is_empty() && pool_selectors.is_empty() {
        return pools.keys().cloned().collect();
    }
    let mut out: BTreeSet<String> = names
        .iter()
        .filter(|n| pools.contains_key(*n))
        .cloned()
        .collect();
    if !pool_selectors.is_empty() {
        out.extend(
            pools
                .values()
                .filter(|p| pool_selectors.iter().any(|s| s.matches(&p.labels)))
                .map(|p| p.name.clone()),
        );
    }
    out
}

pub(super) fn validate_bgp_advertisements(
    res: &Resources,
    pools: &BTreeMap<String, Pool>,
    communities: &BTreeMap<String, BgpCommunity>,
    nodes: &NodeIndex,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, BgpAdvertisement> {
    let mut out: BTreeMap<String, BgpAdvertisement> = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for a in &res.bgp_advertisements {
        let obj = ObjRef::new("BGPAdvertisement", &a.metadata);
        let name = check_name(&obj, &a.metadata, &mut seen, "BGPAdvertisement", errors);
        let s = &a.spec;
        check_unique(&obj, "spec.ipAddressPools", &s.ip_address_pools, errors);
        check_unique(&obj, "spec.communities", &s.communities, errors);
        check_unique(&obj, "spec.peers", &s.peers, errors);
        let pool_selectors = selectors::selectors(
            &obj,
            "spec.ipAddressPoolSelectors",
            &s.ip_address_pool_selectors,
            errors,
        );
        let node_selectors =
            selectors::selectors(&obj, "spec.nodeSelectors", &s.node_selectors, errors);
        let service_selectors =
            selectors::selectors(&obj, "spec.serviceSelectors", &s.service_selectors, errors);

        let aggregation_length = aggregation(
            &obj,
            "spec.aggregationLength",
            s.aggregation_length,
            32,
            1,
            errors,
        );
        let aggregation_length_v6 = aggregation(
            &obj,
            "spec.aggregationLengthV6",
            s.aggregation_length_v6,
            128,
            0,
            errors,
        );

        let mut comms = BTreeSet::new();
        for (i, c) in s.communities.iter().enumerate() {
            // MetalLB looks the alias up first, then parses the value.
            let parsed = communities
                .get(c)
                .copied()
                .ok_or(())
                .or_else(|()| parse_community(c));
            match parsed {
                Ok(v) => {
                    comms.insert(v);
                }
                Err(CommunityError::Format) => errors.push(obj.err(
                    format!("spec.communities[{i}]"),
                    c,
                    Reason::MissingReference {
                        kind: "Community alias (and not AA:NN or large:A:B:C)",
                    },
                )),
                Err(e) => errors.push(obj.err(
                    format!("spec.communities[{i}]"),
                    c,
                    Reason::BadCommunity(e),
                )),
            }
        }

        // localPref towards eBGP peers only is valid in MetalLB: it is simply not sent
        // (RFC 4271 §5.1.5). `ignored_fields` warns about it instead.

        // MetalLB's CRD rule: serviceSelectors only with the default aggregation lengths.
        if !s.service_selectors.is_empty() {
            for (field, length, default) in [
                ("spec.aggregationLength", s.aggregation_length, 32u8),
                ("spec.aggregationLengthV6", s.aggregation_length_v6, 128),
            ] {
                if let Some(length) = length.filter(|l| *l != i32::from(default)) {
                    errors.push(obj.err(
                        field,
                        length,
                        Reason::ServiceSelectorsWithAggregation { default },
                    ));
                }
            }
        }

        let selected = selected_pools(&s.ip_address_pools, &pool_selectors, pools);
        for pool in selected.iter().filter_map(|p| pools.get(p)) {
            check_aggregation(
                &obj,
                pool,
                res,
                aggregation_length,
                aggregation_length_v6,
                errors,
            );
        }

        let weighted_ecmp = weighted_ecmp(&obj, a.metadata.annotations.as_ref(), errors);

        let adv = BgpAdvertisement {
            name: name.clone().unwrap_or_default(),
            pools: selected,
            aggregation_length,
            aggregation_length_v6,
            local_pref: s.local_pref,
            communities: comms.into_iter().collect(),
            peers: s.peers.iter().cloned().collect(),
            node_selectors,
            service_selectors,
            weighted_ecmp,
        };
        if let Some(other) = out.values().find(|o| local_pref_conflict(o, &adv, nodes)) {
            let pool = other
                .pools
                .intersection(&adv.pools)
                .next()
                .cloned()
                .unwrap_or_default();
            errors.push(obj.err(
                "spec.localPref",
                adv.local_pref.unwrap_or(0),
                Reason::LocalPrefConflict {
                    other: other.name.clone(),
                    other_value: other.local_pref.unwrap_or(0),
                    pool,
                },
            ));
        }
        if let Some(name) = name {
            out.insert(name, adv);
        }
    }
    out
}

/// FerroLB's [`WEIGHTED_ECMP_ANNOTATION`]: absent is off, `endpoints` is on, and any other
/// value is a field error naming the annotation (a typo must not silently announce equal
/// weights while the operator believes they are weighted).
fn weighted_ecmp(
    obj: &ObjRef,
    annotations: Option<&BTreeMap<String, String>>,
    errors: &mut Vec<ConfigError>,
) -> Option<WeightedEcmp> {
    let value = annotations?.get(WEIGHTED_ECMP_ANNOTATION)?;
    let parsed = WeightedEcmp::parse(value);
    if parsed.is_none() {
        errors.push(obj.err(
            format!("metadata.annotations[{WEIGHTED_ECMP_ANNOTATION}]"),
            value,
            Reason::NotOneOf {
                allowed: WeightedEcmp::ALLOWED,
            },
        ));
    }
    parsed
}

fn aggregation(
    obj: &ObjRef,
    path: &str,
    v: Option<i32>,
    default: u8,
    min: u8,
    errors: &mut Vec<ConfigError>,
) -> u8 {
    match v {
        None => default,
        Some(v) => match u8::try_from(v).ok().filter(|v| (min..=default).contains(v)) {
            Some(v) => v,
            None => {
                errors.push(obj.err(
                    path,
                    v,
                    Reason::OutOfRange {
                        min: min.into(),
                        max: default.into(),
                    },
                ));
                default
            }
        },
    }
}

/// MetalLB `validateBGPAdvPerPool`: an aggregation length shorter than a pool entry's prefix
/// would announce addresses outside the pool.
fn check_aggregation(
    obj: &ObjRef,
    pool: &Pool,
    res: &Resources,
    v4: u8,
    v6: u8,
    errors: &mut Vec<ConfigError>,
) {
    let Some(cr) = res
        .ip_address_pools
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(pool.name.as_str()))
    else {
        return;
    };
    for text in &cr.spec.addresses {
        let Ok(range) = parse_address_range(text) else {
            continue;
        };
        let (len, path) = match range.family() {
            IpFamily::V4 => (v4, "spec.aggregationLength"),
            IpFamily::V6 => (v6, "spec.aggregationLengthV6"),
        };
        let prefix_len = shortest_prefix_len(&range);
        if len < prefix_len {
            errors.push(obj.err(
                path,
                len,
                Reason::AggregationTooShort {
                    aggregation: len,
                    prefix_len,
                    addresses: text.clone(),
                    pool: pool.name.clone(),
                },
            ));
        }
    }
}

/// MetalLB `advertisementsAreCompatible`, negated: two advertisements sharing a pool with
/// different localPref collide unless both aggregation lengths differ, their explicit peer
/// lists are disjoint, or their node sets (over the known Nodes) are disjoint.
fn local_pref_conflict(a: &BgpAdvertisement, b: &BgpAdvertisement, nodes: &NodeIndex) -> bool {
    if a.local_pref.unwrap_or(0) == b.local_pref.unwrap_or(0) || a.pools.is_disjoint(&b.pools) {
        return false;
    }
    if a.aggregation_length != b.aggregation_length
        && a.aggregation_length_v6 != b.aggregation_length_v6
    {
        return false;
    }
    if !a.peers.is_empty() && !b.peers.is_empty() && a.peers.is_disjoint(&b.peers) {
        return false;
    }
    let a_nodes: BTreeSet<&str> = nodes.selected(&a.node_selectors).into_iter().collect();
    nodes
        .selected(&b.node_selectors)
        .iter()
        .any(|n| a_nodes.contains(n))
}

/// Linux interface names: 1-15 bytes (IFNAMSIZ - 1), no `/`, `:` or whitespace, not `.`/`..`.
fn interface_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > 15 {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not interface names")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    }
}

pub(super) fn validate_l2_advertisements(
    res: &Resources,
    pools: &BTreeMap<String, Pool>,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, L2Advertisement> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for a in &res.l2_advertisements {
        let obj = ObjRef::new("L2Advertisement", &a.metadata);
        let name = check_name(&obj, &a.metadata, &mut seen, "L2Advertisement", errors);
        let s = &a.spec;
        check_unique(&obj, "spec.ipAddressPools", &s.ip_address_pools, errors);
        check_unique(&obj, "spec.interfaces", &s.interfaces, errors);
        for (i, iface) in s.interfaces.iter().enumerate() {
            if let Some(why) = interface_problem(iface) {
                errors.push(obj.err(
                    format!("spec.interfaces[{i}]"),
                    iface,
                    Reason::BadInterface(why),
                ));
            }
        }
        let pool_selectors = selectors::selectors(
            &obj,
            "spec.ipAddressPoolSelectors",
            &s.ip_address_pool_selectors,
            errors,
        );
        let node_selectors =
            selectors::selectors(&obj, "spec.nodeSelectors", &s.node_selectors, errors);
        let service_selectors =
            selectors::selectors(&obj, "spec.serviceSelectors", &s.service_selectors, errors);
        for (i, pref) in s.preferred_node_selectors.iter().enumerate() {
            let path = format!("spec.preferredNodeSelectors[{i}]");
            if !(1..=100).contains(&pref.weight) {
                errors.push(obj.err(
                    format!("{path}.weight"),
                    pref.weight,
                    Reason::OutOfRange { min: 1, max: 100 },
                ));
            }
            selectors::selector(
                &obj,
                &format!("{path}.preference"),
                &pref.preference,
                errors,
            );
        }
        let adv = L2Advertisement {
            name: name.clone().unwrap_or_default(),
            pools: selected_pools(&s.ip_address_pools, &pool_selectors, pools),
            node_selectors,
            interfaces: s.interfaces.clone(),
            service_selectors,
        };
        if let Some(name) = name {
            out.insert(name, adv);
        }
    }
    out
}

/// MetalLB `validateConfig`: an advertisement of a pool with IPv6 ranges must not reach a peer
/// whose BFD profile has echo mode on.
pub(super) fn check_bfd_echo_ipv6(
    res: &Resources,
    pools: &BTreeMap<String, Pool>,
    peers: &BTreeMap<String, BgpPeer>,
    bfd: &BTreeMap<String, BfdProfile>,
    advs: &BTreeMap<String, BgpAdvertisement>,
    errors: &mut Vec<ConfigError>,
) {
    let echo = |p: &BgpPeer| {
        p.bfd_profile
            .as_ref()
            .and_then(|b| bfd.get(b))
            .is_some_and(|b| b.echo_mode)
    };
    for cr in &res.bgp_advertisements {
        let Some(adv) = cr.metadata.name.as_ref().and_then(|n| advs.get(n)) else {
            continue;
        };
        let obj = ObjRef::new("BGPAdvertisement", &cr.metadata);
        let v6_pool = adv.pools.iter().find(|p| {
            pools
                .get(*p)
                .is_some_and(|p| p.ranges.iter().any(|r| r.family() == IpFamily::V6))
        });
        let Some(pool) = v6_pool else {
            continue;
        };
        let targets: Vec<&BgpPeer> = if adv.peers.is_empty() {
            peers.values().collect()
        } else {
            adv.peers.iter().filter_map(|n| peers.get(n)).collect()
        };
        if let Some(peer) = targets.into_iter().find(|p| echo(p)) {
            errors.push(obj.err(
                "spec.peers",
                adv.peers.iter().cloned().collect::<Vec<_>>().join(","),
                Reason::BfdEchoWithIpv6 {
                    pool: pool.clone(),
                    peer: peer.name.clone(),
                },
            ));
        }
    }
}
