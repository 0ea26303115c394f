//! [`PoolAllocator`]: which Service holds which IPs, and the rules for handing them out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_api::model::{Config, IpFamily};

pub use crate::decision::{
    AllocatedHow, Assignment, Decision, Event, PoolUsage, ServiceState, SkipReason,
};
use crate::error::{
    AllocError, Families, FamilyMismatch, IpRejection, ReleaseReason, SharingConflict,
};
use crate::pool::{auto_order, from_bits, may_use, to_bits, PoolState};
use crate::service::{
    IpFamilyPolicy, Service, ServiceKey, ServicePort, ServiceType, TrafficPolicy,
};

#[derive(Debug, Clone)]
struct Entry {
    /// Shared so that settling and allocating need no deep copy of the Service.
    svc: Arc<Service>,
    /// Arrival order: re-allocation after a config change is first come, first served.
    seq: u64,
    assignment: Option<Assignment>,
    failure: Option<AllocError>,
}

impl Entry {
    fn state(&self) -> ServiceState {
        match (&self.assignment, &self.failure) {
            (Some(a), _) => ServiceState::Assigned(a.clone()),
            (None, Some(e)) => ServiceState::Failed(e.clone()),
            // Only between the two phases of `resync`; never returned.
            (None, None) => ServiceState::Failed(AllocError::NoPool {
                families: Families(self.svc.families()),
            }),
        }
    }
}

/// Who holds one IP. All users agree on the sharing attributes (the sharing rules make sure).
#[derive(Debug, Clone)]
struct IpUse {
    pool: String,
    sharing_key: Option<String>,
    traffic_policy: TrafficPolicy,
    selector: BTreeMap<String, String>,
    users: BTreeMap<ServiceKey, Vec<ServicePort>>,
}

/// The pure IP allocator: pools, who holds what, and the rules. No Kubernetes client inside.
///
/// Guarantees:
/// - an IP is held by two Services only when MetalLB's sharing rules allow it;
/// - every held IP lies in a pool its Service may use, and is never `.0`/`.255` in an
///   avoidBuggyIPs pool;
/// - a Service keeps its IPs as long as they stay valid for it (spec or config changes that
///   keep them valid never move them); requested IPs held by another Service are reported,
///   never taken;
/// - [`resync`](Self::resync) adopts every valid status IP before allocating anything new.
///
/// Cost: allocating, adopting or releasing is `O(P + log k)` for `P` pools and `k` free
/// intervals, whatever the number of allocated IPs (see `docs/allocator.md`).
#[derive(Debug, Clone, Default)]
pub struct PoolAllocator {
    /// `None` = handle Services without `spec.loadBalancerClass` only.
    class: Option<String>,
    pools: BTreeMap<String, PoolState>,
    /// Pool names in automatic-allocation order.
    order: Vec<String>,
    services: BTreeMap<ServiceKey, Entry>,
    ips: HashMap<IpAddr, IpUse>,
    /// IPs per pool and sharing key, so a sharing Service finds its partners without a scan.
    shared: HashMap<String, HashMap<String, BTreeSet<IpAddr>>>,
    next_seq: u64,
}

impl PoolAllocator {
    /// An allocator for `load_balancer_class` (`None`: Services without a class), with no pools.
    pub fn new(load_balancer_class: Option<String>) -> Self {
        Self {
            class: load_balancer_class,
            ..Self::default()
        }
    }

