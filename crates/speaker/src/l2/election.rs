//! Layer 2 mode: which node answers ARP/NDP for each VIP, decided by every speaker on its own.
//!
//! There is no coordination protocol: every speaker runs this pure function on the same inputs
//! and gets the same owner. For each VIP of a Service (rules from MetalLB
//! `layer2_controller.go`):
//!
//! 1. The Service passes the common gates (LoadBalancer, class, has an IP) and has at least one
//!    endpoint that can serve, anywhere (MetalLB `activeEndpointExists`, for both policies).
//! 2. The L2Advertisements that apply select the VIP's pool and match the Service
//!    (`serviceSelectors`).
//! 3. Eligible nodes: selected by an applying advertisement's `nodeSelectors`, alive, without
//!    `NetworkUnavailable`, not excluded from load balancers (a cordon does not matter); under
//!    `externalTrafficPolicy: Local` also holding a local endpoint that can serve.
//! 4. Candidates are ordered by SHA-256 of `"<node>#<vip>"`; the first wins. Ties (impossible
//!    in practice) fall back to the node name. This is MetalLB's key for single-stack Services,
//!    so a migration from MetalLB keeps each VIP where it was. MetalLB hashes a Service's *first*
//!    IP for all its IPs; we hash each VIP itself, because with the first-IP key two Services
//!    sharing a VIP but listing different first IPs elect two owners for it (found by the
//!    property test `speakers_agree_on_at_most_one_l2_owner_per_vip`). The cost: the two
//!    families of a dual-stack Service may land on different nodes, which ARP and NDP do not mind.
//! 5. The winner answers on the union of the applying advertisements' `interfaces` that select
//!    it; any of them without `interfaces` means every interface.
//!
//! "Alive" is membership in `live_speakers` when the caller tracks speaker liveness (MetalLB
//! uses memberlist), and every node otherwise. The Node's Ready condition does not count, as in
//! MetalLB's `speakersForPool`: the speaker's own liveness is what says whether it can answer.

// Inputs come from users and the API server: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_api::model::{Config, L2Advertisement};
use ferrolb_api::selector::any_matches;
use sha2::{Digest, Sha256};

use crate::advertiser::{Interfaces, L2Desired, L2Vip};
use crate::announce::bgp::changed_statuses;
use crate::announce::change::ChangeSet;
use crate::announce::input::{Cluster, Node, Service, ServiceKey, SmolStr, TrafficPolicy};
use crate::announce::reason::SkipReason;
use crate::announce::{node_gate, service_gate, SpeakerOptions};

/// The election for one VIP of one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    /// Eligible nodes, best first; the first is the owner.
    pub ranking: Vec<String>,
}

impl Election {
    /// The node that announces the VIP, if any is eligible.
    pub fn winner(&self) -> Option<&str> {
        self.ranking.first().map(String::as_str)
    }
}

/// What happened to one VIP of a Service in Layer 2 mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L2VipStatus {
    /// This node owns the VIP.
    Owner { interfaces: Interfaces },
    /// Another node owns it, or nobody may.
    NotOwner(SkipReason),
}

/// What happened to one Service in Layer 2 mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L2ServiceStatus {
    /// Not considered at all, for one reason covering all its VIPs.
    Skipped(SkipReason),
    /// Decided per VIP; the election is kept for status and logs.
    Vips(BTreeMap<IpAddr, (Election, L2VipStatus)>),
}

/// The result of [`compute_l2`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct L2Plan {
    /// The VIPs this node must answer for.
    pub desired: L2Desired,
    pub services: BTreeMap<ServiceKey, L2ServiceStatus>,
}

/// The ordering key of `node` for `ip`: SHA-256 of `"node#ip"`.
pub fn election_key(node: &str, ip: IpAddr) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(node.as_bytes());
    hasher.update(b"#");
    hasher.update(ip.to_string().as_bytes());
    hasher.finalize().into()
}

