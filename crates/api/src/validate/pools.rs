//! IPAddressPool rules: addresses as CIDR or `a-b` (same family, ordered), no overlap within or
//! across pools, and `serviceAllocation` well-formed. A pool may hold a node's own address, as
//! in MetalLB (which added that rejection and reverted it).
//! `avoidBuggyIPs` needs no check: it only removes `.0`/`.255` IPv4 addresses from allocation
//! (MetalLB accepts it on any pool, IPv6 included, where it has no effect).

use std::collections::{BTreeMap, BTreeSet};

use super::{check_name, selectors, ObjRef};
use crate::error::{ConfigError, Reason};
use crate::model::{AddressRange, Pool, ServiceAllocation};
use crate::parse::{parse_address_range, ranges_overlap};
use crate::source::Resources;

/// A parsed address entry and where it came from, for overlap messages.
struct Placed {
    range: AddressRange,
    pool: String,
    index: usize,
    text: String,
}

pub(super) fn validate_pools(
    res: &Resources,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, Pool> {
    let mut out = BTreeMap::new();
    let mut seen = BTreeMap::new();
    let mut placed: Vec<Placed> = Vec::new();
    for p in &res.ip_address_pools {
        let obj = ObjRef::new("IPAddressPool", &p.metadata);
        let name = check_name(&obj, &p.metadata, &mut seen, "IPAddressPool", errors);
        let pool_name = name.clone().unwrap_or_default();
        if p.spec.addresses.is_empty() {
            errors.push(obj.err("spec.addresses", "", Reason::Required));
        }
        let mut ranges = Vec::new();
        for (i, text) in p.spec.addresses.iter().enumerate() {
            let path = format!("spec.addresses[{i}]");
            let range = match parse_address_range(text) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(obj.err(&path, text, Reason::BadAddresses(e)));
                    continue;
                }
            };
            // MetalLB checks every CIDR against every CIDR defined before it, in this pool
            // and in earlier pools; report the first clash only.
            if let Some(other) = placed.iter().find(|o| ranges_overlap(&o.range, &range)) {
                let other = if other.pool == pool_name {
                    format!(
                        "spec.addresses[{}] {:?} of the same pool",
                        other.index, other.text
                    )
                } else {
                    format!(
                        "spec.addresses[{}] {:?} of IPAddressPool {}",
                        other.index, other.text, other.pool
                    )
                };
                errors.push(obj.err(&path, text, Reason::Overlap { other }));
            }
            // A pool may contain a node's own address: MetalLB added that rejection and
            // reverted it, because existing clusters relied on such pools.
            placed.push(Placed {
                range,
                pool: pool_name.clone(),
                index: i,
                text: text.clone(),
            });
            ranges.push(range);
        }
        // Kept in the order written: the allocator hands out addresses entry by entry, as
        // MetalLB's does.
        let service_allocation = p
            .spec
            .service_allocation
            .as_ref()
            .map(|sa| service_allocation(&obj, sa, errors));
        if let Some(name) = name {
            out.insert(
                name.clone(),
                Pool {
                    name,
                    labels: p.metadata.labels.clone().unwrap_or_default(),
                    ranges,
                    auto_assign: p.spec.auto_assign.unwrap_or(true),
                    avoid_buggy_ips: p.spec.avoid_buggy_ips.unwrap_or(false),
                    service_allocation,
                },
            );
        }
    }
    out
}

fn service_allocation(
    obj: &ObjRef,
    sa: &crate::crd::ServiceAllocation,
    errors: &mut Vec<ConfigError>,
) -> ServiceAllocation {
    let mut namespaces = BTreeSet::new();
    for (i, ns) in sa.namespaces.iter().enumerate() {
        let path = format!("spec.serviceAllocation.namespaces[{i}]");
        if !super::selectors::is_dns_label(ns) {
            errors.push(obj.err(
                &path,
                ns,
                Reason::BadSelector("not a valid namespace name (RFC 1123 label)".into()),
            ));
        }
        if !namespaces.insert(ns.clone()) {
            let first = sa.namespaces.iter().position(|n| n == ns).unwrap_or(0);
            errors.push(obj.err(&path, ns, Reason::DuplicateEntry { first }));
        }
    }
    ServiceAllocation {
        priority: sa.priority,
        namespaces,
        namespace_selectors: selectors::selectors(
            obj,
            "spec.serviceAllocation.namespaceSelectors",
            &sa.namespace_selectors,
            errors,
        ),
        service_selectors: selectors::selectors(
            obj,
            "spec.serviceAllocation.serviceSelectors",
            &sa.service_selectors,
            errors,
        ),
    }
}
