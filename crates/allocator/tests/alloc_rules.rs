//! One test per allocation rule (`docs/allocator.md`), each named as the behaviour it pins.

#[path = "alloc_support.rs"]
mod alloc_support;

use std::net::IpAddr;

use alloc_support::*;
use ferrolb_allocator::{
    AllocError, AllocatedHow, Assignment, Event, FamilyMismatch, IpFamilyPolicy, IpRejection,
    PoolAllocator, PoolRejection, ReleaseReason, Service, ServiceState, ServiceType,
    SharingConflict, SkipReason, TrafficPolicy,
};
use ferrolb_api::model::IpFamily;
use ferrolb_api::selector::LabelSelector;

fn allocator(pools: Vec<ferrolb_api::model::Pool>) -> PoolAllocator {
    let mut a = PoolAllocator::new(None);
    assert!(a.set_config(&config(pools)).is_empty());
    a
}

fn assigned(state: &ServiceState) -> Assignment {
    match state {
        ServiceState::Assigned(a) => a.clone(),
        other => panic!("expected an assignment, got {other:?}"),
    }
}

fn failed(state: &ServiceState) -> AllocError {
    match state {
        ServiceState::Failed(e) => e.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn allocates_the_lowest_free_ip_and_returns_it_on_delete() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let d1 = a.upsert(svc("ns", "a"));
    assert_eq!(assigned(&d1.state).ips, ips(&["10.0.0.0"]));
    assert_eq!(d1.events.len(), 1);
    assert_eq!(d1.events[0].reason(), "IPAllocated");
    let d2 = a.upsert(svc("ns", "b"));
    assert_eq!(assigned(&d2.state).ips, ips(&["10.0.0.1"]));

    let gone = a.remove(&key("ns", "a"));
    assert_eq!(
        gone.events,
        vec![Event::Released {
            ips: ips(&["10.0.0.0"]),
            pool: Some("p".into()),
            reason: ReleaseReason::Deleted
        }]
    );
    let d3 = a.upsert(svc("ns", "c"));
    assert_eq!(
        assigned(&d3.state).ips,
        ips(&["10.0.0.0"]),
        "freed IP is reused"
    );
    a.audit().unwrap();
}

#[test]
fn exhausted_pool_fails_with_the_pools_tried() {
    let mut a = allocator(vec![pool("p", &["10.0.0.7/32"])]);
    assigned(&a.upsert(svc("ns", "a")).state);
    let err = failed(&a.upsert(svc("ns", "b")).state);
    assert!(matches!(&err, AllocError::Exhausted { pools, .. } if pools == &["p".to_string()]));
    assert_eq!(err.metric_label(), "exhausted");
}

#[test]
fn requested_ip_outside_every_pool_is_refused() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let mut s = svc("ns", "a");
    s.requested_ips = ips(&["192.0.2.1"]);
    let err = failed(&a.upsert(s).state);
    assert_eq!(
        err,
        AllocError::Requested(IpRejection::NotInAnyPool {
            ip: ip("192.0.2.1")
        })
    );
}

#[test]
fn requested_ip_held_by_another_service_is_reported_never_stolen() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let mut first = svc("ns", "first");
    first.requested_ips = ips(&["10.0.0.2"]);
    let d = a.upsert(first);
    assert!(matches!(
        d.events.as_slice(),
        [Event::Allocated {
            how: AllocatedHow::Requested,
            ..
        }]
    ));
    let mut second = svc("ns", "second");
    second.requested_ips = ips(&["10.0.0.2"]);
    let err = failed(&a.upsert(second).state);
    assert_eq!(
        err,
        AllocError::Requested(IpRejection::InUse {
            ip: ip("10.0.0.2"),
            holder: key("ns", "first"),
            conflict: SharingConflict::HolderDoesNotShare,
        })
    );
    assert_eq!(
        a.assignment(&key("ns", "first")).unwrap().ips,
        ips(&["10.0.0.2"])
    );
    a.audit().unwrap();
}

#[test]
fn requested_ip_must_be_in_the_annotated_pool() {
    let mut a = allocator(vec![
        pool("a", &["10.0.0.0/30"]),
        pool("b", &["10.0.1.0/30"]),
    ]);
    let mut s = svc("ns", "x");
    s.address_pool = Some("b".into());
    s.requested_ips = ips(&["10.0.0.1"]);
    let err = failed(&a.upsert(s).state);
    assert!(matches!(
        err,
        AllocError::Requested(IpRejection::PoolNotAllowed {
            reason: PoolRejection::OtherPoolRequested { .. },
            ..
        })
    ));
}

