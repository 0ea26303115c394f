//! Self-tests of the e2e harness against the real routers, without FerroLB's
//! speaker: ExaBGP announces, FRR / BIRD2 / GoBGP receive, and the harness
//! must read back exactly what was announced. Each test skips loudly without
//! root or a daemon.
//!
//! Topology of most tests (one pair of namespaces per test):
//!
//! ```text
//!   ns "exa" (ExaBGP, AS 65000 or 65001)        ns "rtr" (receiver, AS 65000, passive)
//!     eth0 192.0.2.1/24 fd00:db8::1/64  <-veth->  eth0 192.0.2.2/24 fd00:db8::2/64
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use ferrolb_e2e::{
    assert_holds, ip, list_flb_namespaces, net, require_root_and_routers, wait_until, Af,
    Announcement, Neighbor, Netns, ReceivedRoute, Router, RouterConfig, RouterKind, SessionState,
    Switch, CONVERGE, FRR_RUN_DIR, UP,
};

const EXA4: &str = "192.0.2.1";
const RTR4: &str = "192.0.2.2";
const EXA6: &str = "fd00:db8::1";
const RTR6: &str = "fd00:db8::2";
const RTR_AS: u32 = 65000;

struct Lab {
    // Routers first: they stop before their namespaces go.
    exa: Box<dyn Router>,
    rtr: Box<dyn Router>,
    _exa_ns: Netns,
    _rtr_ns: Netns,
}

fn pair() -> (Netns, Netns) {
    Netns::pair("exa", "rtr").expect("namespaces")
}

/// ExaBGP (AS `exa_as`) with one IPv4 session (IPv4 routes) and one IPv6
/// session (IPv6 routes) to a passive receiver of `kind` in AS 65000.
fn lab(kind: RouterKind, exa_as: u32, md5: (Option<&str>, Option<&str>)) -> Lab {
    let (exa_ns, rtr_ns) = pair();
    let with_md5 = |n: Neighbor, pw: Option<&str>| match pw {
        Some(pw) => n.md5(pw),
        None => n,
    };
    let rtr_cfg = RouterConfig::new(RTR4.parse().expect("id"), RTR_AS)
        .neighbor(with_md5(Neighbor::new(ip(EXA4), exa_as).passive(), md5.1))
        .neighbor(with_md5(Neighbor::new(ip(EXA6), exa_as).passive(), md5.1));
    let rtr = kind.start(&rtr_ns, rtr_cfg).expect("receiver starts");
    let mut exa_cfg = RouterConfig::new(EXA4.parse().expect("id"), exa_as)
        .neighbor(with_md5(
            Neighbor::new(ip(RTR4), RTR_AS).local_address(ip(EXA4)),
            md5.0,
        ))
        .neighbor(with_md5(
            Neighbor::new(ip(RTR6), RTR_AS).local_address(ip(EXA6)),
            md5.0,
        ));
    exa_cfg.announce = announcements(exa_as == RTR_AS);
    let exa = RouterKind::ExaBgp
        .start(&exa_ns, exa_cfg)
        .expect("exabgp starts");
    Lab {
        exa,
        rtr,
        _exa_ns: exa_ns,
        _rtr_ns: rtr_ns,
    }
}

fn announcements(ibgp: bool) -> Vec<Announcement> {
    let lp = |v| ibgp.then_some(v);
    let mut a1 = Announcement::new(net("198.51.100.1/32"));
    a1.communities = vec!["65000:1".into(), "65000:2".into()];
    a1.large_communities = vec!["65000:1:2".into()];
    a1.local_pref = lp(200);
    a1.med = Some(10);
    let mut a2 = Announcement::new(net("198.51.100.2/32"));
    a2.med = Some(20);
    let mut b1 = Announcement::new(net("2001:db8:ff::1/128"));
    b1.communities = vec!["65000:7".into()];
    b1.large_communities = vec!["65000:3:4".into()];
    b1.local_pref = lp(300);
    b1.med = Some(30);
    let b2 = Announcement::new(net("2001:db8:ff::2/128"));
    vec![a1, a2, b1, b2]
}

fn prefixes(routes: &[ReceivedRoute]) -> BTreeSet<String> {
    routes.iter().map(|r| r.prefix.to_string()).collect()
}

fn expect_route<'a>(routes: &'a [ReceivedRoute], p: &str) -> &'a ReceivedRoute {
    routes
        .iter()
        .find(|r| r.prefix.to_string() == p)
        .unwrap_or_else(|| panic!("{p} missing from {routes:#?}"))
}