    /// Installs the pools of `config`. Held IPs that are still valid stay where they are; the
    /// others are released (`IPReleased` saying why) and their Services, like those that had
    /// failed before, get a new allocation in arrival order. Returns a Decision for each Service
    /// whose state changed.
    pub fn set_config(&mut self, config: &Config) -> Vec<Decision> {
        self.pools = config
            .pools
            .values()
            .map(|p| (p.name.clone(), PoolState::new(p.clone())))
            .collect();
        let mut order: Vec<&ferrolb_api::model::Pool> = config.pools.values().collect();
        order.sort_by(|a, b| auto_order(a, b));
        self.order = order.iter().map(|p| p.name.clone()).collect();
        self.ips.clear();
        self.shared.clear();

        let mut by_seq: Vec<(u64, ServiceKey)> = self
            .services
            .iter()
            .map(|(k, e)| (e.seq, k.clone()))
            .collect();
        by_seq.sort();
        let before: HashMap<ServiceKey, ServiceState> = self
            .services
            .iter()
            .map(|(k, e)| (k.clone(), e.state()))
            .collect();
        let mut events: HashMap<ServiceKey, Vec<Event>> = HashMap::new();

        // Phase 1: keep every assignment that is still valid, in arrival order.
        for (_, key) in &by_seq {
            let Some(entry) = self.services.get(key) else {
                continue;
            };
            let Some(held) = entry.assignment.clone() else {
                continue;
            };
            let svc = entry.svc.clone();
            match self.check_ips(&svc, &held.ips) {
                Ok(pool) => {
                    self.reserve(&svc, &held.ips, &pool);
                    self.set_entry(
                        key,
                        Some(Assignment {
                            ips: held.ips,
                            pool,
                        }),
                        None,
                    );
                }
                Err(why) => {
                    events
                        .entry(key.clone())
                        .or_default()
                        .push(Event::Released {
                            ips: held.ips,
                            pool: Some(held.pool),
                            reason: ReleaseReason::NoLongerValid(why),
                        });
                    self.set_entry(key, None, None);
                }
            }
        }
        // Phase 2, first come first served: everything without an address gets one, and a
        // PreferDualStack Service holding one family gains the other if its pool now has it.
        for (_, key) in &by_seq {
            let Some(entry) = self.services.get(key) else {
                continue;
            };
            let svc = entry.svc.clone();
            let held = entry.assignment.is_some();
            let out = events.entry(key.clone()).or_default();
            if held {
                self.add_missing_family(&svc, out);
            } else {
                self.allocate_and_store(&svc, out);
            }
        }

        let mut decisions = Vec::new();
        for (_, key) in by_seq {
            let Some(entry) = self.services.get(&key) else {
                continue;
            };
            let state = entry.state();
            let evs = events.remove(&key).unwrap_or_default();
            // Still failing for the same reason is no news; a state change without Events (the
            // same IPs now in a renamed pool) still is.
            let unchanged = before.get(&key) == Some(&state);
            if unchanged && evs.iter().all(|e| matches!(e, Event::Failed(_))) {
                continue;
            }
            decisions.push(Decision {
                service: key,
                state,
                events: evs,
            });
        }
        decisions
    }

    /// A Service was added or changed. Keeps its IPs while they stay valid; else adopts its
    /// status IPs when valid; else allocates.
    pub fn upsert(&mut self, svc: Service) -> Decision {
        let key = svc.key.clone();
        let mut events = Vec::new();
        let state = match self.settle(svc, &mut events) {
            Some(ServiceState::Assigned(_)) => self.complete(&key, &mut events),
            Some(state) => state,
            None => {
                let svc = self.services.get(&key).map(|e| e.svc.clone());
                match svc {
                    Some(svc) => self.allocate_and_store(&svc, &mut events),
                    None => ServiceState::NotHandled(SkipReason::Deleted),
                }
            }
        };
        Decision {
            service: key,
            state,
            events,
        }
    }

    /// A Service was deleted: its IPs go back to their pools.
    pub fn remove(&mut self, key: &ServiceKey) -> Decision {
        let mut events = Vec::new();
        self.forget(key, SkipReason::Deleted, &mut events);
        Decision {
            service: key.clone(),
            state: ServiceState::NotHandled(SkipReason::Deleted),
            events,
        }
    }