#[test]
fn address_pool_annotation_picks_that_pool_even_without_auto_assign() {
    let mut manual = pool("manual", &["10.9.0.0/30"]);
    manual.auto_assign = false;
    let mut a = allocator(vec![pool("auto", &["10.0.0.0/30"]), manual]);
    let mut s = svc("ns", "x");
    s.address_pool = Some("manual".into());
    let got = assigned(&a.upsert(s).state);
    assert_eq!(got.pool, "manual");
    assert_eq!(got.ips, ips(&["10.9.0.0"]));
    let plain = assigned(&a.upsert(svc("ns", "y")).state);
    assert_eq!(
        plain.pool, "auto",
        "autoAssign: false pools serve explicit requests only"
    );
}

#[test]
fn unknown_annotated_pool_fails() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let mut s = svc("ns", "x");
    s.address_pool = Some("nope".into());
    assert_eq!(
        failed(&a.upsert(s).state),
        AllocError::UnknownPool {
            pool: "nope".into()
        }
    );
}

#[test]
fn auto_assign_false_pool_still_serves_requested_ips() {
    let mut manual = pool("manual", &["10.9.0.0/30"]);
    manual.auto_assign = false;
    let mut a = allocator(vec![manual]);
    let err = failed(&a.upsert(svc("ns", "auto")).state);
    assert!(matches!(err, AllocError::NoPool { .. }), "{err:?}");
    let mut s = svc("ns", "req");
    s.requested_ips = ips(&["10.9.0.3"]);
    assert_eq!(assigned(&a.upsert(s).state).pool, "manual");
}

#[test]
fn pinned_pools_go_by_priority_before_general_pools() {
    let mut a = allocator(vec![
        pool("aaa-general", &["10.0.0.0/30"]),
        pinned(pool("low", &["10.2.0.0/32"]), Some(20), &["ns"]),
        pinned(pool("high", &["10.1.0.0/32"]), Some(10), &["ns"]),
        pinned(pool("unset", &["10.3.0.0/32"]), None, &["ns"]),
    ]);
    let order: Vec<String> = (0..5)
        .map(|i| assigned(&a.upsert(svc("ns", &format!("s{i}"))).state).pool)
        .collect();
    assert_eq!(
        order,
        ["high", "low", "unset", "aaa-general", "aaa-general"]
    );
}

#[test]
fn namespace_list_and_namespace_selectors_are_alternatives() {
    let mut p = pinned(pool("team", &["10.1.0.0/30"]), Some(1), &["alpha"]);
    if let Some(sa) = p.service_allocation.as_mut() {
        sa.namespace_selectors = vec![LabelSelector {
            match_labels: [("team".to_string(), "b".to_string())].into(),
            ..Default::default()
        }];
    }
    let mut a = allocator(vec![p, pool("general", &["10.0.0.0/30"])]);
    assert_eq!(assigned(&a.upsert(svc("alpha", "x")).state).pool, "team");
    let mut by_label = svc("beta", "x");
    by_label.namespace_labels = [("team".to_string(), "b".to_string())].into();
    assert_eq!(assigned(&a.upsert(by_label).state).pool, "team");
    assert_eq!(assigned(&a.upsert(svc("gamma", "x")).state).pool, "general");
}

#[test]
fn service_selectors_must_match_the_service_labels() {
    let mut p = pinned(pool("web", &["10.1.0.0/30"]), Some(1), &[]);
    if let Some(sa) = p.service_allocation.as_mut() {
        sa.service_selectors = vec![LabelSelector {
            match_labels: [("tier".to_string(), "web".to_string())].into(),
            ..Default::default()
        }];
    }
    let mut a = allocator(vec![p]);
    let mut web = svc("ns", "web");
    web.labels = [("tier".to_string(), "web".to_string())].into();
    assert_eq!(assigned(&a.upsert(web).state).pool, "web");
    let mut s = svc("ns", "db");
    s.address_pool = Some("web".into());
    assert_eq!(
        failed(&a.upsert(s).state),
        AllocError::PoolNotAllowed {
            pool: "web".into(),
            reason: PoolRejection::ServiceSelector
        }
    );
}