/// The whole announce / read back / withdraw cycle against one receiver.
fn receiver_reads_back_exactly_what_exabgp_announced(kind: RouterKind, ibgp: bool) {
    if !require_root_and_routers(&[kind, RouterKind::ExaBgp]) {
        return;
    }
    let exa_as = if ibgp { RTR_AS } else { 65001 };
    let mut lab = lab(kind, exa_as, (None, None));
    lab.rtr.wait_established(ip(EXA4), UP);
    lab.rtr.wait_established(ip(EXA6), UP);
    assert_eq!(
        lab.exa.session_state(ip(RTR4)).expect("exabgp state"),
        SessionState::Established
    );

    let want4: BTreeSet<String> = ["198.51.100.1/32", "198.51.100.2/32"]
        .map(String::from)
        .into();
    let want6: BTreeSet<String> = ["2001:db8:ff::1/128", "2001:db8:ff::2/128"]
        .map(String::from)
        .into();
    let v4 = lab
        .rtr
        .wait_routes(Af::V4, CONVERGE, "both /32s", &mut |r| prefixes(r) == want4);
    let v6 = lab
        .rtr
        .wait_routes(Af::V6, CONVERGE, "both /128s", &mut |r| {
            prefixes(r) == want6
        });

    assert_eq!(lab.rtr.paths_received(Af::V4).expect("count"), 2);
    assert_eq!(lab.rtr.paths_received(Af::V6).expect("count"), 2);

    let as_path: Vec<u32> = if ibgp { vec![] } else { vec![65001] };
    let r1 = expect_route(&v4, "198.51.100.1/32");
    assert_eq!(r1.next_hops, vec![ip(EXA4)], "{r1:?}");
    assert_eq!(r1.as_path, as_path);
    assert_eq!(r1.communities, vec!["65000:1", "65000:2"]);
    assert_eq!(r1.large_communities, vec!["65000:1:2"]);
    assert_eq!(r1.med, Some(10));
    if ibgp {
        assert_eq!(r1.local_pref, Some(200));
    }
    assert!(!r1.stale);
    let r2 = expect_route(&v4, "198.51.100.2/32");
    assert_eq!(r2.med, Some(20));
    assert!(r2.communities.is_empty() && r2.large_communities.is_empty());

    let s1 = expect_route(&v6, "2001:db8:ff::1/128");
    assert_eq!(s1.next_hops, vec![ip(EXA6)], "{s1:?}");
    assert_eq!(s1.as_path, as_path);
    assert_eq!(s1.communities, vec!["65000:7"]);
    assert_eq!(s1.large_communities, vec!["65000:3:4"]);
    assert_eq!(s1.med, Some(30));
    if ibgp {
        assert_eq!(s1.local_pref, Some(300));
    }

    lab.exa
        .withdraw(&[net("198.51.100.1/32"), net("2001:db8:ff::2/128")])
        .expect("withdraw");
    lab.rtr
        .wait_routes(Af::V4, CONVERGE, "198.51.100.1/32 withdrawn", &mut |r| {
            prefixes(r) == ["198.51.100.2/32".to_owned()].into()
        });
    lab.rtr
        .wait_routes(Af::V6, CONVERGE, "2001:db8:ff::2/128 withdrawn", &mut |r| {
            prefixes(r) == ["2001:db8:ff::1/128".to_owned()].into()
        });
}

ferrolb_e2e::tests_calling!(receiver_reads_back_exactly_what_exabgp_announced:
    frr_ibgp_receives_exactly_the_announced_routes_and_attributes_and_the_withdraw(RouterKind::Frr, true);
    bird_ibgp_receives_exactly_the_announced_routes_and_attributes_and_the_withdraw(RouterKind::Bird, true);
    gobgp_ibgp_receives_exactly_the_announced_routes_and_attributes_and_the_withdraw(RouterKind::GoBgp, true);
    frr_ebgp_receives_the_routes_with_the_announcer_as_in_the_path(RouterKind::Frr, false);
);

