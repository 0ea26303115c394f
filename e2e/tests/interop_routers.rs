//! `ferrolb-bgp announce` (our session layer) against FRR, BIRD2 and GoBGP in network
//! namespaces: what the router's own view shows must be exactly what we sent.
//!
//! ```text
//!   ns "spk" (ferrolb-bgp announce, AS 65001 eBGP / 65000 iBGP)   ns "rtr" (router, AS 65000)
//!     eth0 192.0.2.1/24 fd00:db8::1/64            <-veth->          eth0 192.0.2.2/24 fd00:db8::2/64
//! ```
//!
//! The router is passive (GoBGP waits seconds before connecting; we connect at once). Each test
//! skips loudly without root, the daemons or the `ferrolb-bgp` binary (build it first:
//! `cargo build -p ferrolb-bgp`, nextest over the workspace does).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{
    assert_holds, ip, net, require_root_and_routers, wait_until, Af, Neighbor, Netns, Router,
    RouterConfig, RouterKind, SessionState, CONVERGE, UP,
};
use ipnet::IpNet;

const SPK4: &str = "192.0.2.1";
const RTR4: &str = "192.0.2.2";
const SPK6: &str = "fd00:db8::1";
const RTR_AS: u32 = 65000;

struct Lab {
    rtr: Box<dyn Router>,
    spk: Option<ferrolb_e2e::Daemon>,
    spk_ns: Netns,
    _rtr_ns: Netns,
    bin: FlbCommand,
    local_as: u32,
    prefixes: PathBuf,
    extra: Vec<String>,
}

