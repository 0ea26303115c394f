//! Property tests of the allocator invariants over random sequences of Service add /
//! change / delete, resyncs (restarts) and config changes:
//! 1. no IP is held by two Services unless they may share it;
//! 2. every IP lies in a pool the Service may use (annotation, serviceAllocation, avoidBuggyIPs,
//!    requested IPs);
//! 3. a Service's IPs never change while they stay valid;
//! 4. nothing leaks: pool counters match the holders, and deleting everything frees everything.
//!
//! The checks below restate the rules independently of the allocator's code.

#[path = "alloc_support.rs"]
mod alloc_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use alloc_support::*;
use ferrolb_allocator::{
    IpFamilyPolicy, PoolAllocator, Service, ServiceKey, ServiceState, ServiceType, TrafficPolicy,
};
use ferrolb_api::model::{Config, IpFamily, Pool};
use ferrolb_api::selector::LabelSelector;
use proptest::prelude::*;

const CANDIDATE_IPS: [&str; 10] = [
    "10.0.0.0",
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.5",
    "10.0.0.7",
    "10.0.1.0",
    "fd00::",
    "fd00::1",
    "fd00::3",
    "192.0.2.1",
];

fn selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: [(key.to_string(), value.to_string())].into(),
        ..Default::default()
    }
}