/// Orders `nodes` for `ip`; the first is the owner (rule 4).
pub fn rank_nodes(nodes: impl IntoIterator<Item = String>, ip: IpAddr) -> Vec<String> {
    let mut keyed: Vec<([u8; 32], String)> = nodes
        .into_iter()
        .map(|n| (election_key(&n, ip), n))
        .collect();
    keyed.sort();
    keyed.dedup();
    keyed.into_iter().map(|(_, n)| n).collect()
}

/// Computes the Layer 2 plan of node `opts.node_name`. Pure and total.
///
/// `live_speakers`: nodes whose speaker is known to run, when the caller tracks it; `None`
/// trusts the Nodes' Ready conditions alone.
///
/// The reference computation: [`L2Announcer`] keeps the same plan up to date one Service at a
/// time and must always agree with it (`tests/announce_incremental.rs`).
pub fn compute_l2(
    config: &Config,
    cluster: &Cluster,
    opts: &SpeakerOptions,
    live_speakers: Option<&BTreeSet<String>>,
) -> L2Plan {
    let mut plan = L2Plan::default();
    let endpoints = cluster.endpoint_index();
    for (key, svc) in &cluster.services {
        let status = service_status(
            config,
            cluster,
            opts,
            live_speakers,
            svc,
            &endpoints.serving_nodes(&svc.key),
        );
        for (vip, interfaces) in owned(&status) {
            add_owner(&mut plan.desired, key, vip, interfaces);
        }
        plan.services.insert(key.clone(), status);
    }
    plan
}

/// Rules 1-5 for one Service, whose serving endpoints are on the nodes `serving`.
fn service_status(
    config: &Config,
    cluster: &Cluster,
    opts: &SpeakerOptions,
    live_speakers: Option<&BTreeSet<String>>,
    svc: &Service,
    serving: &BTreeSet<Option<SmolStr>>,
) -> L2ServiceStatus {
    match service_gate(svc, opts).and_then(|()| any_endpoint(serving)) {
        Err(reason) => L2ServiceStatus::Skipped(reason),
        Ok(()) => {
            let ctx = ElectionCtx {
                config,
                cluster,
                opts,
                live_speakers,
                serving,
            };
            L2ServiceStatus::Vips(
                svc.ips
                    .iter()
                    .map(|vip| (*vip, elect_vip(&ctx, svc, *vip)))
                    .collect(),
            )
        }
    }
}

/// The VIPs this node owns in `status`, with their interfaces.
fn owned(status: &L2ServiceStatus) -> impl Iterator<Item = (IpAddr, &Interfaces)> {
    let vips = match status {
        L2ServiceStatus::Vips(vips) => Some(vips),
        L2ServiceStatus::Skipped(_) => None,
    };
    vips.into_iter()
        .flatten()
        .filter_map(|(vip, (_, st))| match st {
            L2VipStatus::Owner { interfaces } => Some((*vip, interfaces)),
            L2VipStatus::NotOwner(_) => None,
        })
}

/// `key` owns `vip` on `interfaces`: a Service more for the VIP, and the union of interfaces
/// (rule 5 across Services sharing the VIP).
fn add_owner(desired: &mut L2Desired, key: &ServiceKey, vip: IpAddr, interfaces: &Interfaces) {
    let entry = desired.vips.entry(vip).or_insert_with(|| L2Vip {
        interfaces: interfaces.clone(),
        services: BTreeSet::new(),
    });
    entry.interfaces = union(&entry.interfaces, interfaces);
    entry.services.insert(key.clone());
}

/// The Layer 2 plan of this node, kept up to date by [`update`](Self::update) with what changed.
///
/// After any sequence of updates, [`desired`](Self::desired) and [`statuses`](Self::statuses)
/// equal the [`L2Plan`] that [`compute_l2`] gives for the last inputs, provided every change was
/// reported: the configuration, Nodes and the live speakers as [`ChangeSet::all`], a Service or
/// its EndpointSlices by naming the Service.
///
/// Per VIP the desired state lists the Services that own it, so removing one Service keeps a
/// VIP another Service sharing it still owns, and its interfaces are merged again from the
/// remaining owners' reports.
#[derive(Debug, Clone)]
pub struct L2Announcer {
    opts: SpeakerOptions,
    /// A full computation has been done; until then every update is one.
    built: bool,
    desired: L2Desired,
    statuses: BTreeMap<ServiceKey, L2ServiceStatus>,
}