    /// Makes `services` the complete set of Services (on start, or after a relist): forgets the
    /// others, then — restart stability — keeps or adopts every valid IP of every Service before
    /// allocating anything new, first come first served in the order given. Returns one
    /// Decision per given Service, in the order given, then one per forgotten Service.
    pub fn resync(&mut self, services: Vec<Service>) -> Vec<Decision> {
        let present: HashSet<ServiceKey> = services.iter().map(|s| s.key.clone()).collect();
        let gone: Vec<ServiceKey> = self
            .services
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        let mut forgotten = Vec::new();
        for key in gone {
            forgotten.push(self.remove(&key));
        }

        let mut decisions: Vec<(ServiceKey, Option<ServiceState>, Vec<Event>)> = Vec::new();
        for svc in services {
            let key = svc.key.clone();
            let mut events = Vec::new();
            let state = self.settle(svc, &mut events);
            decisions.push((key, state, events));
        }
        let mut out = Vec::with_capacity(decisions.len() + forgotten.len());
        for (key, state, mut events) in decisions {
            let state = match state {
                Some(ServiceState::Assigned(_)) => self.complete(&key, &mut events),
                Some(state) => state,
                None => match self.services.get(&key) {
                    Some(entry) if entry.assignment.is_some() => entry.state(),
                    Some(entry) => {
                        let svc = entry.svc.clone();
                        self.allocate_and_store(&svc, &mut events)
                    }
                    None => ServiceState::NotHandled(SkipReason::Deleted),
                },
            };
            out.push(Decision {
                service: key,
                state,
                events,
            });
        }
        out.extend(forgotten);
        out
    }

    /// What `key` holds now.
    pub fn assignment(&self, key: &ServiceKey) -> Option<&Assignment> {
        self.services.get(key).and_then(|e| e.assignment.as_ref())
    }

    /// Every handled Service and its state, sorted by namespace/name.
    pub fn states(&self) -> impl Iterator<Item = (&ServiceKey, ServiceState)> {
        self.services.iter().map(|(k, e)| (k, e.state()))
    }

    /// Address counts per pool and family that has addresses, sorted by pool name.
    pub fn usage(&self) -> Vec<PoolUsage> {
        let mut out = Vec::new();
        for (name, pool) in &self.pools {
            for family in [IpFamily::V4, IpFamily::V6] {
                if !pool.has_family(family) {
                    continue;
                }
                out.push(PoolUsage {
                    pool: name.clone(),
                    family,
                    in_use: pool.in_use(family),
                    free: pool.free_count(family),
                    unusable: pool.unusable(family),
                    total: pool.total(family),
                });
            }
        }
        out
    }

    /// Cross-checks the internal indexes; `Err` names the first inconsistency. `O(n)`: for tests
    /// and for a `bug = true` log line, not for every call.
    pub fn audit(&self) -> Result<(), String> {
        for (ip, u) in &self.ips {
            let pool = self
                .pools
                .get(&u.pool)
                .ok_or_else(|| format!("{ip} held from missing pool {}", u.pool))?;
            if !pool.pool.contains(ip) || pool.is_free(ip) {
                return Err(format!("{ip} held but outside pool {} or free", u.pool));
            }
            if u.users.is_empty() {
                return Err(format!("{ip} held by nobody"));
            }
            for user in u.users.keys() {
                let held = self.assignment(user).is_some_and(|a| a.ips.contains(ip));
                if !held {
                    return Err(format!("{ip} lists {user}, which does not hold it"));
                }
            }
        }
        for (key, e) in &self.services {
            for ip in e.assignment.iter().flat_map(|a| a.ips.iter()) {
                let listed = self.ips.get(ip).is_some_and(|u| u.users.contains_key(key));
                if !listed {
                    return Err(format!("{key} holds {ip}, which is not recorded"));
                }
            }
        }
        for u in self.usage() {
            let sum = u.in_use.saturating_add(u.free).saturating_add(u.unusable);
            if sum != u.total {
                return Err(format!(
                    "pool {} {:?}: counts do not add up: {u:?}",
                    u.pool, u.family
                ));
            }
        }
        Ok(())
    }