fn sharing(name: &str, key: &str, port: u16) -> Service {
    let mut s = svc("ns", name);
    s.sharing_key = Some(key.into());
    s.ports = vec![tcp(port)];
    s
}

#[test]
fn services_with_the_same_key_and_distinct_ports_share_one_ip() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let x = assigned(&a.upsert(sharing("x", "k", 80)).state);
    let y = assigned(&a.upsert(sharing("y", "k", 443)).state);
    assert_eq!(x.ips, y.ips);
    // Same number, other protocol: no clash either.
    let mut z = sharing("z", "k", 80);
    z.ports = vec![udp(80)];
    assert_eq!(assigned(&a.upsert(z).state).ips, x.ips);
    // The IP stays held until its last user goes.
    a.remove(&key("ns", "x"));
    a.remove(&key("ns", "y"));
    let other = assigned(&a.upsert(svc("ns", "other")).state);
    assert_ne!(other.ips, x.ips);
    a.remove(&key("ns", "z"));
    a.audit().unwrap();
    let u = &a.usage()[0];
    assert_eq!(u.in_use, 1);
}

#[test]
fn sharing_refuses_port_clash_key_mismatch_policy_and_selector_differences() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let mut owner = sharing("owner", "k", 80);
    owner.requested_ips = ips(&["10.0.0.1"]);
    assigned(&a.upsert(owner).state);

    let mut local_owner = sharing("local-owner", "l", 80);
    local_owner.requested_ips = ips(&["10.0.0.2"]);
    local_owner.external_traffic_policy = TrafficPolicy::Local;
    local_owner.selector = [("app".to_string(), "a".to_string())].into();
    assigned(&a.upsert(local_owner.clone()).state);

    let mut clash = sharing("clash", "k", 80);
    clash.requested_ips = ips(&["10.0.0.1"]);
    let mut other_key = sharing("other-key", "k2", 81);
    other_key.requested_ips = ips(&["10.0.0.1"]);
    let mut no_key = svc("ns", "no-key");
    no_key.ports = vec![tcp(82)];
    no_key.requested_ips = ips(&["10.0.0.1"]);
    let mut policy = sharing("policy", "k", 83);
    policy.requested_ips = ips(&["10.0.0.1"]);
    policy.external_traffic_policy = TrafficPolicy::Local;
    let mut selector = local_owner.clone();
    selector.key = key("ns", "selector");
    selector.ports = vec![tcp(84)];
    selector.selector = [("app".to_string(), "b".to_string())].into();
    let mut same_selector = selector.clone();
    same_selector.key = key("ns", "same-selector");
    same_selector.selector = local_owner.selector.clone();

    let table: Vec<(Service, Option<SharingConflict>)> = vec![
        (clash, Some(SharingConflict::PortClash { port: tcp(80) })),
        (
            other_key,
            Some(SharingConflict::KeyMismatch {
                ours: "k2".into(),
                theirs: "k".into(),
            }),
        ),
        (no_key, Some(SharingConflict::ServiceDoesNotShare)),
        (
            policy,
            Some(SharingConflict::TrafficPolicyMismatch {
                ours: TrafficPolicy::Local,
                theirs: TrafficPolicy::Cluster,
            }),
        ),
        (selector, Some(SharingConflict::SelectorMismatch)),
        (same_selector, None),
    ];
    for (s, want) in table {
        let name = s.key.name.clone();
        let d = a.upsert(s);
        match want {
            Some(conflict) => match failed(&d.state) {
                AllocError::Requested(IpRejection::InUse { conflict: got, .. }) => {
                    assert_eq!(got, conflict, "{name}")
                }
                other => panic!("{name}: {other:?}"),
            },
            None => assert_eq!(assigned(&d.state).ips, ips(&["10.0.0.2"]), "{name}"),
        }
    }
    a.audit().unwrap();
}

#[test]
fn automatic_allocation_with_a_clashing_port_takes_another_ip() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let x = assigned(&a.upsert(sharing("x", "k", 80)).state);
    let y = assigned(&a.upsert(sharing("y", "k", 80)).state);
    assert_ne!(x.ips, y.ips);
    let z = assigned(&a.upsert(sharing("z", "k", 443)).state);
    assert_eq!(z.ips, x.ips, "joins the lowest compatible shared IP");
}

