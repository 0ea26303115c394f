//! Interop with FRR's `bfdd` (RFC 5880/5881 single hop, IPv4 and IPv6), in network
//! namespaces. Needs root and FRR (`bfdd`, `zebra`, `vtysh`); skips loudly otherwise.
//!
//! ```text
//!   ns "bfd"  ferrolb-bfd (this crate's tool)     ns "frr"  zebra + bfdd
//!     eth0 192.0.2.1/24 fd00:db8::1/64  <-- veth -->  eth0 192.0.2.2/24 fd00:db8::2/64
//! ```
//!
//! FRR is configured with a profile of receive/transmit 50 ms × 3 and a peer per address
//! family; our tool runs the same timers. Assertions read FRR's own JSON view
//! (`show bfd peers json`) and our tool's JSON status lines. One lab serves every check in
//! order, since each start costs seconds.

use std::path::Path;
use std::process::Command;

use ferrolb_e2e::{require_root_and, wait_until, Daemon, Netns, FRR_RUN_DIR};
use serde_json::Value;

mod common;
use common::{start_ours, wait_ours, OURS, THEIRS as FRRS, WAIT};

const BFDD: &str = "/usr/lib/frr/bfdd";
const ZEBRA: &str = "/usr/lib/frr/zebra";

/// FRR's bfdd.conf: profile "fast" (50 ms × 3) and one peer per family, single hop or
/// (RFC 5883) multihop.
fn bfdd_conf(ns: &str, multihop: bool) -> String {
    let mh = if multihop { " multihop" } else { "" };
    let mut s = format!("frr defaults traditional\nhostname {ns}\n!\nbfd\n");
    s.push_str(
        " profile fast\n  receive-interval 50\n  transmit-interval 50\n  detect-multiplier 3\n !\n",
    );
    for (ours, frr) in OURS.iter().zip(FRRS) {
        s.push_str(&format!(
            " peer {ours}{mh} local-address {frr}\n  profile fast\n !\n"
        ));
    }
    s.push_str("!\n");
    s
}

/// zebra + bfdd in a namespace, with their own pathspace (`-N`), no vty TCP port.
struct FrrBfd {
    ns: String,
    zebra: Daemon,
    bfdd: Daemon,
}

impl FrrBfd {
    fn start(ns: &Netns, multihop: bool) -> FrrBfd {
        let dir = ns.dir().join("frr");
        std::fs::create_dir_all(&dir).expect("frr dir");
        std::fs::write(dir.join("bfdd.conf"), bfdd_conf(ns.name(), multihop)).expect("bfdd.conf");
        std::fs::write(dir.join("zebra.conf"), "frr defaults traditional\n").expect("zebra.conf");
        let run = Path::new(FRR_RUN_DIR).join(ns.name());
        std::fs::create_dir_all(&run).expect("frr run dir");
        let chown = Command::new("chown").arg("frr:frr").arg(&run).status();
        assert!(chown.is_ok_and(|s| s.success()), "chown {run:?}");
        let conf = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let common = [
            "-N",
            ns.name(),
            "-P",
            "0",
            "--log",
            "stdout",
            "--log-level",
            "info",
        ];
        let zconf = conf("zebra.conf");
        let mut zargs = vec![ZEBRA, "-f", &zconf];
        zargs.extend(common);
        let zebra = ns.spawn("zebra", &zargs).expect("zebra starts");
        let zsock = run.join("zserv.api");
        wait_until(WAIT, "zebra's socket", || zsock.exists(), |ok| *ok);
        let bconf = conf("bfdd.conf");
        let mut bargs = vec![BFDD, "-f", &bconf];
        bargs.extend(common);
        let bfdd = ns.spawn("bfdd", &bargs).expect("bfdd starts");
        let frr = FrrBfd {
            ns: ns.name().to_owned(),
            zebra,
            bfdd,
        };
        wait_until(
            WAIT,
            "bfdd answers vtysh",
            || frr.peers().is_some(),
            |ok| *ok,
        );
        frr
    }

    /// `show bfd peers json`, or `None` while bfdd does not answer.
    fn peers(&self) -> Option<Vec<Value>> {
        let out = Command::new("vtysh")
            .args(["-N", &self.ns, "-c", "show bfd peers json"])
            .output()
            .ok()?;
        serde_json::from_slice::<Value>(&out.stdout)
            .ok()?
            .as_array()
            .cloned()
    }

    /// FRR's view of the peer at `addr` (our address).
    fn peer(&self, addr: &str) -> Value {
        self.peers()
            .and_then(|ps| ps.into_iter().find(|p| p["peer"] == addr))
            .unwrap_or(Value::Null)
    }
}

fn wait_frr(frr: &FrrBfd, addr: &str, what: &str, done: impl FnMut(&Value) -> bool) -> Value {
    wait_until(WAIT, what, || frr.peer(addr), done)
}