fn configs(i: usize) -> Config {
    match i % 5 {
        0 => config(vec![
            pool("a", &["10.0.0.0/30"]),
            // Entries not in numeric order: allocation walks them as written.
            pool("b", &["10.0.0.6-10.0.0.7", "fd00::/126", "10.0.0.4/31"]),
        ]),
        1 => {
            let mut a = pool("a", &["10.0.0.0/29"]);
            a.avoid_buggy_ips = true;
            config(vec![a, pool("c", &["fd00::/127", "10.0.1.0/31"])])
        }
        2 => {
            let a = pinned(pool("a", &["10.0.0.0/31"]), Some(1), &["ns0"]);
            let mut b = pool("b", &["10.0.0.2-10.0.0.5", "fd00::/126"]);
            b.auto_assign = false;
            config(vec![a, b])
        }
        3 => {
            // namespaces OR namespaceSelectors; serviceSelectors on top.
            let mut a = pinned(pool("a", &["10.0.0.0/30"]), Some(5), &["ns0"]);
            if let Some(sa) = a.service_allocation.as_mut() {
                sa.namespace_selectors = vec![selector("team", "x")];
            }
            let mut c = pinned(pool("c", &["10.0.0.4/31", "fd00::/127"]), None, &[]);
            if let Some(sa) = c.service_allocation.as_mut() {
                sa.service_selectors = vec![selector("tier", "web")];
            }
            config(vec![a, c, pool("b", &["10.0.1.0/31"])])
        }
        _ => Config::default(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(Box<Service>),
    Remove(usize),
    SetConfig(usize),
    /// A controller restart: a fresh allocator adopts from the statuses the old one wrote.
    Restart,
}

fn service_strategy() -> impl Strategy<Value = Service> {
    (
        (
            0..6usize,
            prop::option::of(0..2usize),
            0..3u16,
            any::<bool>(),
            0..2usize,
        ),
        (
            prop::option::weighted(0.25, 0..CANDIDATE_IPS.len()),
            prop::option::weighted(0.25, 0..3usize),
            0..3usize,
            0..3usize,
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.05),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (idx, key, port, local, sel),
                (req, pool, policy, fams, lb, classed),
                (web, team, prefer_shared),
            )| {
                let mut s = svc(&format!("ns{}", idx % 2), &format!("s{idx}"));
                if web {
                    s.labels = [("tier".to_string(), "web".to_string())].into();
                }
                // Namespace ns1 carries team=x in some histories, as a Namespace relabel would.
                if team && idx % 2 == 1 {
                    s.namespace_labels = [("team".to_string(), "x".to_string())].into();
                }
                s.sharing_key = key.map(|k| format!("k{k}"));
                s.prefer_shared_ip = prefer_shared;
                s.ports = vec![tcp(80 + port)];
                if local {
                    s.external_traffic_policy = TrafficPolicy::Local;
                }
                s.selector = [("app".to_string(), format!("a{sel}"))].into();
                s.requested_ips = req.map(|i| vec![ip(CANDIDATE_IPS[i])]).unwrap_or_default();
                s.address_pool = pool.map(|p| ["a", "b", "c"][p].to_string());
                s.ip_family_policy = [
                    IpFamilyPolicy::SingleStack,
                    IpFamilyPolicy::PreferDualStack,
                    IpFamilyPolicy::RequireDualStack,
                ][policy];
                s.ip_families = [
                    vec![IpFamily::V4],
                    vec![IpFamily::V6],
                    vec![IpFamily::V4, IpFamily::V6],
                ][fams]
                    .clone();
                if !lb {
                    s.service_type = ServiceType::NodePort;
                }
                if classed {
                    s.load_balancer_class = Some("someone.else/lb".into());
                }
                s
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => service_strategy().prop_map(|s| Op::Upsert(Box::new(s))),
        2 => (0..6usize).prop_map(Op::Remove),
        1 => (0..5usize).prop_map(Op::SetConfig),
        1 => Just(Op::Restart),
    ]
}

fn handled(s: &Service) -> bool {
    s.service_type == ServiceType::LoadBalancer && s.load_balancer_class.is_none()
}

/// Rule 2 restated: may `s` take `ip` from `pool`?
fn pool_allows(pool: &Pool, s: &Service, ip: &IpAddr) -> bool {
    if !pool.contains(ip) {
        return false;
    }
    if s.address_pool.as_ref().is_some_and(|p| *p != pool.name) {
        return false;
    }
    if let Some(sa) = &pool.service_allocation {
        let by_name = sa.namespaces.contains(s.key.namespace.as_str());
        let by_labels = sa
            .namespace_selectors
            .iter()
            .any(|sel| sel.matches(&s.namespace_labels));
        let restricted = !sa.namespaces.is_empty() || !sa.namespace_selectors.is_empty();
        if restricted && !by_name && !by_labels {
            return false;
        }
        let svc_ok = sa.service_selectors.is_empty()
            || sa
                .service_selectors
                .iter()
                .any(|sel| sel.matches(&s.labels));
        if !svc_ok {
            return false;
        }
    }
    let buggy = match ip {
        IpAddr::V4(v4) => matches!(v4.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    };
    !(pool.avoid_buggy_ips && buggy)
}

/// Rule 1 restated: may `a` and `b` hold one IP together?
fn may_share(a: &Service, b: &Service) -> bool {
    let same_key = a.sharing_key.is_some() && a.sharing_key == b.sharing_key;
    let same_policy = a.external_traffic_policy == b.external_traffic_policy;
    let same_pods = a.external_traffic_policy == TrafficPolicy::Cluster || a.selector == b.selector;
    let no_clash = a.ports.iter().all(|p| !b.ports.contains(p));
    same_key && same_policy && same_pods && no_clash
}

/// Rules 1 and 2 for `s` holding `ips` from `pool_name`, given everyone else's holdings.
fn valid(
    cfg: &Config,
    s: &Service,
    ips: &[IpAddr],
    pool_name: &str,
    specs: &BTreeMap<ServiceKey, Service>,
    held: &BTreeMap<ServiceKey, Vec<IpAddr>>,
) -> bool {
    let Some(pool) = cfg.pools.get(pool_name) else {
        return false;
    };
    let fams: BTreeSet<IpFamily> = ips.iter().map(IpFamily::of).collect();
    if ips.is_empty() || fams.len() != ips.len() {
        return false;
    }
    if !s.requested_ips.is_empty() {
        let want: BTreeSet<&IpAddr> = s.requested_ips.iter().collect();
        if want != ips.iter().collect() {
            return false;
        }
    }
    let primary = s.ip_families.first().copied().unwrap_or(IpFamily::V4);
    let families_ok = match s.ip_family_policy {
        IpFamilyPolicy::RequireDualStack => ips.len() == 2,
        IpFamilyPolicy::PreferDualStack if s.ip_families.len() == 2 => true,
        _ => ips.len() == 1 && fams.contains(&primary),
    };
    if !families_ok {
        return false;
    }
    let sharing_ok = held.iter().all(|(k, other_ips)| {
        *k == s.key
            || other_ips.iter().all(|ip| !ips.contains(ip))
            || specs.get(k).is_some_and(|o| may_share(s, o))
    });
    sharing_ok && ips.iter().all(|ip| pool_allows(pool, s, ip))
}

fn holdings(a: &PoolAllocator) -> BTreeMap<ServiceKey, (Vec<IpAddr>, String)> {
    a.states()
        .filter_map(|(k, st)| match st {
            ServiceState::Assigned(asg) => Some((k.clone(), (asg.ips, asg.pool))),
            _ => None,
        })
        .collect()
}

fn check_invariants(
    a: &PoolAllocator,
    cfg: &Config,
    specs: &BTreeMap<ServiceKey, Service>,
) -> Result<(), TestCaseError> {
    a.audit().map_err(TestCaseError::fail)?;
    let held = holdings(a);
    let ips_only: BTreeMap<ServiceKey, Vec<IpAddr>> = held
        .iter()
        .map(|(k, (ips, _))| (k.clone(), ips.clone()))
        .collect();
    for (k, (ips, pool)) in &held {
        let s = specs
            .get(k)
            .ok_or_else(|| TestCaseError::fail(format!("{k} holds IPs but is unknown")))?;
        prop_assert!(handled(s), "{k} is not ours but holds {ips:?}");
        prop_assert!(
            valid(cfg, s, ips, pool, specs, &ips_only),
            "{k} holds {ips:?} from {pool} against the rules"
        );
    }
    // Rule 4: pool counters equal distinct held IPs.
    let mut distinct: BTreeMap<(String, IpFamily), BTreeSet<IpAddr>> = BTreeMap::new();
    for (ips, pool) in held.values() {
        for ip in ips {
            distinct
                .entry((pool.clone(), IpFamily::of(ip)))
                .or_default()
                .insert(*ip);
        }
    }
    for u in a.usage() {
        let n = distinct
            .get(&(u.pool.clone(), u.family))
            .map_or(0, |s| s.len());
        prop_assert_eq!(u.in_use, n as u128, "pool {} {:?}", u.pool, u.family);
    }
    Ok(())
}

/// Rule 3 allows one change to still-valid IPs: MetalLB's `AllocateFromPoolForAdditionalFamily`,
/// where a `PreferDualStack` Service (no requested IPs) holding one IP keeps it and gains one of
/// the other family.
fn kept(s: &Service, before: &[IpAddr], now: Option<&[IpAddr]>) -> bool {
    let Some(now) = now else { return false };
    if now == before {
        return true;
    }
    s.ip_family_policy == IpFamilyPolicy::PreferDualStack
        && s.requested_ips.is_empty()
        && before.len() == 1
        && now.len() == 2
        && now.contains(&before[0])
        && now
            .iter()
            .any(|ip| IpFamily::of(ip) != IpFamily::of(&before[0]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn allocator_invariants_hold_over_random_histories(
        first_cfg in 0..5usize,
        ops in prop::collection::vec(op_strategy(), 1..60),
    ) {
        let mut cfg = configs(first_cfg);
        let mut a = PoolAllocator::new(None);
        a.set_config(&cfg);
        // Last spec of every Service that exists, with its status as the controller wrote it.
        let mut specs: BTreeMap<ServiceKey, Service> = BTreeMap::new();

        for op in ops {
            let before = holdings(&a);
            let before_specs = specs.clone();
            let mut touched: Option<ServiceKey> = None;
            match op {
                Op::Upsert(s) => {
                    touched = Some(s.key.clone());
                    specs.insert(s.key.clone(), (*s).clone());
                    a.upsert(*s);
                }
                Op::Remove(i) => {
                    let k = key(&format!("ns{}", i % 2), &format!("s{i}"));
                    specs.remove(&k);
                    a.remove(&k);
                    touched = Some(k);
                }
                Op::SetConfig(i) => {
                    cfg = configs(i);
                    a.set_config(&cfg);
                }
                Op::Restart => {
                    let mut fresh = PoolAllocator::new(None);
                    fresh.set_config(&cfg);
                    let list: Vec<Service> = specs
                        .values()
                        .map(|s| {
                            let mut s = s.clone();
                            s.status_ips = before.get(&s.key).map(|h| h.0.clone()).unwrap_or_default();
                            s
                        })
                        .collect();
                    fresh.resync(list);
                    a = fresh;
                }
            }
            check_invariants(&a, &cfg, &specs)?;

            // Rule 3: an untouched Service whose IPs are still valid keeps them.
            let after = holdings(&a);
            let ips_before: BTreeMap<ServiceKey, Vec<IpAddr>> =
                before.iter().map(|(k, (ips, _))| (k.clone(), ips.clone())).collect();
            for (k, (ips, pool)) in &before {
                let Some(s) = specs.get(k) else { continue };
                if touched.as_ref() == Some(k) && before_specs.get(k) != Some(s) {
                    // Changed spec: it must keep its IPs if they are still valid for it.
                    let others: BTreeMap<ServiceKey, Vec<IpAddr>> = ips_before
                        .iter()
                        .filter(|(o, _)| *o != k)
                        .map(|(o, v)| (o.clone(), v.clone()))
                        .collect();
                    let still = handled(s)
                        && cfg.pools.values().any(|p| valid(&cfg, s, ips, &p.name, &specs, &others));
                    if still {
                        let now = after.get(k).map(|h| h.0.as_slice());
                        prop_assert!(kept(s, ips, now), "{} moved: {:?} -> {:?}", k, ips, now);
                    }
                    continue;
                }
                let pool_now = cfg.pool_of(&ips[0]).map(|p| p.name.clone()).unwrap_or_default();
                if valid(&cfg, s, ips, &pool_now, &specs, &ips_before) {
                    let now = after.get(k).map(|h| h.0.as_slice());
                    prop_assert!(
                        kept(s, ips, now),
                        "{} moved off still-valid {:?} (was pool {}): now {:?}",
                        k,
                        ips,
                        pool,
                        now
                    );
                }
            }
        }

        // Rule 4: deleting everything frees everything.
        for k in specs.keys() {
            a.remove(k);
        }
        a.audit().map_err(TestCaseError::fail)?;
        for u in a.usage() {
            prop_assert_eq!(u.in_use, 0, "pool {} leaks", u.pool);
        }
    }
}
