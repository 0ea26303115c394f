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
//! 3. Eligible nodes: selected by an applying advertisement's `nodeSelectors`, alive, available
//!    (not cordoned, no `NetworkUnavailable`), not excluded from load balancers; under
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
//! "Alive" is the Node's Ready condition (`None` counts as alive, for hand-written standalone
//! Nodes) and, when the caller tracks speaker liveness (MetalLB uses memberlist), membership in
//! `live_speakers`.

// Inputs come from users and the API server: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_api::model::{Config, L2Advertisement};
use ferrolb_api::selector::any_matches;
use sha2::{Digest, Sha256};

use crate::advertiser::{Interfaces, L2Desired, L2Vip};
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
pub fn compute_l2(
    config: &Config,
    cluster: &Cluster,
    opts: &SpeakerOptions,
    live_speakers: Option<&BTreeSet<String>>,
) -> L2Plan {
    let mut plan = L2Plan::default();
    let endpoints = cluster.endpoint_index();
    for (key, svc) in &cluster.services {
        let serving = endpoints.serving_nodes(&svc.key);
        let status = match service_gate(svc, opts).and_then(|()| any_endpoint(&serving)) {
            Err(reason) => L2ServiceStatus::Skipped(reason),
            Ok(()) => {
                let ctx = ElectionCtx {
                    config,
                    cluster,
                    opts,
                    live_speakers,
                    serving: &serving,
                };
                let mut vips = BTreeMap::new();
                for vip in &svc.ips {
                    let outcome = elect_vip(&ctx, svc, *vip);
                    if let (_, L2VipStatus::Owner { interfaces }) = &outcome {
                        let entry = plan.desired.vips.entry(*vip).or_insert_with(|| L2Vip {
                            interfaces: interfaces.clone(),
                            services: BTreeSet::new(),
                        });
                        entry.interfaces = union(&entry.interfaces, interfaces);
                        entry.services.insert(key.clone());
                    }
                    vips.insert(*vip, outcome);
                }
                L2ServiceStatus::Vips(vips)
            }
        };
        plan.services.insert(key.clone(), status);
    }
    plan
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
    node.ready != Some(false) && live_speakers.is_none_or(|live| live.contains(node.name.as_str()))
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
