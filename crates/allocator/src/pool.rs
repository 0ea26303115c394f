//! One IPAddressPool's free addresses, per family, and the rules for who may use the pool.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_api::model::{IpFamily, Pool};
use ferrolb_api::selector::any_matches;

use crate::error::PoolRejection;
use crate::free_set::FreeSet;
use crate::service::Service;

/// An address as the free sets see it: a family and its bits.
pub(crate) fn to_bits(ip: &IpAddr) -> (IpFamily, u128) {
    match ip {
        IpAddr::V4(v4) => (IpFamily::V4, u128::from(u32::from(*v4))),
        IpAddr::V6(v6) => (IpFamily::V6, u128::from(*v6)),
    }
}

/// The inverse of [`to_bits`]; `None` when an IPv4 value does not fit 32 bits.
pub(crate) fn from_bits(family: IpFamily, bits: u128) -> Option<IpAddr> {
    match family {
        IpFamily::V4 => u32::try_from(bits)
            .ok()
            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        IpFamily::V6 => Some(IpAddr::V6(Ipv6Addr::from(bits))),
    }
}

/// MetalLB's avoidBuggyIPs: some old firmware treats IPv4 addresses ending in `.0` or `.255` as
/// network or broadcast addresses whatever the prefix length, so such pools skip them. IPv6 has
/// no broadcast address, so no IPv6 address is "buggy".
pub(crate) fn is_buggy(family: IpFamily, bits: u128) -> bool {
    family == IpFamily::V4 && matches!(bits & 0xff, 0 | 0xff)
}

/// One `spec.addresses` entry as bits: a family and an inclusive interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) family: IpFamily,
    pub(crate) start: u128,
    pub(crate) end: u128,
}

/// A pool from the config plus its free addresses.
#[derive(Debug, Clone)]
pub(crate) struct PoolState {
    pub(crate) pool: Pool,
    /// The well-formed `spec.addresses` entries in the order written: MetalLB's allocator walks
    /// them in this order (`Pool.CIDR` is built entry by entry), lowest address first inside each.
    entries: Vec<Entry>,
    free_v4: FreeSet,
    free_v6: FreeSet,
    total_v4: u128,
    total_v6: u128,
    /// Addresses handed out, per family (index 0 = IPv4, 1 = IPv6).
    in_use: [u128; 2],
    /// `.0`/`.255` addresses dropped from the free set by avoidBuggyIPs, per family.
    unusable: [u128; 2],
}

fn idx(family: IpFamily) -> usize {
    match family {
        IpFamily::V4 => 0,
        IpFamily::V6 => 1,
    }
}