/// MD5 on both sides: up. Wrong password: the receiver's kernel drops the
/// unsigned or badly signed SYNs (RFC 2385 §2), so the session never leaves
/// Idle/Active while ExaBGP keeps retrying.
fn md5_match_is_up_and_mismatch_stays_down(kind: RouterKind) {
    if !require_root_and_routers(&[kind, RouterKind::ExaBgp]) {
        return;
    }
    {
        let lab = lab(kind, 65001, (Some("flb-secret"), Some("flb-secret")));
        lab.rtr.wait_established(ip(EXA4), UP);
    }
    let lab = lab(kind, 65001, (Some("wrong"), Some("flb-secret")));
    assert_holds(
        Duration::from_secs(4),
        "no session with a wrong MD5 password",
        || lab.rtr.session_state(ip(EXA4)),
        |s| !matches!(s, Ok(SessionState::Established)),
    );
    assert_ne!(
        lab.exa.session_state(ip(RTR4)).expect("state"),
        SessionState::Established
    );
}

ferrolb_e2e::tests_calling!(md5_match_is_up_and_mismatch_stays_down:
    frr_md5_match_is_up_and_mismatch_stays_down(RouterKind::Frr);
    bird_md5_match_is_up_and_mismatch_stays_down(RouterKind::Bird);
    gobgp_md5_match_is_up_and_mismatch_stays_down(RouterKind::GoBgp);
);

/// ExaBGP advertises graceful restart; killed without a NOTIFICATION, FRR (a
/// GR helper, RFC 4724 §4.2) keeps its routes marked stale until it is back.
#[test]
fn frr_keeps_a_killed_gr_speakers_routes_as_stale_until_it_returns() {
    if !require_root_and_routers(&[RouterKind::Frr, RouterKind::ExaBgp]) {
        return;
    }
    let mut lab = lab(RouterKind::Frr, RTR_AS, (None, None));
    lab.rtr.wait_established(ip(EXA4), UP);
    lab.rtr
        .wait_routes(Af::V4, CONVERGE, "both /32s", &mut |r| r.len() == 2);
    lab.exa.kill();
    let stale = lab
        .rtr
        .wait_routes(Af::V4, CONVERGE, "routes kept as stale", &mut |r| {
            r.len() == 2 && r.iter().all(|r| r.stale)
        });
    assert_eq!(stale.len(), 2);
    lab.exa.restart().expect("exabgp restarts");
    lab.rtr.wait_established(ip(EXA4), UP);
    lab.rtr
        .wait_routes(Af::V4, CONVERGE, "routes fresh again", &mut |r| {
            r.len() == 2 && r.iter().all(|r| !r.stale)
        });
}

/// A frozen router stops sending KEEPALIVEs: the peer's hold timer (3 s)
/// expires; thawed, the session comes back and the routes with it. Then a
/// restart: the peer reconnects and re-announces.
fn frozen_router_times_out_thaws_and_restarts(kind: RouterKind) {
    if !require_root_and_routers(&[kind, RouterKind::ExaBgp]) {
        return;
    }
    let (exa_ns, rtr_ns) = pair();
    let mut rtr = kind
        .start(
            &rtr_ns,
            RouterConfig::new(RTR4.parse().expect("id"), RTR_AS)
                .neighbor(Neighbor::new(ip(EXA4), 65001).passive().hold_time(3)),
        )
        .expect("router");
    let mut cfg = RouterConfig::new(EXA4.parse().expect("id"), 65001).neighbor(
        Neighbor::new(ip(RTR4), RTR_AS)
            .local_address(ip(EXA4))
            .hold_time(3),
    );
    cfg.announce = vec![Announcement::new(net("198.51.100.9/32"))];
    let exa = RouterKind::ExaBgp.start(&exa_ns, cfg).expect("exabgp");
    rtr.wait_established(ip(EXA4), UP);
    rtr.wait_routes(Af::V4, CONVERGE, "route", &mut |r| r.len() == 1);
    rtr.freeze().expect("freeze");
    let _down = wait_until(
        Duration::from_secs(15),
        "ExaBGP's hold timer expires",
        || exa.session_state(ip(RTR4)),
        |s| !matches!(s, Ok(SessionState::Established)),
    );
    assert!(exa.log().contains("192.0.2.2"), "ExaBGP's log is readable");
    rtr.thaw().expect("thaw");
    rtr.wait_established(ip(EXA4), UP);
    rtr.wait_routes(Af::V4, CONVERGE, "route back after thaw", &mut |r| {
        r.len() == 1
    });
    let old_pid = rtr.pid();
    rtr.restart().expect("restart");
    assert_ne!(rtr.pid(), old_pid, "a new process");
    rtr.wait_established(ip(EXA4), UP);
    rtr.wait_routes(Af::V4, CONVERGE, "route back after restart", &mut |r| {
        r.len() == 1
    });
}