    fn handles(&self, svc: &Service) -> Result<(), SkipReason> {
        if svc.service_type != ServiceType::LoadBalancer {
            return Err(SkipReason::NotLoadBalancer);
        }
        if svc.load_balancer_class != self.class {
            return Err(SkipReason::OtherClass {
                class: svc.load_balancer_class.clone(),
            });
        }
        Ok(())
    }

    /// Records `svc` and settles it without allocating: `Some(state)` when it is not handled or
    /// keeps or adopts IPs, `None` when it still needs an allocation.
    fn settle(&mut self, svc: Service, events: &mut Vec<Event>) -> Option<ServiceState> {
        let key = svc.key.clone();
        if let Err(skip) = self.handles(&svc) {
            self.forget(&key, skip.clone(), events);
            return Some(ServiceState::NotHandled(skip));
        }
        let svc = Arc::new(svc);
        let (seq, held) = match self.services.get(&key) {
            Some(e) => (e.seq, e.assignment.clone()),
            None => {
                self.next_seq += 1;
                (self.next_seq, None)
            }
        };
        self.services.insert(
            key.clone(),
            Entry {
                svc: Arc::clone(&svc),
                seq,
                assignment: held.clone(),
                failure: None,
            },
        );

        if let Some(held) = held {
            match self.check_ips(&svc, &held.ips) {
                Ok(pool) => {
                    // Still valid: refresh what the sharing rules see (ports, key, policy).
                    self.unreserve(&key, &held.ips);
                    self.reserve(&svc, &held.ips, &pool);
                    let a = Assignment {
                        ips: held.ips,
                        pool,
                    };
                    self.set_entry(&key, Some(a.clone()), None);
                    return Some(ServiceState::Assigned(a));
                }
                Err(why) => {
                    self.unreserve(&key, &held.ips);
                    self.set_entry(&key, None, None);
                    events.push(Event::Released {
                        ips: held.ips,
                        pool: Some(held.pool),
                        reason: ReleaseReason::NoLongerValid(why),
                    });
                    return None;
                }
            }
        }

        if !svc.status_ips.is_empty() {
            match self.check_ips(&svc, &svc.status_ips) {
                Ok(pool) => {
                    self.reserve(&svc, &svc.status_ips, &pool);
                    let a = Assignment {
                        ips: svc.status_ips.clone(),
                        pool,
                    };
                    self.set_entry(&key, Some(a.clone()), None);
                    return Some(ServiceState::Assigned(a));
                }
                Err(why) => events.push(Event::Released {
                    ips: svc.status_ips.clone(),
                    pool: None,
                    reason: ReleaseReason::NoLongerValid(why),
                }),
            }
        }
        None
    }

    /// The state of `key`, which holds IPs, after [`Self::add_missing_family`].
    fn complete(&mut self, key: &ServiceKey, events: &mut Vec<Event>) -> ServiceState {
        let Some(entry) = self.services.get(key) else {
            return ServiceState::NotHandled(SkipReason::Deleted);
        };
        let svc = entry.svc.clone();
        self.add_missing_family(&svc, events);
        self.services
            .get(key)
            .map_or(ServiceState::NotHandled(SkipReason::Deleted), Entry::state)
    }

    fn forget(&mut self, key: &ServiceKey, why: SkipReason, events: &mut Vec<Event>) {
        if let Some(entry) = self.services.remove(key) {
            if let Some(a) = entry.assignment {
                self.unreserve(key, &a.ips);
                events.push(Event::Released {
                    ips: a.ips,
                    pool: Some(a.pool),
                    reason: why.into(),
                });
            }
        }
    }

    fn set_entry(&mut self, key: &ServiceKey, a: Option<Assignment>, f: Option<AllocError>) {
        if let Some(e) = self.services.get_mut(key) {
            e.assignment = a;
            e.failure = f;
        }
    }