#[test]
fn avoid_buggy_ips_skips_dot_zero_and_dot_255() {
    let mut p = pool("p", &["10.0.0.254-10.0.1.1"]);
    p.avoid_buggy_ips = true;
    let mut a = allocator(vec![p]);
    let got: Vec<_> = (0..2)
        .map(|i| assigned(&a.upsert(svc("ns", &format!("s{i}"))).state).ips[0])
        .collect();
    assert_eq!(got, ips(&["10.0.0.254", "10.0.1.1"]));
    assert!(matches!(
        failed(&a.upsert(svc("ns", "s2")).state),
        AllocError::Exhausted { .. }
    ));
    let mut req = svc("ns", "req");
    req.requested_ips = ips(&["10.0.1.0"]);
    assert!(matches!(
        failed(&a.upsert(req).state),
        AllocError::Requested(IpRejection::Buggy { .. })
    ));
    a.audit().unwrap();
}

fn dual(name: &str, policy: IpFamilyPolicy, families: &[IpFamily]) -> Service {
    let mut s = svc("ns", name);
    s.ip_family_policy = policy;
    s.ip_families = families.to_vec();
    s
}

#[test]
fn dual_stack_policies_pick_families_in_ip_families_order() {
    let mut a = allocator(vec![
        pool("v4only", &["10.0.0.0/30"]),
        pool("zdual", &["10.1.0.0/30", "fd00::/126"]),
    ]);
    let both = [IpFamily::V6, IpFamily::V4];
    let req = assigned(
        &a.upsert(dual("req", IpFamilyPolicy::RequireDualStack, &both))
            .state,
    );
    assert_eq!(req.pool, "zdual");
    assert_eq!(
        req.ips,
        ips(&["fd00::", "10.1.0.0"]),
        "primary family first"
    );
    let pref = assigned(
        &a.upsert(dual("pref", IpFamilyPolicy::PreferDualStack, &both))
            .state,
    );
    assert_eq!(pref.ips.len(), 2);
    let single = assigned(
        &a.upsert(dual("v6", IpFamilyPolicy::SingleStack, &[IpFamily::V6]))
            .state,
    );
    assert_eq!(single.ips, ips(&["fd00::2"]));
    assert_eq!(
        assigned(&a.upsert(svc("ns", "v4")).state).pool,
        "v4only",
        "name order among general pools"
    );
}

#[test]
fn prefer_dual_stack_falls_back_to_one_family_and_require_fails() {
    let mut a = allocator(vec![pool("v4only", &["10.0.0.0/30"])]);
    let both = [IpFamily::V4, IpFamily::V6];
    let pref = assigned(
        &a.upsert(dual("pref", IpFamilyPolicy::PreferDualStack, &both))
            .state,
    );
    assert_eq!(pref.ips, ips(&["10.0.0.0"]));
    let err = failed(
        &a.upsert(dual("req", IpFamilyPolicy::RequireDualStack, &both))
            .state,
    );
    assert!(matches!(err, AllocError::NoPool { .. }), "{err:?}");
    let mut two_v4 = svc("ns", "two");
    two_v4.requested_ips = ips(&["10.0.0.2", "10.0.0.3"]);
    assert_eq!(
        failed(&a.upsert(two_v4).state),
        AllocError::Requested(IpRejection::Families {
            ips: ips(&["10.0.0.2", "10.0.0.3"]),
            reason: FamilyMismatch::DuplicateFamily
        })
    );
}

#[test]
fn only_services_of_our_load_balancer_class_are_handled() {
    let mut none = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let mut classed = svc("ns", "c");
    classed.load_balancer_class = Some("other.io/lb".into());
    assert!(matches!(
        none.upsert(classed.clone()).state,
        ServiceState::NotHandled(SkipReason::OtherClass { .. })
    ));
    let mut ours = PoolAllocator::new(Some("other.io/lb".into()));
    ours.set_config(&config(vec![pool("p", &["10.0.0.0/30"])]));
    assigned(&ours.upsert(classed).state);
    assert!(matches!(
        ours.upsert(svc("ns", "plain")).state,
        ServiceState::NotHandled(SkipReason::OtherClass { class: None })
    ));
}

#[test]
fn changing_type_away_from_load_balancer_releases_the_ip() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let got = assigned(&a.upsert(svc("ns", "a")).state);
    let mut s = svc("ns", "a");
    s.service_type = ServiceType::ClusterIp;
    let d = a.upsert(s);
    assert_eq!(
        d.state,
        ServiceState::NotHandled(SkipReason::NotLoadBalancer)
    );
    assert_eq!(
        d.events,
        vec![Event::Released {
            ips: got.ips,
            pool: Some("p".into()),
            reason: ReleaseReason::NotLoadBalancer
        }]
    );
    assert_eq!(a.usage()[0].in_use, 0);
}

