//! The incremental engines equal the full computations: after any sequence of cluster changes
//! (Services added, removed, modified; endpoints flipping; IPs moving between Services or shared
//! by several; slices re-pointed; Nodes, liveness and the configuration changing), feeding
//! [`BgpAnnouncer`] and [`L2Announcer`] the matching [`ChangeSet`]s gives exactly the plan that
//! `compute_bgp` / `compute_l2` give on the state reached, and reports exactly the Services
//! whose status changed.

mod announce_fixtures;
#[path = "announce_fixtures/arb.rs"]
mod arb;

use std::collections::{BTreeMap, BTreeSet};

use announce_fixtures::*;
use arb::*;
use ferrolb_api::model::{BgpCommunity, Config};
use ferrolb_speaker::announce::bgp::{compute_bgp, BgpAnnouncer, BgpDesired};
use ferrolb_speaker::announce::change::ChangeSet;
use ferrolb_speaker::announce::input::{
    Cluster, EndpointSlice, Node, Service, ServiceKey, SliceKey,
};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::{compute_l2, L2Announcer};
use proptest::prelude::*;

/// Services `s0`..`s5`: the world starts with four, so two can be added.
const SERVICES: usize = 6;

/// One change to the inputs.
#[derive(Debug, Clone)]
enum Op {
    /// Adds or replaces a Service (new IPs, policy, labels, type).
    UpsertService(Service),
    RemoveService(usize),
    /// Adds or replaces an EndpointSlice (endpoints flipping ready, moving node).
    UpsertSlice(EndpointSlice),
    /// Removes slice `s{0}-{1}`.
    RemoveSlice(usize, usize),
    /// Points slice `s{0}-{1}` at Service `s{2}` (its service-name label changed).
    RetargetSlice(usize, usize, usize),
    UpsertNode(Node),
    RemoveNode(&'static str),
    /// The live speakers (`None`: liveness not tracked).
    Live(Option<Vec<&'static str>>),
    Config(Config),
}

fn arb_op() -> impl Strategy<Value = Op> {
    let service = (0..SERVICES)
        .prop_flat_map(arb_service)
        .prop_map(Op::UpsertService);
    let slice = (0..SERVICES, 0usize..2)
        .prop_flat_map(|(s, i)| arb_slice(s, i))
        .prop_map(Op::UpsertSlice);
    let node = prop::sample::select(NODE_NAMES.to_vec())
        .prop_flat_map(arb_node)
        .prop_map(Op::UpsertNode);
    prop_oneof![
        6 => service,
        2 => (0..SERVICES).prop_map(Op::RemoveService),
        5 => slice,
        1 => (0..SERVICES, 0usize..2).prop_map(|(s, i)| Op::RemoveSlice(s, i)),
        1 => (0..SERVICES, 0usize..2, 0..SERVICES).prop_map(|(s, i, t)| Op::RetargetSlice(s, i, t)),
        1 => node,
        1 => prop::sample::select(NODE_NAMES.to_vec()).prop_map(Op::RemoveNode),
        1 => prop::option::of(prop::sample::subsequence(NODE_NAMES.to_vec(), 0..=4)).prop_map(Op::Live),
        1 => arb_config_with_twins().prop_map(Op::Config),
    ]
}

fn slice_key(service: usize, index: usize) -> SliceKey {
    SliceKey {
        namespace: "ns".into(),
        name: format!("s{service}-{index}").into(),
    }
}

/// The inputs both computations read.
#[derive(Debug, Clone)]
struct Inputs {
    config: Config,
    cluster: Cluster,
    live: Option<BTreeSet<String>>,
}

impl Inputs {
    /// Applies `op` and says what changed, as the daemon would.
    fn apply(&mut self, op: &Op) -> ChangeSet {
        let c = &mut self.cluster;
        match op {
            Op::UpsertService(s) => {
                c.upsert_service(s.clone());
                ChangeSet::service(s.key.clone())
            }
            Op::RemoveService(i) => {
                let k = key(&format!("s{i}"));
                c.remove_service(&k);
                ChangeSet::service(k)
            }
            Op::UpsertSlice(s) => {
                // A replaced slice may have belonged to another Service before.
                let mut changed = ChangeSet::service(s.service.clone());
                if let Some(old) = c.endpoint_slices.get(&s.key) {
                    changed.merge(ChangeSet::service(old.service.clone()));
                }
                c.upsert_endpoint_slice(s.clone());
                changed
            }
            Op::RemoveSlice(s, i) => match c.remove_endpoint_slice(&slice_key(*s, *i)) {
                Some(old) => ChangeSet::service(old.service),
                None => ChangeSet::default(),
            },
            Op::RetargetSlice(s, i, t) => match c.endpoint_slices.get_mut(&slice_key(*s, *i)) {
                Some(slice) => {
                    let mut changed = ChangeSet::service(slice.service.clone());
                    slice.service = key(&format!("s{t}"));
                    changed.merge(ChangeSet::service(slice.service.clone()));
                    changed
                }
                None => ChangeSet::default(),
            },
            Op::UpsertNode(n) => {
                c.upsert_node(n.clone());
                ChangeSet::all()
            }
            Op::RemoveNode(n) => {
                c.remove_node(n);
                ChangeSet::all()
            }
            Op::Live(live) => {
                self.live = live
                    .as_ref()
                    .map(|l| l.iter().map(|n| n.to_string()).collect());
                ChangeSet::all()
            }
            Op::Config(config) => {
                self.config = config.clone();
                ChangeSet::all()
            }
        }
    }
}

/// The keys whose status differs between two full plans.
fn diff<V: PartialEq>(
    old: &BTreeMap<ServiceKey, V>,
    new: &BTreeMap<ServiceKey, V>,
) -> Vec<ServiceKey> {
    let keys: BTreeSet<&ServiceKey> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

/// [`arb_config`], half the time with advertisement `b` a twin of `a` that differs only in
/// LOCAL_PREF and communities: the same prefixes to the same peers with disagreeing
/// attributes, so merges and LOCAL_PREF conflicts come and go with the Services.
fn arb_config_with_twins() -> impl Strategy<Value = Config> {
    (
        arb_config(),
        any::<bool>(),
        prop::option::of(0u32..300),
        0u32..4,
    )
        .prop_map(|(mut config, twin, local_pref, community)| {
            let a = config.bgp_advertisements.get("a").cloned();
            if let (true, Some(mut b)) = (twin, a) {
                b.name = "b".into();
                b.local_pref = local_pref;
                b.communities = vec![BgpCommunity::Standard(community)];
                config.bgp_advertisements.insert(b.name.clone(), b);
            }
            config
        })
}

/// `ops` in batches: `true` after an op ends a batch (its changes are merged into one update).
fn arb_ops() -> impl Strategy<Value = Vec<(Op, bool)>> {
    prop::collection::vec((arb_op(), prop::bool::weighted(0.7)), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_plans_equal_full_computations(
        w in arb_world(),
        config in arb_config_with_twins(),
        ops in arb_ops(),
    ) {
        let mut inputs = Inputs { config, cluster: cluster_of(&w), live: None };
        let mut engines: Vec<(SpeakerOptions, BgpAnnouncer, L2Announcer)> = NODE_NAMES
            .iter()
            .map(|n| {
                let opts = SpeakerOptions::for_node(*n);
                (opts.clone(), BgpAnnouncer::new(opts.clone()), L2Announcer::new(opts))
            })
            .collect();
        // What a daemon would hand the BGP backend: a clone sharing the route maps, which the
        // next update must not change (copy on write).
        let mut handed: Vec<Option<(BgpDesired, BgpDesired)>> = vec![None; engines.len()];
        let mut previous = Vec::new();
        for (opts, bgp, l2) in &mut engines {
            bgp.update(&inputs.config, &inputs.cluster, &ChangeSet::all());
            l2.update(&inputs.config, &inputs.cluster, inputs.live.as_ref(), &ChangeSet::all());
            previous.push((
                compute_bgp(&inputs.config, &inputs.cluster, opts),
                compute_l2(&inputs.config, &inputs.cluster, opts, inputs.live.as_ref()),
            ));
        }

        let mut pending = ChangeSet::default();
        for (op, flush) in &ops {
            pending.merge(inputs.apply(op));
            if !*flush {
                continue;
            }
            let changed = std::mem::take(&mut pending);
            for (i, (opts, bgp, l2)) in engines.iter_mut().enumerate() {
                let node = &opts.node_name;
                let bgp_changed = bgp.update(&inputs.config, &inputs.cluster, &changed);
                let l2_changed =
                    l2.update(&inputs.config, &inputs.cluster, inputs.live.as_ref(), &changed);
                let full_bgp = compute_bgp(&inputs.config, &inputs.cluster, opts);
                let full_l2 = compute_l2(&inputs.config, &inputs.cluster, opts, inputs.live.as_ref());

                prop_assert_eq!(bgp.desired(), &full_bgp.desired, "BGP desired on {} after {:?}", node, op);
                prop_assert_eq!(bgp.statuses(), &full_bgp.services, "BGP statuses on {}", node);
                prop_assert_eq!(bgp.conflicts(), &full_bgp.conflicts, "conflicts on {}", node);
                prop_assert_eq!(l2.desired(), &full_l2.desired, "L2 desired on {}", node);
                prop_assert_eq!(l2.statuses(), &full_l2.services, "L2 statuses on {}", node);

                let (prev_bgp, prev_l2) = &previous[i];
                prop_assert_eq!(bgp_changed, diff(&prev_bgp.services, &full_bgp.services),
                    "BGP changed Services on {}", node);
                prop_assert_eq!(l2_changed, diff(&prev_l2.services, &full_l2.services),
                    "L2 changed Services on {}", node);

                if let Some((held, snapshot)) = &handed[i] {
                    prop_assert_eq!(held, snapshot, "a handed-out plan changed under its holder");
                }
                handed[i] = Some((bgp.desired().clone(), full_bgp.desired.clone()));
                previous[i] = (full_bgp, full_l2);
            }
        }
    }
}

#[test]
fn a_shared_prefix_stays_until_its_last_service_goes() {
    let cfg = config(
        vec![pool("v4", "192.0.2.0/24")],
        vec![peer("r1", "198.51.100.1", 64501)],
        vec![bgp_adv("a", &["v4"])],
        vec![],
    );
    let mut c = cluster(
        vec![svc("a", &["192.0.2.1"]), svc("b", &["192.0.2.1"])],
        vec![
            slice("a", "0", vec![ep("10.0.0.1", "n1")]),
            slice("b", "0", vec![ep("10.0.0.2", "n1")]),
        ],
        vec![node("n1", &[])],
    );
    let mut bgp = BgpAnnouncer::new(SpeakerOptions::for_node("n1"));
    bgp.update(&cfg, &c, &ChangeSet::all());
    let routes = |bgp: &BgpAnnouncer| bgp.desired().peers["r1"].routes.len();
    assert_eq!(routes(&bgp), 1);

    c.remove_service(&key("a"));
    assert_eq!(
        bgp.update(&cfg, &c, &ChangeSet::service(key("a"))),
        vec![key("a")]
    );
    assert_eq!(routes(&bgp), 1, "b still asks for 192.0.2.1/32");

    c.remove_service(&key("b"));
    assert_eq!(
        bgp.update(&cfg, &c, &ChangeSet::service(key("b"))),
        vec![key("b")]
    );
    assert_eq!(routes(&bgp), 0);
    assert!(bgp.statuses().is_empty());
}