impl Lab {
    fn start(
        kind: RouterKind,
        local_as: u32,
        md5: (Option<&str>, Option<&str>),
        hold: u16,
    ) -> Option<Lab> {
        if !require_root_and_routers(&[kind]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-bgp")?;
        let (spk_ns, rtr_ns) = Netns::pair("spk", "rtr").expect("namespaces");
        let mut n = Neighbor::new(ip(SPK4), local_as)
            .passive()
            .families(&[Af::V4, Af::V6])
            .hold_time(hold);
        if let Some(pw) = md5.1 {
            n = n.md5(pw);
        }
        if kind == RouterKind::ExaBgp {
            // The harness's ExaBGP needs a local address per neighbor; IPv4 unicast only.
            n = n.local_address(ip(RTR4)).families(&[Af::V4]);
        }
        let rtr = kind
            .start(
                &rtr_ns,
                RouterConfig::new(RTR4.parse().expect("id"), RTR_AS).neighbor(n),
            )
            .expect("router starts");
        let prefixes = spk_ns.dir().join("prefixes.txt");
        let mut extra = vec!["--hold-time".to_owned(), hold.to_string()];
        if let Some(pw) = md5.0 {
            extra.extend(["--md5-password".to_owned(), pw.to_owned()]);
        }
        Some(Lab {
            rtr,
            spk: None,
            spk_ns,
            _rtr_ns: rtr_ns,
            bin,
            local_as,
            prefixes,
            extra,
        })
    }

    fn write_prefixes(&self, text: &str) {
        std::fs::write(&self.prefixes, text).expect("write prefixes");
    }

    fn announce(&mut self, more: &[&str]) {
        let cmd = self
            .bin
            .clone()
            .arg("announce")
            .args(["--peer", RTR4, "--local-as", &self.local_as.to_string()])
            .args(["--peer-as", "65000", "--local-address", SPK4, "--ipv6"])
            .arg("--prefixes")
            .arg(&self.prefixes)
            .args(&self.extra)
            .args(more);
        self.spk = Some(
            cmd.spawn_in(&self.spk_ns, "announce")
                .expect("announce starts"),
        );
    }

    fn log(&self) -> String {
        self.spk.as_ref().map(|d| d.log()).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.spk.as_ref().expect("announce running").pid();
        ferrolb_e2e::signal(pid, sig).expect("signal");
    }

    fn routes(&self) -> BTreeSet<IpNet> {
        let mut all: BTreeSet<IpNet> = self
            .rtr
            .routes(Af::V4)
            .expect("v4 routes")
            .into_iter()
            .map(|r| r.prefix)
            .collect();
        all.extend(
            self.rtr
                .routes(Af::V6)
                .expect("v6 routes")
                .into_iter()
                .map(|r| r.prefix),
        );
        all
    }
}

const TABLE: &str =
    "198.51.100.1/32 community=65000:1 large-community=65000:1:2 med=10 local-pref=200\n\
                     198.51.100.2/32\n\
                     2001:db8:ff::1/128 next-hop=fd00:db8::1 community=65000:7\n";

fn table() -> BTreeSet<IpNet> {
    ["198.51.100.1/32", "198.51.100.2/32", "2001:db8:ff::1/128"]
        .into_iter()
        .map(net)
        .collect()
}

fn routes_and_withdraw(kind: RouterKind, local_as: u32) {
    let Some(mut lab) = Lab::start(kind, local_as, (None, None), 90) else {
        return;
    };
    lab.write_prefixes(TABLE);
    lab.announce(&[]);
    lab.rtr.wait_established(ip(SPK4), UP);
    let got = wait_until(
        CONVERGE,
        "the router holds exactly our prefixes",
        || lab.routes(),
        |r| *r == table(),
    );
    assert_eq!(got, table(), "log:\n{}", lab.log());
    // Best-path selection may trail the route's arrival: wait for a selected next hop.
    let r1 = wait_until(
        CONVERGE,
        "198.51.100.1/32 selected with a next hop",
        || lab.rtr.route(net("198.51.100.1/32")).expect("query"),
        |r| r.as_ref().is_some_and(|r| !r.next_hops.is_empty()),
    )
    .expect("route");
    assert_eq!(r1.communities, ["65000:1"]);
    assert_eq!(r1.large_communities, ["65000:1:2"]);
    assert_eq!(r1.med, Some(10));
    assert_eq!(r1.next_hops, vec![ip(SPK4)]);
    if local_as == RTR_AS {
        assert_eq!(r1.local_pref, Some(200), "LOCAL_PREF over iBGP");
        assert!(r1.as_path.is_empty());
    } else {
        assert_eq!(r1.as_path, vec![local_as]);
    }
    let r6 = wait_until(
        CONVERGE,
        "2001:db8:ff::1/128 selected with a next hop",
        || lab.rtr.route(net("2001:db8:ff::1/128")).expect("query"),
        |r| r.as_ref().is_some_and(|r| !r.next_hops.is_empty()),
    )
    .expect("v6 route");
    assert_eq!(r6.communities, ["65000:7"]);
    assert!(r6.next_hops.contains(&ip(SPK6)), "{:?}", r6.next_hops);

    // Withdraw one prefix: rewrite the file and SIGHUP; only the difference goes out.
    lab.write_prefixes(&TABLE.replace("198.51.100.2/32\n", ""));
    lab.signal("HUP");
    let mut want = table();
    want.remove(&net("198.51.100.2/32"));
    wait_until(
        CONVERGE,
        "198.51.100.2/32 withdrawn",
        || lab.routes(),
        |r| *r == want,
    );

    // SIGTERM: Cease, the router drops the session and the routes at once.
    lab.signal("TERM");
    wait_until(
        CONVERGE,
        "routes gone after Cease",
        || lab.routes(),
        |r| r.is_empty(),
    );
    assert!(lab.log().contains("end-of-rib"), "{}", lab.log());
}

ferrolb_e2e::tests_calling!(routes_and_withdraw:
    frr_ebgp_v4_v6_attributes_and_withdraw(RouterKind::Frr, 65001);
    frr_ibgp_v4_v6_attributes_and_withdraw(RouterKind::Frr, RTR_AS);
    bird_ebgp_v4_v6_attributes_and_withdraw(RouterKind::Bird, 65001);
    bird_ibgp_v4_v6_attributes_and_withdraw(RouterKind::Bird, RTR_AS);
    gobgp_ebgp_v4_v6_attributes_and_withdraw(RouterKind::GoBgp, 65001);
    gobgp_ibgp_v4_v6_attributes_and_withdraw(RouterKind::GoBgp, RTR_AS);
);

fn md5(kind: RouterKind) {
    let Some(mut lab) = Lab::start(kind, 65001, (Some("s3cret"), Some("s3cret")), 90) else {
        return;
    };
    lab.write_prefixes("198.51.100.1/32\n");
    lab.announce(&[]);
    lab.rtr.wait_established(ip(SPK4), UP);
    drop(lab);

    let Some(mut lab) = Lab::start(kind, 65001, (Some("wrong"), Some("s3cret")), 90) else {
        return;
    };
    lab.write_prefixes("198.51.100.1/32\n");
    lab.announce(&[]);
    assert_holds(
        Duration::from_secs(4),
        "no session with a wrong TCP-MD5 password",
        || lab.rtr.session_state(ip(SPK4)).expect("state"),
        |s| *s != SessionState::Established,
    );
    wait_until(
        CONVERGE,
        "a clear log line about the failed connect",
        || lab.log(),
        |l| l.contains("connect-failed") && l.contains("TCP-MD5"),
    );
}

ferrolb_e2e::tests_calling!(md5:
    frr_md5_right_and_wrong_password(RouterKind::Frr);
    bird_md5_right_and_wrong_password(RouterKind::Bird);
    gobgp_md5_right_and_wrong_password(RouterKind::GoBgp);
);

fn restart_and_freeze(kind: RouterKind) {
    let Some(mut lab) = Lab::start(kind, 65001, (None, None), 3) else {
        return;
    };
    lab.write_prefixes("198.51.100.1/32\n");
    lab.announce(&[]);
    lab.rtr.wait_established(ip(SPK4), UP);
    wait_until(
        CONVERGE,
        "route at the router",
        || lab.routes(),
        |r| r.len() == 1,
    );

    // Router restarted: we reconnect and announce again.
    lab.rtr.restart().expect("router restarts");
    lab.rtr.wait_established(ip(SPK4), UP);
    wait_until(
        CONVERGE,
        "route back after the router restart",
        || lab.routes(),
        |r| r.len() == 1,
    );

    // Router frozen: our 3 s hold timer expires and we say so.
    lab.rtr.freeze().expect("freeze");
    wait_until(
        CONVERGE,
        "our hold timer expiry in the log",
        || lab.log(),
        |l| l.contains("hold timer expired"),
    );
    lab.rtr.thaw().expect("thaw");
    lab.rtr.wait_established(ip(SPK4), UP);
}

ferrolb_e2e::tests_calling!(restart_and_freeze:
    frr_restart_and_freeze(RouterKind::Frr);
    bird_restart_and_freeze(RouterKind::Bird);
    gobgp_restart_and_freeze(RouterKind::GoBgp);
);

#[test]
fn frr_keeps_our_routes_stale_while_we_restart_gracefully() {
    let Some(mut lab) = Lab::start(RouterKind::Frr, 65001, (None, None), 9) else {
        return;
    };
    lab.write_prefixes("198.51.100.1/32\n198.51.100.2/32\n");
    lab.announce(&["--graceful-restart", "120"]);
    lab.rtr.wait_established(ip(SPK4), UP);
    wait_until(CONVERGE, "both routes", || lab.routes(), |r| r.len() == 2);

    // Crash: no Cease goes out, so FRR (GR helper) keeps the routes as stale.
    lab.spk.as_mut().expect("running").kill();
    let stale = wait_until(
        CONVERGE,
        "routes marked stale",
        || lab.rtr.routes(Af::V4).expect("routes"),
        |r| r.len() == 2 && r.iter().all(|x| x.stale),
    );
    assert_eq!(stale.len(), 2);
    assert_holds(
        Duration::from_secs(3),
        "FRR never withdraws during the restart",
        || lab.routes().len(),
        |n| *n == 2,
    );
    lab.announce(&["--graceful-restart", "120", "--restarted"]);
    lab.rtr.wait_established(ip(SPK4), UP);
    wait_until(
        CONVERGE,
        "routes fresh again after End-of-RIB",
        || lab.rtr.routes(Af::V4).expect("routes"),
        |r| r.len() == 2 && r.iter().all(|x| !x.stale),
    );
}

#[test]
fn exabgp_ebgp_v4_receives_exactly_our_prefixes() {
    let Some(mut lab) = Lab::start(RouterKind::ExaBgp, 65001, (None, None), 90) else {
        return;
    };
    lab.write_prefixes(
        "198.51.100.1/32 community=65000:1 large-community=65000:1:2 med=10\n198.51.100.2/32\n",
    );
    lab.announce(&[]);
    lab.rtr.wait_established(ip(SPK4), UP);
    let want: BTreeSet<IpNet> = [net("198.51.100.1/32"), net("198.51.100.2/32")].into();
    wait_until(
        CONVERGE,
        "ExaBGP holds our two prefixes",
        || {
            lab.rtr
                .routes(Af::V4)
                .expect("routes")
                .into_iter()
                .map(|r| r.prefix)
                .collect::<BTreeSet<_>>()
        },
        |r| *r == want,
    );
    let r1 = lab
        .rtr
        .route(net("198.51.100.1/32"))
        .expect("query")
        .expect("route");
    assert_eq!(r1.communities, ["65000:1"]);
    assert_eq!(r1.large_communities, ["65000:1:2"]);
    assert_eq!(r1.med, Some(10));
    assert_eq!(r1.as_path, vec![65001]);
    assert_eq!(r1.next_hops, vec![ip(SPK4)]);
    lab.signal("USR1");
    wait_until(
        CONVERGE,
        "withdraw-all reaches ExaBGP",
        || lab.rtr.routes(Af::V4).expect("routes").len(),
        |n| *n == 0,
    );
    assert_eq!(
        lab.rtr.session_state(ip(SPK4)).expect("state"),
        SessionState::Established,
        "withdraw-all keeps the session"
    );
}