    fn allocate_and_store(&mut self, svc: &Service, events: &mut Vec<Event>) -> ServiceState {
        match self.allocate(svc) {
            Ok((a, how)) => {
                events.push(Event::Allocated {
                    ips: a.ips.clone(),
                    pool: a.pool.clone(),
                    how,
                });
                self.set_entry(&svc.key, Some(a.clone()), None);
                ServiceState::Assigned(a)
            }
            Err(e) => {
                events.push(Event::Failed(e.clone()));
                self.set_entry(&svc.key, None, Some(e.clone()));
                ServiceState::Failed(e)
            }
        }
    }

    /// Gives `svc` (which holds nothing) new IPs and reserves them.
    fn allocate(&mut self, svc: &Service) -> Result<(Assignment, AllocatedHow), AllocError> {
        if !svc.requested_ips.is_empty() {
            let pool = self
                .check_ips(svc, &svc.requested_ips)
                .map_err(AllocError::Requested)?;
            self.reserve(svc, &svc.requested_ips, &pool);
            let a = Assignment {
                ips: svc.requested_ips.clone(),
                pool,
            };
            return Ok((a, AllocatedHow::Requested));
        }

        let candidates: Vec<String> = match &svc.address_pool {
            Some(name) => {
                let Some(pool) = self.pools.get(name) else {
                    return Err(AllocError::UnknownPool { pool: name.clone() });
                };
                may_use(&pool.pool, svc).map_err(|reason| AllocError::PoolNotAllowed {
                    pool: name.clone(),
                    reason,
                })?;
                vec![name.clone()]
            }
            // autoAssign: false pools only serve explicit requests (MetalLB "Controlling
            // automatic address allocation").
            None => self
                .order
                .iter()
                .filter(|name| {
                    self.pools
                        .get(*name)
                        .is_some_and(|p| p.pool.auto_assign && may_use(&p.pool, svc).is_ok())
                })
                .cloned()
                .collect(),
        };

        // MetalLB's `Allocate` tries the pools pinned to the Service (`serviceAllocation`) as one
        // stage and the general pools only when no pinned pool can serve it; inside a stage, a
        // pool with every wanted family first, then (PreferDualStack) the first with the
        // primary family, then the first with the other. So a PreferDualStack Service takes one
        // family from a pinned pool rather than both from a general one.
        let (pinned, general): (Vec<String>, Vec<String>) =
            candidates.into_iter().partition(|name| {
                self.pools
                    .get(name)
                    .is_some_and(|p| p.pool.service_allocation.is_some())
            });
        let choices = svc.family_choices();
        // Per family set, the pools that had the families but no free address, stage order.
        let mut tried: Vec<Vec<String>> = vec![Vec::new(); choices.len()];
        for stage in [pinned, general] {
            for (families, tried) in choices.iter().zip(tried.iter_mut()) {
                for name in &stage {
                    let fits = self
                        .pools
                        .get(name)
                        .is_some_and(|p| families.iter().all(|f| p.has_family(*f)));
                    if !fits {
                        continue;
                    }
                    tried.push(name.clone());
                    let mut picked = Vec::with_capacity(families.len());
                    for family in families {
                        match self.pick(name, *family, svc) {
                            Some(ip) => picked.push(ip),
                            None => break,
                        }
                    }
                    if picked.len() == families.len() {
                        self.reserve(svc, &picked, name);
                        let a = Assignment {
                            ips: picked,
                            pool: name.clone(),
                        };
                        return Ok((a, AllocatedHow::Automatic));
                    }
                }
            }
        }
        match choices.iter().zip(tried).find(|(_, t)| !t.is_empty()) {
            Some((families, pools)) => Err(AllocError::Exhausted {
                pools,
                families: Families(families.clone()),
            }),
            None => Err(AllocError::NoPool {
                families: Families(choices.into_iter().next().unwrap_or_default()),
            }),
        }
    }