impl PoolState {
    /// A pool with every address of its ranges free.
    pub(crate) fn new(pool: Pool) -> Self {
        let mut free_v4 = FreeSet::default();
        let mut free_v6 = FreeSet::default();
        let mut entries = Vec::with_capacity(pool.ranges.len());
        for range in &pool.ranges {
            let (fs, s) = to_bits(&range.start);
            let (fe, e) = to_bits(&range.end);
            // The validated model guarantees one family, start <= end and no overlap; skip
            // anything else rather than panic on a hand-built Config.
            let free = match fs {
                IpFamily::V4 => &mut free_v4,
                IpFamily::V6 => &mut free_v6,
            };
            if fs != fe || s > e || free.first_in(s, e).is_some() {
                continue;
            }
            free.insert_interval(s, e);
            entries.push(Entry {
                family: fs,
                start: s,
                end: e,
            });
        }
        let (total_v4, total_v6) = (free_v4.len(), free_v6.len());
        Self {
            pool,
            entries,
            free_v4,
            free_v6,
            total_v4,
            total_v6,
            in_use: [0; 2],
            unusable: [0; 2],
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.pool.name
    }

    fn free(&mut self, family: IpFamily) -> &mut FreeSet {
        match family {
            IpFamily::V4 => &mut self.free_v4,
            IpFamily::V6 => &mut self.free_v6,
        }
    }

    /// Whether the pool has any range of `family`.
    pub(crate) fn has_family(&self, family: IpFamily) -> bool {
        match family {
            IpFamily::V4 => self.total_v4 > 0,
            IpFamily::V6 => self.total_v6 > 0,
        }
    }

    /// Whether avoidBuggyIPs refuses `ip` in this pool.
    pub(crate) fn is_buggy(&self, ip: &IpAddr) -> bool {
        let (family, bits) = to_bits(ip);
        self.pool.avoid_buggy_ips && is_buggy(family, bits)
    }

    /// The `i`-th well-formed `spec.addresses` entry, in the order written.
    pub(crate) fn entry(&self, i: usize) -> Option<Entry> {
        self.entries.get(i).copied()
    }

    /// The lowest free address of `entry` that the pool may hand out, without taking it.
    ///
    /// With avoidBuggyIPs, a `.0`/`.255` address found first is dropped from the free set for
    /// good (it can never be handed out), so each is looked at once per config generation and
    /// the amortised cost stays `O(log k)`. The loop ends because every turn either returns or
    /// removes one address from a finite set.
    pub(crate) fn peek_free(&mut self, entry: Entry) -> Option<IpAddr> {
        let avoid = self.pool.avoid_buggy_ips;
        let family = entry.family;
        while let Some(bits) = self.free(family).first_in(entry.start, entry.end) {
            if avoid && is_buggy(family, bits) {
                self.free(family).remove(bits);
                self.unusable[idx(family)] += 1;
                continue;
            }
            return from_bits(family, bits);
        }
        None
    }

    /// Marks `ip` as used; false when it was not free.
    pub(crate) fn take(&mut self, ip: &IpAddr) -> bool {
        let (family, bits) = to_bits(ip);
        let taken = self.free(family).remove(bits);
        if taken {
            self.in_use[idx(family)] += 1;
        }
        taken
    }

    /// Returns `ip` to the free set when it belongs to the pool.
    pub(crate) fn give_back(&mut self, ip: &IpAddr) {
        if !self.pool.contains(ip) || self.is_buggy(ip) {
            return;
        }
        let (family, bits) = to_bits(ip);
        if self.free(family).insert(bits) {
            self.in_use[idx(family)] = self.in_use[idx(family)].saturating_sub(1);
        }
    }

    /// Whether `ip` is free in this pool.
    pub(crate) fn is_free(&self, ip: &IpAddr) -> bool {
        let (family, bits) = to_bits(ip);
        match family {
            IpFamily::V4 => self.free_v4.contains(bits),
            IpFamily::V6 => self.free_v6.contains(bits),
        }
    }

    /// Addresses of `family` handed out.
    pub(crate) fn in_use(&self, family: IpFamily) -> u128 {
        self.in_use[idx(family)]
    }

    /// `.0`/`.255` addresses of `family` that avoidBuggyIPs has taken out of circulation.
    pub(crate) fn unusable(&self, family: IpFamily) -> u128 {
        self.unusable[idx(family)]
    }

    /// Addresses of `family` in the pool's ranges (buggy ones included), saturating.
    pub(crate) fn total(&self, family: IpFamily) -> u128 {
        match family {
            IpFamily::V4 => self.total_v4,
            IpFamily::V6 => self.total_v6,
        }
    }

    /// Free addresses of `family` (buggy ones not yet dropped included), saturating.
    pub(crate) fn free_count(&self, family: IpFamily) -> u128 {
        match family {
            IpFamily::V4 => self.free_v4.len(),
            IpFamily::V6 => self.free_v6.len(),
        }
    }
}

/// Whether `svc` may take addresses from `pool` at all (requested, annotated or automatic).
///
/// MetalLB's rules: a `metallb.io/address-pool` annotation restricts the Service to that pool;
/// `serviceAllocation.namespaces` and `namespaceSelectors` are alternatives ("an alternative to
/// using namespace list", CRD doc), so either admitting the namespace is enough; then a
/// `serviceSelectors` entry must match the Service when any is given.
pub(crate) fn may_use(pool: &Pool, svc: &Service) -> Result<(), PoolRejection> {
    if let Some(requested) = &svc.address_pool {
        if *requested != pool.name {
            return Err(PoolRejection::OtherPoolRequested {
                requested: requested.clone(),
            });
        }
    }
    let Some(sa) = &pool.service_allocation else {
        return Ok(());
    };
    let restricts_ns = !sa.namespaces.is_empty() || !sa.namespace_selectors.is_empty();
    let by_name = sa.namespaces.contains(svc.key.namespace.as_str());
    // `any_matches` is true for an empty list, hence the emptiness guard.
    let by_labels = !sa.namespace_selectors.is_empty()
        && any_matches(&sa.namespace_selectors, &svc.namespace_labels);
    if restricts_ns && !by_name && !by_labels {
        return Err(PoolRejection::Namespace {
            namespace: svc.key.namespace.to_string(),
        });
    }
    if !any_matches(&sa.service_selectors, &svc.labels) {
        return Err(PoolRejection::ServiceSelector);
    }
    Ok(())
}

/// The order in which automatic allocation tries pools: pools whose `serviceAllocation` pins them
/// to the Service come before general pools; among pinned pools a lower `priority` wins, and a
/// priority of 0 or none comes after every pool with a priority. That is MetalLB's `sortPools`:
/// the Go field is a plain `int`, so "unset" and 0 are the same value, and the CRD doc says "A
/// pool with no priority set will be used only if the pools with priority can't be used".
/// Negative priorities sort below positive ones here; MetalLB's comparator gives them no
/// consistent place. Ties break by name, where MetalLB's order is unspecified, so that the
/// result depends on the inputs only.
pub(crate) fn auto_order(a: &Pool, b: &Pool) -> Ordering {
    fn rank(p: &Pool) -> (u8, u8, i32) {
        match &p.service_allocation {
            Some(sa) => match sa.priority {
                Some(prio) if prio != 0 => (0, 0, prio),
                _ => (0, 1, 0),
            },
            None => (1, 0, 0),
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
}