ferrolb_e2e::tests_calling!(frozen_router_times_out_thaws_and_restarts:
    frozen_frr_lets_the_peers_hold_timer_expire_recovers_and_restarts(RouterKind::Frr);
    frozen_bird_lets_the_peers_hold_timer_expire_recovers_and_restarts(RouterKind::Bird);
    frozen_gobgp_lets_the_peers_hold_timer_expire_recovers_and_restarts(RouterKind::GoBgp);
);

/// Two announcers of one /32 in different ASes: FRR with `maximum-paths`
/// and `multipath-relax` holds it with both next hops (ECMP).
#[test]
fn frr_holds_a_prefix_from_two_neighbors_with_two_next_hops() {
    if !require_root_and_routers(&[RouterKind::Frr, RouterKind::ExaBgp]) {
        return;
    }
    let rtr_ns = Netns::new("rtr").expect("netns");
    let a_ns = Netns::new("a").expect("netns");
    let b_ns = Netns::new("b").expect("netns");
    a_ns.veth(
        "eth0",
        &["192.0.2.1/24"],
        &rtr_ns,
        "to-a",
        &["192.0.2.2/24"],
    )
    .expect("veth a");
    b_ns.veth(
        "eth0",
        &["198.51.100.1/24"],
        &rtr_ns,
        "to-b",
        &["198.51.100.2/24"],
    )
    .expect("veth b");
    let rtr = RouterKind::Frr
        .start(
            &rtr_ns,
            RouterConfig::new(RTR4.parse().expect("id"), RTR_AS)
                .neighbor(Neighbor::new(ip("192.0.2.1"), 65001).passive())
                .neighbor(Neighbor::new(ip("198.51.100.1"), 65002).passive()),
        )
        .expect("frr");
    let vip = net("203.0.113.10/32");
    let announcer = |ns: &Netns, me: &str, asn: u32, peer: &str| {
        let mut cfg = RouterConfig::new(me.parse().expect("id"), asn)
            .neighbor(Neighbor::new(ip(peer), RTR_AS).local_address(ip(me)));
        cfg.announce = vec![Announcement::new(vip)];
        RouterKind::ExaBgp.start(ns, cfg).expect("exabgp")
    };
    let _a = announcer(&a_ns, "192.0.2.1", 65001, "192.0.2.2");
    let _b = announcer(&b_ns, "198.51.100.1", 65002, "198.51.100.2");
    let routes = rtr.wait_routes(Af::V4, CONVERGE, "two next hops", &mut |r| {
        r.first().is_some_and(|r| r.next_hops.len() == 2)
    });
    assert_eq!(
        routes[0].next_hops,
        vec![ip("192.0.2.1"), ip("198.51.100.1")]
    );
}

/// Three nodes on one bridge reach each other; MACs are readable.
#[test]
fn switch_connects_nodes_on_one_l2_segment() {
    if !ferrolb_e2e::require_root_and(&["ping"]) {
        return;
    }
    let mut sw = Switch::new().expect("switch");
    let nodes: Vec<Netns> = (0..3)
        .map(|i| {
            let ns = Netns::new(&format!("node{i}")).expect("netns");
            let v4 = format!("192.0.2.{}/24", i + 1);
            let v6 = format!("fd00:db8::{}/64", i + 1);
            sw.attach(&ns, "eth0", &[&v4, &v6]).expect("attach");
            ns
        })
        .collect();
    assert!(nodes[0].ping(ip("192.0.2.2")));
    assert!(nodes[0].ping(ip("192.0.2.3")));
    let mac2 = nodes[2].mac("eth0").expect("mac");
    assert_eq!(
        nodes[0].neighbour_mac(ip("192.0.2.3")).expect("neigh"),
        Some(mac2.clone())
    );
    if ferrolb_e2e::program_exists("arping") {
        let replies = nodes[0]
            .arping("eth0", "192.0.2.3".parse().expect("v4"), 1)
            .expect("arping");
        assert_eq!(replies, vec![mac2.clone()]);
        let none = nodes[0]
            .arping("eth0", "192.0.2.99".parse().expect("v4"), 1)
            .expect("arping");
        assert!(none.is_empty(), "{none:?}");
    }
    if ferrolb_e2e::program_exists("ndisc6") {
        let replies = nodes[0]
            .ndisc("eth0", "fd00:db8::3".parse().expect("v6"))
            .expect("ndisc6");
        assert_eq!(replies, vec![mac2]);
    }
    assert!(nodes[2].ping(ip("fd00:db8::1")));
    let macs: BTreeSet<String> = nodes.iter().map(|n| n.mac("eth0").expect("mac")).collect();
    assert_eq!(macs.len(), 3, "distinct MACs: {macs:?}");
}