    /// The IP of `family` in pool `name` that `svc` should get, without taking it.
    ///
    /// MetalLB's `getFreeIPsFromPool`/`getIPFromCIDR`: the pool's `spec.addresses` entries in the
    /// order written, and in the first entry that has one, its lowest *usable* address: free, or
    /// already held under `svc`'s sharing key by Services it may join. A joinable shared IP is
    /// not preferred: it wins only when it is lower than the entry's lowest free address. With
    /// the FerroLB opt-in [`Service::prefer_shared_ip`], the lowest joinable shared IP anywhere in
    /// the pool comes first, so that Services under one key end up together.
    fn pick(&mut self, name: &str, family: IpFamily, svc: &Service) -> Option<IpAddr> {
        if svc.prefer_shared_ip {
            if let Some(ip) = self.joinable(name, family, svc, None) {
                return Some(ip);
            }
        }
        // By index: the pool is borrowed mutably below (peek_free drops buggy addresses).
        let mut next = 0;
        while let Some(entry) = self.pools.get(name).and_then(|p| p.entry(next)) {
            next += 1;
            if entry.family != family {
                continue;
            }
            let free = self.pools.get_mut(name)?.peek_free(entry);
            // Only shared IPs below the lowest free one can be lower usable addresses.
            let below_free = match free {
                Some(ip) => to_bits(&ip).1.checked_sub(1),
                None => Some(entry.end),
            };
            let shared =
                below_free.and_then(|hi| self.joinable(name, family, svc, Some((entry.start, hi))));
            if let Some(ip) = shared.or(free) {
                return Some(ip);
            }
        }
        None
    }

    /// The lowest IP of `family` in pool `name` held under `svc`'s sharing key that `svc` may
    /// join, within the inclusive `window` (as address bits) when given. Looks only at the IPs
    /// under that key (the `shared` index), never at every held IP.
    fn joinable(
        &self,
        name: &str,
        family: IpFamily,
        svc: &Service,
        window: Option<(u128, u128)>,
    ) -> Option<IpAddr> {
        let key = svc.sharing_key.as_ref()?;
        let set = self.shared.get(name)?.get(key)?;
        let fits = |ip: &IpAddr| {
            IpFamily::of(ip) == family
                && self
                    .ips
                    .get(ip)
                    .is_some_and(|u| share_check(u, svc).is_ok())
        };
        match window {
            None => set.iter().copied().find(fits),
            Some((lo, hi)) if lo <= hi => {
                let (lo, hi) = (from_bits(family, lo)?, from_bits(family, hi)?);
                set.range(lo..=hi).copied().find(fits)
            }
            Some(_) => None,
        }
    }

    /// MetalLB's `AllocateFromPoolForAdditionalFamily`: a `PreferDualStack` Service asking for
    /// both families that holds one IP (its pool had one family when it was allocated, or it
    /// was `SingleStack` before) keeps that IP and gains one of the other family from the same
    /// pool when the pool now has a usable one. Not for requested IPs: those are exactly what
    /// the Service holds. Nothing happens, and nothing is reported, when the pool has none to
    /// give (MetalLB logs `AdditionalAssignFailed` and keeps the one IP too).
    fn add_missing_family(&mut self, svc: &Service, events: &mut Vec<Event>) {
        if svc.ip_family_policy != IpFamilyPolicy::PreferDualStack || !svc.requested_ips.is_empty()
        {
            return;
        }
        let families = svc.families();
        let Some(held) = self.assignment(&svc.key).cloned() else {
            return;
        };
        let [have] = held.ips.as_slice() else {
            return;
        };
        let Some(missing) = families.iter().copied().find(|f| *f != IpFamily::of(have)) else {
            return;
        };
        if !self
            .pools
            .get(&held.pool)
            .is_some_and(|p| p.has_family(missing))
        {
            return;
        }
        let Some(extra) = self.pick(&held.pool, missing, svc) else {
            return;
        };
        self.reserve(svc, &[extra], &held.pool);
        // Primary family first, as in every assignment.
        let mut ips = vec![*have, extra];
        ips.sort_by_key(|ip| families.iter().position(|f| *f == IpFamily::of(ip)));
        events.push(Event::Allocated {
            ips: vec![extra],
            pool: held.pool.clone(),
            how: AllocatedHow::AdditionalFamily,
        });
        self.set_entry(
            &svc.key,
            Some(Assignment {
                ips,
                pool: held.pool,
            }),
            None,
        );
    }