#[test]
fn frr_bfdd_interop_up_timers_and_down_both_ways() {
    if !require_root_and(&[BFDD, ZEBRA, "vtysh"]) {
        return;
    }
    let (ours_ns, frr_ns) = Netns::pair("bfd", "frr").expect("lab");
    let frr = FrrBfd::start(&frr_ns, false);
    let mut v4 = start_ours(&ours_ns, 0, &["--usr1-rx-ms", "200", "--usr1-tx-ms", "100"]);
    let v6 = start_ours(&ours_ns, 1, &[]);

    // Up on both sides, both families.
    for (af, d) in [(0, &v4), (1, &v6)] {
        wait_ours(d, "our session Up", |s| s["state"] == "Up");
        let p = wait_frr(&frr, OURS[af], "FRR's peer up", |p| p["status"] == "up");
        // Timers as configured: FRR's own and what it learnt from us (ms).
        assert_eq!(p["receive-interval"], 50, "{p:#}");
        assert_eq!(p["transmit-interval"], 50, "{p:#}");
        let p = wait_frr(&frr, OURS[af], "FRR learnt our 50 ms", |p| {
            p["remote-receive-interval"] == 50 && p["remote-transmit-interval"] == 50
        });
        assert_eq!(p["remote-detect-multiplier"], 3, "{p:#}");
        // We negotiated max(50, 50) to send and 3 × max(50, 50) to detect.
        let s = wait_ours(d, "our timers negotiated", |s| {
            s["tx_interval_us"] == 50_000
        });
        assert_eq!(s["detection_time_us"], 150_000, "{s}");
        assert_eq!(s["remote_discr"], p["id"], "FRR's discriminator");
        assert_eq!(s["local_discr"], p["remote-id"], "ours as FRR sees it");
    }

    // A live profile change renegotiates with a Poll Sequence, without a flap.
    let uptime_before = frr.peer(OURS[0])["uptime"].as_u64().unwrap_or(0);
    ferrolb_e2e::signal(v4.pid(), "USR1").expect("SIGUSR1");
    let p = wait_frr(&frr, OURS[0], "FRR learnt our new timers", |p| {
        p["remote-receive-interval"] == 200 && p["remote-transmit-interval"] == 100
    });
    assert_eq!(p["status"], "up", "{p:#}");
    assert!(
        p["uptime"].as_u64().unwrap_or(0) >= uptime_before,
        "no flap: {p:#}"
    );
    // We send at max(our 100, FRR's RequiredMinRx 50) and detect after FRR's 3 ×
    // max(our RequiredMinRx 200, FRR's DesiredMinTx 50).
    let s = wait_ours(&v4, "our timers renegotiated", |s| {
        s["detection_time_us"] == 600_000 && s["tx_interval_us"] == 100_000
    });
    assert_eq!(s["down_events"], 0, "no flap: {s}");

    // FRR stops sending (SIGSTOP): our session goes Down with diag 1.
    frr.bfdd.freeze().expect("SIGSTOP bfdd");
    for d in [&v4, &v6] {
        let s = wait_ours(d, "our session Down after FRR froze", |s| {
            s["state"] == "Down"
        });
        assert_eq!(s["local_diag"], 1, "Control Detection Time Expired: {s}");
    }
    frr.bfdd.thaw().expect("SIGCONT bfdd");
    for (af, d) in [(0, &v4), (1, &v6)] {
        wait_ours(d, "our session Up again", |s| s["state"] == "Up");
        wait_frr(&frr, OURS[af], "FRR's peer up again", |p| {
            p["status"] == "up"
        });
    }

    // We stop sending (SIGSTOP our tool): FRR goes down on its detection timer.
    v6.freeze().expect("SIGSTOP ferrolb-bfd");
    let p = wait_frr(&frr, OURS[1], "FRR's peer down after we froze", |p| {
        p["status"] == "down"
    });
    assert_eq!(p["diagnostic"], "control detection time expired", "{p:#}");
    v6.thaw().expect("SIGCONT ferrolb-bfd");
    wait_frr(&frr, OURS[1], "FRR's peer up again", |p| {
        p["status"] == "up"
    });

    // Dropping our session (SIGTERM: the tool drops it) sends AdminDown: FRR goes down
    // with the peer's diagnostic "administratively down".
    v4.stop();
    let p = wait_frr(&frr, OURS[0], "FRR's peer down after our AdminDown", |p| {
        p["status"] == "down"
    });
    assert_eq!(p["remote-diagnostic"], "administratively down", "{p:#}");
    let _ = &frr.zebra;
}

#[test]
fn frr_bfdd_multihop_interop_comes_up_on_port_4784() {
    if !require_root_and(&[BFDD, ZEBRA, "vtysh"]) {
        return;
    }
    let (ours_ns, frr_ns) = Netns::pair("bfdmh", "frrmh").expect("lab");
    let frr = FrrBfd::start(&frr_ns, true);
    let v4 = start_ours(&ours_ns, 0, &["--multihop", "--min-ttl", "250"]);
    let v6 = start_ours(&ours_ns, 1, &["--multihop", "--min-ttl", "250"]);
    for (af, d) in [(0, &v4), (1, &v6)] {
        wait_ours(d, "our multihop session Up at 50 ms", |s| {
            s["state"] == "Up" && s["tx_interval_us"] == 50_000
        });
        let p = wait_frr(&frr, OURS[af], "FRR's multihop peer up", |p| {
            p["status"] == "up"
        });
        assert_eq!(p["multihop"], true, "{p:#}");
    }
    // FRR stops sending: our multihop sessions detect it too.
    frr.bfdd.freeze().expect("SIGSTOP bfdd");
    for d in [&v4, &v6] {
        let s = wait_ours(d, "our session Down after FRR froze", |s| {
            s["state"] == "Down"
        });
        assert_eq!(s["local_diag"], 1, "{s}");
    }
    frr.bfdd.thaw().expect("SIGCONT bfdd");
}