#[test]
fn spec_changes_that_keep_the_ip_valid_never_move_it() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    a.upsert(svc("ns", "first"));
    let before = assigned(&a.upsert(svc("ns", "x")).state);
    a.remove(&key("ns", "first"));
    let mut changed = svc("ns", "x");
    changed.labels = [("v".to_string(), "2".to_string())].into();
    changed.ports = vec![tcp(8080)];
    let d = a.upsert(changed);
    assert_eq!(
        assigned(&d.state),
        before,
        "lower free IP does not tempt it"
    );
    assert!(d.events.is_empty());
}

#[test]
fn changing_the_requested_ip_moves_the_service_and_says_why() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    assigned(&a.upsert(svc("ns", "x")).state);
    let mut s = svc("ns", "x");
    s.requested_ips = ips(&["10.0.0.5"]);
    let d = a.upsert(s);
    assert_eq!(assigned(&d.state).ips, ips(&["10.0.0.5"]));
    assert!(matches!(
        &d.events[..],
        [
            Event::Released {
                reason: ReleaseReason::NoLongerValid(IpRejection::NotRequested { .. }),
                ..
            },
            Event::Allocated { .. }
        ]
    ));
}

#[test]
fn resync_adopts_every_valid_status_ip_before_allocating_new_ones() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/31"])]);
    let newcomer = svc("ns", "newcomer");
    let mut holder = svc("ns", "holder");
    holder.status_ips = ips(&["10.0.0.0"]);
    let decisions = a.resync(vec![newcomer, holder]);
    assert_eq!(assigned(&decisions[0].state).ips, ips(&["10.0.0.1"]));
    assert_eq!(assigned(&decisions[1].state).ips, ips(&["10.0.0.0"]));
    assert!(decisions[1].events.is_empty(), "adoption is not news");
}

#[test]
fn resync_drops_invalid_status_ips_and_says_why() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/31"])]);
    let mut stale = svc("ns", "stale");
    stale.status_ips = ips(&["192.0.2.9"]);
    let d = a.resync(vec![stale]).remove(0);
    assert_eq!(assigned(&d.state).ips, ips(&["10.0.0.0"]));
    assert_eq!(
        d.events[0],
        Event::Released {
            ips: ips(&["192.0.2.9"]),
            pool: None,
            reason: ReleaseReason::NoLongerValid(IpRejection::NotInAnyPool {
                ip: ip("192.0.2.9")
            })
        }
    );
}

#[test]
fn resync_forgets_services_that_are_gone() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/31"])]);
    a.upsert(svc("ns", "old"));
    let out = a.resync(vec![svc("ns", "new")]);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].service, key("ns", "old"));
    assert_eq!(out[1].events[0].reason(), "IPReleased");
    assert_eq!(assigned(&out[0].state).ips, ips(&["10.0.0.0"]));
}

#[test]
fn config_change_moves_only_ips_that_left_the_pools() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    for n in ["a", "b", "c"] {
        a.upsert(svc("ns", n));
    }
    // Shrink the pool to .1-.7: "a" (on .0) must move, "b" and "c" must not.
    let out = a.set_config(&config(vec![pool("p", &["10.0.0.1-10.0.0.7"])]));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].service, key("ns", "a"));
    assert_eq!(assigned(&out[0].state).ips, ips(&["10.0.0.3"]));
    assert!(matches!(
        &out[0].events[..],
        [
            Event::Released {
                reason: ReleaseReason::NoLongerValid(IpRejection::NotInAnyPool { .. }),
                ..
            },
            Event::Allocated { .. }
        ]
    ));
    assert_eq!(
        a.assignment(&key("ns", "b")).unwrap().ips,
        ips(&["10.0.0.1"])
    );
    a.audit().unwrap();
}

#[test]
fn config_change_gives_waiting_services_an_ip() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/32"])]);
    a.upsert(svc("ns", "a"));
    failed(&a.upsert(svc("ns", "b")).state);
    let out = a.set_config(&config(vec![pool("p", &["10.0.0.0/31"])]));
    assert_eq!(out.len(), 1);
    assert_eq!(assigned(&out[0].state).ips, ips(&["10.0.0.1"]));
    assert!(a
        .set_config(&config(vec![pool("p", &["10.0.0.0/31"])]))
        .is_empty());
}