/// Dropping the lab removes every namespace, process and FRR runtime dir it
/// made, also when a test panics with routers running.
#[test]
fn cleanup_removes_namespaces_processes_and_frr_dirs_also_on_panic() {
    if !require_root_and_routers(&[RouterKind::Frr, RouterKind::Bird]) {
        return;
    }
    let (names, pids) = {
        let mut sw = Switch::new().expect("switch");
        let ns = Netns::new("clean").expect("netns");
        sw.attach(&ns, "eth0", &["192.0.2.1/24"]).expect("attach");
        let frr = RouterKind::Frr
            .start(&ns, RouterConfig::new(RTR4.parse().expect("id"), RTR_AS))
            .expect("frr");
        // A stray process the test forgot about: Netns must end it.
        let stray = ns.spawn("sleep", &["sleep", "600"]).expect("sleep");
        let pids = vec![frr.pid().expect("bgpd pid"), stray.pid()];
        std::mem::forget(stray);
        assert!(std::path::Path::new(FRR_RUN_DIR).join(ns.name()).exists());
        (
            vec![ns.name().to_owned(), sw.netns().name().to_owned()],
            pids,
        )
    };
    let left = list_flb_namespaces();
    for n in &names {
        assert!(!left.contains(n), "{n} still exists: {left:?}");
        assert!(!std::path::Path::new(FRR_RUN_DIR).join(n).exists());
    }
    for p in pids {
        assert!(
            !ferrolb_e2e::pid_exists(p)
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "pid {p} survived"
        );
    }

    let name = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let ns = Netns::new("panic").expect("netns");
        let _bird = RouterKind::Bird
            .start(&ns, RouterConfig::new(RTR4.parse().expect("id"), RTR_AS))
            .expect("bird");
        *name.lock().expect("lock") = ns.name().to_owned();
        panic!("test failure inside the lab");
    });
    assert!(result.is_err());
    let name = name.into_inner().expect("lock");
    assert!(!name.is_empty());
    assert!(!list_flb_namespaces().contains(&name), "{name} left behind");
    // A panicking lab keeps its scratch dir for debugging; remove it here.
    for e in std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .flatten()
    {
        if e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{name}."))
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// ExaBGP as a passive receiver (eBGP, IPv4) records what another ExaBGP
/// announces, with attributes, and forgets the withdrawn prefix.
#[test]
fn exabgp_passive_receiver_records_routes_and_withdraws() {
    if !require_root_and_routers(&[RouterKind::ExaBgp]) {
        return;
    }
    let (exa_ns, rtr_ns) = pair();
    let rtr = RouterKind::ExaBgp
        .start(
            &rtr_ns,
            RouterConfig::new(RTR4.parse().expect("id"), RTR_AS).neighbor(
                Neighbor::new(ip(EXA4), 65001)
                    .passive()
                    .local_address(ip(RTR4)),
            ),
        )
        .expect("exabgp receiver");
    let mut cfg = RouterConfig::new(EXA4.parse().expect("id"), 65001)
        .neighbor(Neighbor::new(ip(RTR4), RTR_AS).local_address(ip(EXA4)));
    cfg.announce = announcements(false);
    let mut exa = RouterKind::ExaBgp.start(&exa_ns, cfg).expect("exabgp");
    rtr.wait_established(ip(EXA4), UP);
    let want: BTreeSet<String> = ["198.51.100.1/32", "198.51.100.2/32"]
        .map(String::from)
        .into();
    let v4 = rtr.wait_routes(Af::V4, CONVERGE, "both /32s", &mut |r| prefixes(r) == want);
    let r1 = expect_route(&v4, "198.51.100.1/32");
    assert_eq!(r1.next_hops, vec![ip(EXA4)]);
    assert_eq!(r1.as_path, vec![65001]);
    assert_eq!(r1.communities, vec!["65000:1", "65000:2"]);
    assert_eq!(r1.large_communities, vec!["65000:1:2"]);
    assert_eq!(r1.med, Some(10));
    exa.withdraw(&[net("198.51.100.2/32")]).expect("withdraw");
    rtr.wait_routes(Af::V4, CONVERGE, "198.51.100.2/32 withdrawn", &mut |r| {
        prefixes(r) == ["198.51.100.1/32".to_owned()].into()
    });
}