    /// Whether `svc` may hold exactly `ips`; returns their pool.
    fn check_ips(&self, svc: &Service, ips: &[IpAddr]) -> Result<String, IpRejection> {
        check_families(svc, ips).map_err(|reason| IpRejection::Families {
            ips: ips.to_vec(),
            reason,
        })?;
        let mut first: Option<(IpAddr, String)> = None;
        for ip in ips {
            if !svc.requested_ips.is_empty() && !svc.requested_ips.contains(ip) {
                return Err(IpRejection::NotRequested { ip: *ip });
            }
            let Some(pool) = self.pools.values().find(|p| p.pool.contains(ip)) else {
                return Err(IpRejection::NotInAnyPool { ip: *ip });
            };
            may_use(&pool.pool, svc).map_err(|reason| IpRejection::PoolNotAllowed {
                ip: *ip,
                pool: pool.name().to_string(),
                reason,
            })?;
            if pool.is_buggy(ip) {
                return Err(IpRejection::Buggy {
                    ip: *ip,
                    pool: pool.name().to_string(),
                });
            }
            match &first {
                None => first = Some((*ip, pool.name().to_string())),
                Some((other, other_pool)) if other_pool != pool.name() => {
                    return Err(IpRejection::DifferentPools {
                        ip: *ip,
                        pool: pool.name().to_string(),
                        other: *other,
                        other_pool: other_pool.clone(),
                    });
                }
                Some(_) => {}
            }
            if let Some(u) = self.ips.get(ip) {
                share_check(u, svc).map_err(|(holder, conflict)| IpRejection::InUse {
                    ip: *ip,
                    holder,
                    conflict,
                })?;
            }
        }
        first.map(|(_, pool)| pool).ok_or(IpRejection::Families {
            ips: Vec::new(),
            reason: FamilyMismatch::Empty,
        })
    }

    /// Records `svc` as a user of `ips` (checked by `check_ips`) in pool `pool`.
    fn reserve(&mut self, svc: &Service, ips: &[IpAddr], pool: &str) {
        for ip in ips {
            let is_new = !self.ips.contains_key(ip);
            if is_new {
                if let Some(p) = self.pools.get_mut(pool) {
                    p.take(ip);
                }
            }
            let u = self.ips.entry(*ip).or_insert_with(|| IpUse {
                pool: pool.to_string(),
                sharing_key: None,
                traffic_policy: TrafficPolicy::Cluster,
                selector: BTreeMap::new(),
                users: BTreeMap::new(),
            });
            u.users.insert(svc.key.clone(), svc.ports.clone());
            if u.users.len() == 1 {
                // Sole user: the IP's sharing attributes are this Service's.
                let old_key = u.sharing_key.take();
                u.sharing_key = svc.sharing_key.clone();
                u.traffic_policy = svc.external_traffic_policy;
                u.selector = svc.selector.clone();
                let new_key = u.sharing_key.clone();
                if let Some(k) = old_key {
                    self.unindex(pool, &k, ip);
                }
                if let Some(k) = new_key {
                    self.shared
                        .entry(pool.to_string())
                        .or_default()
                        .entry(k)
                        .or_default()
                        .insert(*ip);
                }
            }
        }
    }