#[test]
fn renamed_pool_keeps_the_ips_and_reports_the_new_pool() {
    let mut a = allocator(vec![pool("old", &["10.0.0.0/30"])]);
    let before = assigned(&a.upsert(svc("ns", "a")).state);
    let out = a.set_config(&config(vec![pool("new", &["10.0.0.0/30"])]));
    assert_eq!(out.len(), 1);
    let after = assigned(&out[0].state);
    assert_eq!((after.ips, after.pool.as_str()), (before.ips, "new"));
    assert!(out[0].events.is_empty());
}

#[test]
fn ipv6_allocation_from_a_112_is_lowest_first() {
    let mut a = allocator(vec![pool("v6", &["fd00::/112"])]);
    for i in 0..3u16 {
        let mut s = dual(
            &format!("s{i}"),
            IpFamilyPolicy::SingleStack,
            &[IpFamily::V6],
        );
        s.key = key("ns", &format!("s{i}"));
        let got = assigned(&a.upsert(s).state);
        assert_eq!(got.ips, vec![ip(&format!("fd00::{i:x}"))]);
    }
    let u = &a.usage()[0];
    assert_eq!((u.in_use, u.total), (3, 65536));
}

// MetalLB's exact choices (internal/allocator/allocator.go), so that a MetalLB user switching to
// FerroLB gets the same addresses.

#[test]
fn addresses_go_entry_by_entry_in_spec_order_lowest_first_inside_an_entry() {
    // The first entry written is numerically the higher one.
    let mut a = allocator(vec![pool("p", &["10.0.9.0/31", "10.0.1.0-10.0.1.1"])]);
    let got: Vec<IpAddr> = (0..4)
        .map(|i| assigned(&a.upsert(svc("ns", &format!("s{i}"))).state).ips[0])
        .collect();
    assert_eq!(got, ips(&["10.0.9.0", "10.0.9.1", "10.0.1.0", "10.0.1.1"]));
    // A freed address of the first entry goes out before any of a later entry.
    a.remove(&key("ns", "s1"));
    a.remove(&key("ns", "s2"));
    let next = assigned(&a.upsert(svc("ns", "again")).state);
    assert_eq!(next.ips, ips(&["10.0.9.1"]));
    a.audit().unwrap();
}

#[test]
fn entry_order_holds_per_family_for_dual_stack() {
    let mut a = allocator(vec![pool(
        "p",
        &["fd00:9::/127", "10.0.9.0/32", "fd00:1::/127", "10.0.1.0/32"],
    )]);
    let both = [IpFamily::V4, IpFamily::V6];
    let d = assigned(
        &a.upsert(dual("d", IpFamilyPolicy::RequireDualStack, &both))
            .state,
    );
    assert_eq!(d.ips, ips(&["10.0.9.0", "fd00:9::"]));
}

#[test]
fn priority_zero_counts_as_unset_and_comes_after_every_pool_with_a_priority() {
    let mut a = allocator(vec![
        pinned(pool("zero", &["10.0.0.0/32"]), Some(0), &["ns"]),
        pinned(pool("ten", &["10.1.0.0/32"]), Some(10), &["ns"]),
        pinned(pool("none", &["10.2.0.0/32"]), None, &["ns"]),
        pool("general", &["10.3.0.0/32"]),
    ]);
    let order: Vec<String> = (0..4)
        .map(|i| assigned(&a.upsert(svc("ns", &format!("s{i}"))).state).pool)
        .collect();
    // 0 and unset tie (MetalLB: no defined order between them; here by name).
    assert_eq!(order, ["ten", "none", "zero", "general"]);
}