impl L2Announcer {
    /// An announcer with nothing computed yet; the first [`update`](Self::update) should say
    /// [`ChangeSet::all`].
    pub fn new(opts: SpeakerOptions) -> Self {
        Self {
            opts,
            built: false,
            desired: L2Desired::default(),
            statuses: BTreeMap::new(),
        }
    }

    /// An announcer whose last report is `statuses` and that has computed nothing yet (the
    /// status file's tests).
    #[cfg(test)]
    pub(crate) fn with_statuses(
        opts: SpeakerOptions,
        statuses: BTreeMap<ServiceKey, L2ServiceStatus>,
    ) -> Self {
        let mut announcer = Self::new(opts);
        announcer.statuses = statuses;
        announcer
    }

    /// Brings the plan up to date with (`config`, `cluster`, `live_speakers`, as
    /// [`compute_l2`] takes them) given what changed since the last call; returns the Services
    /// whose status changed (added, removed or different), in key order.
    pub fn update(
        &mut self,
        config: &Config,
        cluster: &Cluster,
        live_speakers: Option<&BTreeSet<String>>,
        changed: &ChangeSet,
    ) -> Vec<ServiceKey> {
        if changed.all || !self.built {
            let plan = compute_l2(config, cluster, &self.opts, live_speakers);
            let out = changed_statuses(&self.statuses, &plan.services);
            self.desired = plan.desired;
            self.statuses = plan.services;
            self.built = true;
            return out;
        }
        let mut out = Vec::new();
        for key in &changed.services {
            let status = cluster.services.get(key).map(|svc| {
                service_status(
                    config,
                    cluster,
                    &self.opts,
                    live_speakers,
                    svc,
                    &cluster.serving_nodes(key),
                )
            });
            let old = match status {
                Some(status) => self.statuses.insert(key.clone(), status),
                None => self.statuses.remove(key),
            };
            if old.as_ref() == self.statuses.get(key) {
                continue;
            }
            out.push(key.clone());
            if let Some(old) = &old {
                for (vip, _) in owned(old) {
                    self.withdraw_owner(key, vip);
                }
            }
            if let Some(new) = self.statuses.get(key) {
                for (vip, interfaces) in owned(new) {
                    add_owner(&mut self.desired, key, vip, interfaces);
                }
            }
        }
        out
    }

    /// `key` no longer owns `vip`: the VIP goes with its last owner, otherwise its interfaces
    /// are merged again from the owners left.
    fn withdraw_owner(&mut self, key: &ServiceKey, vip: IpAddr) {
        let Some(entry) = self.desired.vips.get_mut(&vip) else {
            return;
        };
        entry.services.remove(key);
        let statuses = &self.statuses;
        let mut remaining = entry
            .services
            .iter()
            .filter_map(|other| statuses.get(other))
            .flat_map(|st| owned(st).filter(|(v, _)| *v == vip).map(|(_, i)| i));
        match remaining.next() {
            None => {
                self.desired.vips.remove(&vip);
            }
            Some(first) => {
                let merged = remaining.fold(first.clone(), |acc, i| union(&acc, i));
                entry.interfaces = merged;
            }
        }
    }

    /// The VIPs this node must answer for, as [`L2Plan::desired`].
    pub fn desired(&self) -> &L2Desired {
        &self.desired
    }

    /// Every Service of the cluster and what happened to it, as [`L2Plan::services`].
    pub fn statuses(&self) -> &BTreeMap<ServiceKey, L2ServiceStatus> {
        &self.statuses
    }
}