    /// Drops `key` as a user of `ips`; an IP nobody uses goes back to its pool.
    fn unreserve(&mut self, key: &ServiceKey, ips: &[IpAddr]) {
        for ip in ips {
            let Some(u) = self.ips.get_mut(ip) else {
                continue;
            };
            u.users.remove(key);
            if !u.users.is_empty() {
                continue;
            }
            let Some(u) = self.ips.remove(ip) else {
                continue;
            };
            if let Some(k) = &u.sharing_key {
                self.unindex(&u.pool, k, ip);
            }
            if let Some(p) = self.pools.get_mut(&u.pool) {
                p.give_back(ip);
            }
        }
    }

    fn unindex(&mut self, pool: &str, key: &str, ip: &IpAddr) {
        let Some(by_key) = self.shared.get_mut(pool) else {
            return;
        };
        if let Some(set) = by_key.get_mut(key) {
            set.remove(ip);
            if set.is_empty() {
                by_key.remove(key);
            }
        }
        if by_key.is_empty() {
            self.shared.remove(pool);
        }
    }
}

/// MetalLB's sharing rules ("IP Address Sharing" in its usage docs): Services may share an IP
/// when they carry the same `allow-shared-ip` key, use different ports, and either both use
/// externalTrafficPolicy Cluster or both select the exact same pods. `Err` names a user that
/// `svc` conflicts with. A Service never conflicts with itself.
fn share_check(u: &IpUse, svc: &Service) -> Result<(), (ServiceKey, SharingConflict)> {
    let Some(holder) = u.users.keys().find(|k| **k != svc.key).cloned() else {
        return Ok(());
    };
    let Some(theirs) = &u.sharing_key else {
        return Err((holder, SharingConflict::HolderDoesNotShare));
    };
    let Some(ours) = &svc.sharing_key else {
        return Err((holder, SharingConflict::ServiceDoesNotShare));
    };
    if ours != theirs {
        let conflict = SharingConflict::KeyMismatch {
            ours: ours.clone(),
            theirs: theirs.clone(),
        };
        return Err((holder, conflict));
    }
    if svc.external_traffic_policy != u.traffic_policy {
        let conflict = SharingConflict::TrafficPolicyMismatch {
            ours: svc.external_traffic_policy,
            theirs: u.traffic_policy,
        };
        return Err((holder, conflict));
    }
    if svc.external_traffic_policy == TrafficPolicy::Local && svc.selector != u.selector {
        return Err((holder, SharingConflict::SelectorMismatch));
    }
    for (other, ports) in &u.users {
        if *other == svc.key {
            continue;
        }
        if let Some(port) = svc.ports.iter().find(|p| ports.contains(p)) {
            return Err((other.clone(), SharingConflict::PortClash { port: *port }));
        }
    }
    Ok(())
}

/// Whether `ips` fit the Service's families and dual-stack policy: distinct families forming
/// one of the acceptable family sets.
fn check_families(svc: &Service, ips: &[IpAddr]) -> Result<(), FamilyMismatch> {
    if ips.is_empty() {
        return Err(FamilyMismatch::Empty);
    }
    let fams: Vec<IpFamily> = ips.iter().map(IpFamily::of).collect();
    let distinct: BTreeSet<IpFamily> = fams.iter().copied().collect();
    if distinct.len() != fams.len() {
        return Err(FamilyMismatch::DuplicateFamily);
    }
    let choices = svc.family_choices();
    let fits = choices
        .iter()
        .any(|c| c.iter().copied().collect::<BTreeSet<_>>() == distinct);
    if fits {
        return Ok(());
    }
    if choices.iter().all(|c| c.len() == 2) {
        return Err(FamilyMismatch::NeedsDualStack);
    }
    let wanted: BTreeSet<IpFamily> = choices.into_iter().flatten().collect();
    let unwanted = fams.into_iter().find(|f| !wanted.contains(f));
    Err(unwanted.map_or(
        FamilyMismatch::NeedsDualStack,
        FamilyMismatch::UnwantedFamily,
    ))
}