#[test]
fn prefer_dual_stack_service_holding_one_family_gains_the_other_when_its_pool_gets_it() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/30"])]);
    let both = [IpFamily::V4, IpFamily::V6];
    let pref = dual("pref", IpFamilyPolicy::PreferDualStack, &both);
    let single = dual("single", IpFamilyPolicy::SingleStack, &[IpFamily::V4]);
    let mut requested = dual("requested", IpFamilyPolicy::PreferDualStack, &both);
    requested.requested_ips = ips(&["10.0.0.3"]);
    assert_eq!(
        assigned(&a.upsert(pref.clone()).state).ips,
        ips(&["10.0.0.0"])
    );
    assigned(&a.upsert(single).state);
    assigned(&a.upsert(requested).state);

    // The pool gains an IPv6 range: the Service keeps its IPv4 address and adds an IPv6 one.
    let out = a.set_config(&config(vec![pool("p", &["10.0.0.0/30", "fd00::/126"])]));
    assert_eq!(
        out.len(),
        1,
        "only the PreferDualStack Service changes: {out:?}"
    );
    assert_eq!(out[0].service, key("ns", "pref"));
    assert_eq!(
        assigned(&out[0].state),
        Assignment {
            ips: ips(&["10.0.0.0", "fd00::"]),
            pool: "p".into()
        }
    );
    assert_eq!(
        out[0].events,
        vec![Event::Allocated {
            ips: ips(&["fd00::"]),
            pool: "p".into(),
            how: AllocatedHow::AdditionalFamily
        }]
    );
    assert_eq!(out[0].events[0].reason(), "IPAllocated");
    // Nothing more to gain: an update leaves it as it is.
    let again = a.upsert(pref);
    assert_eq!(assigned(&again.state).ips, ips(&["10.0.0.0", "fd00::"]));
    assert!(again.events.is_empty());
    a.audit().unwrap();

    // After a restart, an adopted single-family status gains the other family the same way.
    let mut b = allocator(vec![pool("p", &["10.0.0.0/30", "fd00::/126"])]);
    let mut restarted = dual("pref", IpFamilyPolicy::PreferDualStack, &both);
    restarted.status_ips = ips(&["10.0.0.2"]);
    let d = b.resync(vec![restarted]).remove(0);
    assert_eq!(assigned(&d.state).ips, ips(&["10.0.0.2", "fd00::"]));
    b.audit().unwrap();
}

#[test]
fn a_sharing_service_takes_the_lowest_usable_address_not_the_shared_one() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    let mut x = sharing("x", "k", 80);
    x.requested_ips = ips(&["10.0.0.3"]);
    assigned(&a.upsert(x).state);
    // 10.0.0.0 is free and lower than the shared 10.0.0.3: MetalLB takes 10.0.0.0.
    let y = assigned(&a.upsert(sharing("y", "k", 443)).state);
    assert_eq!(y.ips, ips(&["10.0.0.0"]));
    // A joinable shared IP below every free one is the lowest usable address: taken.
    for i in 1..3 {
        assigned(&a.upsert(svc("ns", &format!("plain{i}"))).state);
    }
    let z = assigned(&a.upsert(sharing("z", "k", 8080)).state);
    assert_eq!(z.ips, ips(&["10.0.0.0"]));
    a.audit().unwrap();
}

#[test]
fn prefer_shared_ip_opt_in_joins_a_shared_ip_before_a_free_one() {
    let mut a = allocator(vec![pool("p", &["10.0.0.0/29"])]);
    let mut x = sharing("x", "k", 80);
    x.requested_ips = ips(&["10.0.0.3"]);
    assigned(&a.upsert(x).state);
    let mut y = sharing("y", "k", 443);
    y.prefer_shared_ip = true;
    assert_eq!(assigned(&a.upsert(y).state).ips, ips(&["10.0.0.3"]));
    // Still only where the sharing rules allow: a port clash takes the lowest free address.
    let mut clash = sharing("clash", "k", 80);
    clash.prefer_shared_ip = true;
    assert_eq!(assigned(&a.upsert(clash).state).ips, ips(&["10.0.0.0"]));
    a.audit().unwrap();
}

#[test]
fn prefer_dual_stack_takes_one_family_from_a_pinned_pool_before_both_from_a_general_one() {
    let mut a = allocator(vec![
        pinned(pool("pinned-v4", &["10.1.0.0/30"]), Some(1), &["ns"]),
        pool("general-dual", &["10.0.0.0/30", "fd00::/126"]),
    ]);
    let both = [IpFamily::V4, IpFamily::V6];
    let pref = assigned(
        &a.upsert(dual("pref", IpFamilyPolicy::PreferDualStack, &both))
            .state,
    );
    assert_eq!(
        pref,
        Assignment {
            ips: ips(&["10.1.0.0"]),
            pool: "pinned-v4".into()
        }
    );
    // RequireDualStack cannot use the pinned pool: the general stage serves it.
    let req = assigned(
        &a.upsert(dual("req", IpFamilyPolicy::RequireDualStack, &both))
            .state,
    );
    assert_eq!(req.pool, "general-dual");
}