/// Rule 1: some endpoint, anywhere, can serve.
fn any_endpoint(serving: &BTreeSet<Option<SmolStr>>) -> Result<(), SkipReason> {
    if serving.is_empty() {
        return Err(SkipReason::NoEndpoints);
    }
    Ok(())
}

/// What every election of one Service reads.
struct ElectionCtx<'a> {
    config: &'a Config,
    cluster: &'a Cluster,
    opts: &'a SpeakerOptions,
    live_speakers: Option<&'a BTreeSet<String>>,
    /// Nodes with a serving endpoint of the Service.
    serving: &'a BTreeSet<Option<SmolStr>>,
}

fn elect_vip(ctx: &ElectionCtx<'_>, svc: &Service, vip: IpAddr) -> (Election, L2VipStatus) {
    let ElectionCtx {
        config,
        cluster,
        opts,
        live_speakers,
        serving,
    } = *ctx;
    let no_election = |reason| {
        (
            Election {
                ranking: Vec::new(),
            },
            L2VipStatus::NotOwner(reason),
        )
    };
    let ads = match applying_advertisements(config, svc, vip) {
        Ok(ads) => ads,
        Err(reason) => return no_election(reason),
    };
    let eligible = cluster.nodes.values().filter(|node| {
        ads.iter()
            .any(|a| any_matches(&a.node_selectors, &node.labels))
            && alive(node, live_speakers)
            && node_gate(node, opts).is_ok()
            && (svc.traffic_policy == TrafficPolicy::Cluster
                || serving.contains(&Some(node.name.clone())))
    });
    let election = Election {
        ranking: rank_nodes(eligible.map(|n| n.name.to_string()), vip),
    };
    let status = match election.winner() {
        None => L2VipStatus::NotOwner(SkipReason::NoEligibleNode),
        Some(winner) if winner == opts.node_name => {
            // The winner is one of the nodes, so its labels are known.
            let labels = cluster
                .nodes
                .get(winner)
                .map(|n| &n.labels)
                .cloned()
                .unwrap_or_default();
            L2VipStatus::Owner {
                interfaces: interfaces_for(
                    ads.iter()
                        .copied()
                        .filter(|a| any_matches(&a.node_selectors, &labels)),
                ),
            }
        }
        Some(winner) => L2VipStatus::NotOwner(SkipReason::NotOwner {
            winner: winner.to_string(),
        }),
    };
    (election, status)
}

/// Rule 2.
fn applying_advertisements<'c>(
    config: &'c Config,
    svc: &Service,
    vip: IpAddr,
) -> Result<Vec<&'c L2Advertisement>, SkipReason> {
    let pool = config.pool_of(&vip).ok_or(SkipReason::NoPool)?;
    let for_pool: Vec<_> = config
        .l2_advertisements
        .values()
        .filter(|a| a.pools.contains(&pool.name))
        .collect();
    if for_pool.is_empty() {
        return Err(SkipReason::NoAdvertisement);
    }
    let for_service: Vec<_> = for_pool
        .into_iter()
        .filter(|a| any_matches(&a.service_selectors, &svc.labels))
        .collect();
    if for_service.is_empty() {
        return Err(SkipReason::ServiceSelectorMismatch);
    }
    Ok(for_service)
}

fn alive(node: &Node, live_speakers: Option<&BTreeSet<String>>) -> bool {
    live_speakers.is_none_or(|live| live.contains(node.name.as_str()))
}

/// Rule 5.
fn interfaces_for<'a>(ads: impl Iterator<Item = &'a L2Advertisement>) -> Interfaces {
    let mut names = BTreeSet::new();
    for ad in ads {
        if ad.interfaces.is_empty() {
            return Interfaces::All;
        }
        names.extend(ad.interfaces.iter().cloned());
    }
    Interfaces::Only(names)
}

fn union(a: &Interfaces, b: &Interfaces) -> Interfaces {
    match (a, b) {
        (Interfaces::Only(x), Interfaces::Only(y)) => {
            Interfaces::Only(x.union(y).cloned().collect())
        }
        _ => Interfaces::All,
    }
}
