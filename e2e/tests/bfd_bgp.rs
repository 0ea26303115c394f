//! BFD coupled to BGP, end to end: our speaker (standalone mode, a BGPPeer with `bfdProfile`)
//! against FRR running bgpd + bfdd (`neighbor … bfd profile fast`), in network namespaces.
//!
//! ```text
//!   ns "node" ferrolb-speaker (AS 64500)          ns "rtr" zebra + bfdd + bgpd (AS 65000)
//!     eth0 192.0.2.1/24  <──────── veth ────────>    eth0 192.0.2.2/24
//!     BGP (hold 90 s) + BFD single hop 50 ms × 3       VIP routes installed in its FIB
//! ```
//!
//! Every assertion reads FRR's own JSON (`show bfd peers json`, `show bgp neighbors json`,
//! `show ip route json`) or our speaker's log. The hold time is 90 s on both sides, so a VIP
//! that leaves FRR's FIB within [`FAST`] of a failure was withdrawn because of BFD (an event
//! wait bounded well under the hold time; the timing itself is measured by
//! `scripts/bench-bfd.py`). One lab serves every check, in order, since each start of FRR
//! and the speaker costs seconds. Skips loudly without root, FRR (zebra, bfdd, bgpd, vtysh)
//! or the `ferrolb-speaker` binary (`cargo build -p ferrolb-speaker`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::fixture::{self, yaml, Object, METALLB_NS};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{program_exists, require_root_and, wait_until, Daemon, Netns, FRR_RUN_DIR};
use serde_json::Value;

const ZEBRA: &str = "/usr/lib/frr/zebra";
const BFDD: &str = "/usr/lib/frr/bfdd";
const BGPD: &str = "/usr/lib/frr/bgpd";
const NODE: &str = "192.0.2.1";
const RTR: &str = "192.0.2.2";
const VIP: &str = "198.51.100.10";
const OUR_AS: u32 = 64500;
const RTR_AS: u32 = 65000;
/// Deadline of waits for things to come up.
const WAIT: Duration = Duration::from_secs(30);
/// Deadline of waits for a failure to be acted on: far below the 90 s hold time, so only BFD
/// can meet it.
const FAST: Duration = Duration::from_secs(10);

/// FRR: zebra (installs BGP routes in the namespace's FIB), bfdd with profile "fast"
/// (50 ms × 3), bgpd with one eBGP neighbor (our node) using it, hold time 90 s.
struct Frr {
    ns: String,
    // Dropped in this order: bgpd, bfdd, then zebra.
    _bgpd: Daemon,
    bfdd: Daemon,
    _zebra: Daemon,
}

fn bfdd_conf(host: &str) -> String {
    format!(
        "frr defaults traditional\nhostname {host}\n!\nbfd\n profile fast\n  receive-interval 50\n  \
         transmit-interval 50\n  detect-multiplier 3\n !\n!\n"
    )
}

/// With `multihop`, the neighbor is `ebgp-multihop`, for which FRR's bgpd asks bfdd for an
/// RFC 5883 multihop session.
fn bgpd_conf(host: &str, multihop: bool) -> String {
    let mh = if multihop {
        format!(" neighbor {NODE} ebgp-multihop 2\n")
    } else {
        String::new()
    };
    format!(
        "frr defaults traditional\nhostname {host}\n!\nrouter bgp {RTR_AS}\n bgp router-id {RTR}\n \
         no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n neighbor {NODE} remote-as {OUR_AS}\n \
         neighbor {NODE} timers 30 90\n neighbor {NODE} timers connect 1\n neighbor {NODE} passive\n \
         neighbor {NODE} bfd profile fast\n{mh} !\n address-family ipv4 unicast\n  neighbor {NODE} activate\n \
         exit-address-family\nexit\n!\n"
    )
}

impl Frr {
    fn start(ns: &Netns, multihop: bool) -> Frr {
        let dir = ns.dir().join("frr");
        std::fs::create_dir_all(&dir).expect("frr dir");
        let conf = |f: &str, text: String| {
            let p = dir.join(f);
            std::fs::write(&p, text).expect("frr conf");
            p.to_string_lossy().into_owned()
        };
        let zconf = conf("zebra.conf", "frr defaults traditional\n".to_owned());
        let fconf = conf("bfdd.conf", bfdd_conf(ns.name()));
        let bconf = conf("bgpd.conf", bgpd_conf(ns.name(), multihop));
        let run = Path::new(FRR_RUN_DIR).join(ns.name());
        std::fs::create_dir_all(&run).expect("frr run dir");
        let chown = Command::new("chown").arg("frr:frr").arg(&run).status();
        assert!(chown.is_ok_and(|s| s.success()), "chown {run:?}");
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
        let spawn = |name: &str, bin: &str, conf: &str| {
            let mut args = vec![bin, "-f", conf];
            args.extend(common);
            ns.spawn(name, &args).expect("FRR daemon starts")
        };
        let zebra = spawn("zebra", ZEBRA, &zconf);
        let zsock = run.join("zserv.api");
        wait_until(WAIT, "zebra's socket", || zsock.exists(), |ok| *ok);
        let bfdd = spawn("bfdd", BFDD, &fconf);
        let bgpd = spawn("bgpd", BGPD, &bconf);
        let frr = Frr {
            ns: ns.name().to_owned(),
            _bgpd: bgpd,
            bfdd,
            _zebra: zebra,
        };
        wait_until(
            WAIT,
            "bgpd and bfdd answer vtysh",
            || {
                frr.json("show bgp summary json").is_some()
                    && frr.json("show bfd peers json").is_some()
            },
            |ok| *ok,
        );
        frr
    }

    /// `vtysh -d <daemon> -c <command>` parsed as JSON; `None` while the daemon does not
    /// answer. Only the daemon that owns the command is asked (vtysh waits on every daemon
    /// otherwise, and a frozen bfdd would hang it), and never for more than 5 s.
    fn json(&self, command: &str) -> Option<Value> {
        let daemon = if command.starts_with("show bfd") {
            "bfdd"
        } else if command.starts_with("show bgp") {
            "bgpd"
        } else {
            "zebra"
        };
        let out = Command::new("timeout")
            .args(["5", "vtysh", "-N", &self.ns, "-d", daemon, "-c", command])
            .env("VTYSH_PAGER", "cat")
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// bfdd's view of our node (`show bfd peers json`), with its counters merged in.
    fn bfd_peer(&self) -> Value {
        let find = |v: Option<Value>| {
            v.and_then(|v| v.as_array().cloned())
                .and_then(|ps| ps.into_iter().find(|p| p["peer"] == NODE))
        };
        let mut p = find(self.json("show bfd peers json")).unwrap_or(Value::Null);
        if let (Some(obj), Some(Value::Object(c))) = (
            p.as_object_mut(),
            find(self.json("show bfd peers counters json")),
        ) {
            for (k, v) in c {
                obj.entry(format!("counter:{k}")).or_insert(v);
            }
        }
        p
    }

    /// bgpd's view of our node (`show bgp neighbors <node> json`).
    fn bgp_neighbor(&self) -> Value {
        self.json(&format!("show bgp neighbors {NODE} json"))
            .map(|v| v[NODE].clone())
            .unwrap_or(Value::Null)
    }

    /// Whether zebra holds the VIP as a BGP route installed in the FIB.
    fn vip_in_fib(&self) -> bool {
        let v = self
            .json(&format!("show ip route {VIP}/32 json"))
            .unwrap_or(Value::Null);
        v[format!("{VIP}/32")].as_array().is_some_and(|routes| {
            routes
                .iter()
                .any(|r| r["protocol"] == "bgp" && r["installed"] == true)
        })
    }

    fn wait_bfd(&self, what: &str, done: impl FnMut(&Value) -> bool) -> Value {
        wait_until(WAIT, what, || self.bfd_peer(), done)
    }

    fn wait_established(&self, what: &str) -> Value {
        wait_until(
            WAIT,
            what,
            || self.bgp_neighbor(),
            |n| n["bgpState"] == "Established",
        )
    }

    fn wait_fib(&self, limit: Duration, what: &str, present: bool) {
        wait_until(limit, what, || self.vip_in_fib(), |p| *p == present);
    }
}

fn profile(transmit_ms: u32) -> Object {
    Object::new("metallb.io/v1beta1", "BFDProfile", "fast", Some(METALLB_NS))
        .set("spec.receiveInterval", 50)
        .set("spec.transmitInterval", transmit_ms)
        .set("spec.detectMultiplier", 3)
}

fn config_yaml(transmit_ms: u32, multihop: bool) -> String {
    yaml(&[
        // The VIP's /24, and room for the load test's 20,000 VIPs.
        fixture::pool("pool", &["198.51.100.0/24", "198.18.0.0/16"]),
        fixture::bgp_advertisement("adv", &["pool"]),
        fixture::bgp_peer("rtr", OUR_AS, RTR_AS, RTR, NODE)
            .set("spec.holdTime", "90s")
            .set("spec.ebgpMultiHop", multihop)
            .set("spec.bfdProfile", "fast"),
        profile(transmit_ms),
    ])
}

/// The lab every test here starts from: the node and router namespaces, FRR (single hop, or
/// multihop for an `ebgp-multihop` neighbor), and our speaker in standalone mode on a config
/// directory holding `config_yaml(50, multihop)` and `files`.
fn lab(
    bin: FlbCommand,
    multihop: bool,
    files: &[(&str, String)],
) -> (Netns, Netns, Frr, std::path::PathBuf, Daemon) {
    let (node_ns, rtr_ns) = Netns::pair("node", "rtr").expect("lab");
    let frr = Frr::start(&rtr_ns, multihop);
    let conf = node_ns.dir().join("conf");
    std::fs::create_dir(&conf).expect("conf dir");
    write_atomic(&conf, "config.yaml", &config_yaml(50, multihop));
    for (name, text) in files {
        write_atomic(&conf, name, text);
    }
    let speaker = bin
        .speaker_standalone(&conf, "node")
        .spawn_in(&node_ns, "speaker")
        .expect("speaker starts");
    (node_ns, rtr_ns, frr, conf, speaker)
}

/// The one Service of the lab, its VIP on our node.
fn web() -> (&'static str, String) {
    (
        "svc.yaml",
        fixture::service_with_endpoints("web", &[VIP], "Cluster", &["node"]),
    )
}

/// Write then rename, so the speaker's poller never reads half a file.
fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write tmp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into conf");
}

fn wait_log(speaker: &Daemon, needle: &str) -> String {
    speaker
        .wait_log(WAIT, needle)
        .unwrap_or_else(|e| panic!("speaker log: {e}"))
}

/// One sample of our speaker's `/metrics` (bound on the node namespace's loopback, so read
/// with curl inside it); `None` when it cannot be read.
fn metric(ns: &Netns, speaker: &Daemon, series: &str) -> Option<u64> {
    let addr = speaker.metrics_addr(WAIT).ok()?;
    let url = format!("http://{addr}/metrics");
    let out = ns.exec(&["curl", "-sf", "--max-time", "5", &url]).ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The checklist of the coupling against FRR: BFD up on both sides with the profile's timers;
/// a profile change renegotiates without a BFD or BGP flap; our node frozen → FRR's BFD goes
/// down and the VIP leaves its FIB long before the hold time; FRR's BFD gone silent → our
/// speaker closes BGP with Cease 6/10 (RFC 9384) and BGP comes back without waiting for BFD.
#[test]
fn bfd_profile_couples_bfd_to_the_bgp_session_with_frr() {
    if !require_root_and(&[ZEBRA, BFDD, BGPD, "vtysh"]) {
        return;
    }
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (node_ns, _rtr_ns, frr, conf, mut speaker) = lab(bin, false, &[web()]);

    // BGP comes up, the VIP reaches FRR's FIB, and the BFD session comes up on both sides
    // with the profile's timers (FRR's own and what it learnt from us, ms).
    frr.wait_established("BGP Established");
    frr.wait_fib(WAIT, "VIP in FRR's FIB", true);
    let p = frr.wait_bfd("FRR's BFD peer up with our timers", |p| {
        p["status"] == "up" && p["remote-transmit-interval"] == 50
    });
    assert_eq!(p["receive-interval"], 50, "{p:#}");
    assert_eq!(p["transmit-interval"], 50, "{p:#}");
    assert_eq!(p["remote-receive-interval"], 50, "{p:#}");
    assert_eq!(p["remote-detect-multiplier"], 3, "{p:#}");
    assert_eq!(p["multihop"], false, "single hop (RFC 5881): {p:#}");
    // Same source as the BGP session (no sourceAddress: learnt from the TCP connection).
    let local = speaker
        .wait_log_field(WAIT, "BFD session started", "local")
        .unwrap_or_else(|e| panic!("speaker log: {e}"));
    assert_eq!(local, NODE);
    wait_log(&speaker, "to=Up");
    // MetalLB's BFD metrics, labelled with the peer's address.
    if program_exists("curl") {
        let peer = format!("{{peer=\"{RTR}\"}}");
        let up = wait_until(
            WAIT,
            "metallb_bfd_session_up 1",
            || {
                metric(
                    &node_ns,
                    &speaker,
                    &format!("metallb_bfd_session_up{peer} "),
                )
            },
            |v| *v == Some(1),
        );
        assert_eq!(up, Some(1));
        for family in [
            "metallb_bfd_control_packet_input",
            "metallb_bfd_control_packet_output",
            "metallb_bfd_session_up_events",
        ] {
            let v = metric(&node_ns, &speaker, &format!("{family}{peer} "));
            assert!(v.is_some_and(|v| v >= 1), "{family}: {v:?}");
        }
        let echo = metric(
            &node_ns,
            &speaker,
            &format!("metallb_bfd_echo_packet_output{peer} "),
        );
        assert_eq!(echo, Some(0), "Echo is not implemented");
    } else {
        eprintln!("SKIPPED the /metrics checks of bfd_bgp: curl not installed");
    }

    // A profile change (transmitInterval 50 -> 100) renegotiates with a Poll Sequence: FRR
    // learns the new interval while neither BFD nor BGP flaps.
    let bgp_before = frr.bgp_neighbor();
    let drops_before = count(&bgp_before["connectionsDropped"]);
    let bfd_downs_before = count(&frr.bfd_peer()["counter:session-down"]);
    write_atomic(&conf, "config.yaml", &config_yaml(100, false));
    let p = frr.wait_bfd("FRR learnt our new transmit interval", |p| {
        p["remote-transmit-interval"] == 100
    });
    assert_eq!(p["status"], "up", "{p:#}");
    assert_eq!(
        count(&p["counter:session-down"]),
        bfd_downs_before,
        "no BFD flap: {p:#}"
    );
    let n = frr.bgp_neighbor();
    assert_eq!(n["bgpState"], "Established", "{n:#}");
    assert_eq!(
        count(&n["connectionsDropped"]),
        drops_before,
        "no BGP flap: {n:#}"
    );
    wait_log(&speaker, "renegotiating with a Poll Sequence");

    // Our node frozen (SIGSTOP): FRR's BFD declares it down, bgpd closes the session and the
    // VIP leaves FRR's FIB, all well before the 90 s hold time could expire.
    speaker.freeze().expect("SIGSTOP speaker");
    frr.wait_fib(FAST, "VIP gone from FRR's FIB after our node froze", false);
    let p = frr.bfd_peer();
    assert_eq!(p["status"], "down", "{p:#}");
    assert_eq!(p["diagnostic"], "control detection time expired", "{p:#}");
    assert_ne!(frr.bgp_neighbor()["bgpState"], "Established");
    speaker.thaw().expect("SIGCONT speaker");
    frr.wait_established("BGP Established again after the thaw");
    frr.wait_bfd("FRR's BFD peer up again", |p| p["status"] == "up");
    frr.wait_fib(WAIT, "VIP back in FRR's FIB", true);

    // FRR's bfdd falls silent (SIGSTOP; bgpd keeps running): our BFD declares the path down
    // and our speaker closes the BGP session at once with Cease 6/10 "BFD Down".
    let drops_before = count(&frr.bgp_neighbor()["connectionsDropped"]);
    frr.bfdd.freeze().expect("SIGSTOP bfdd");
    let n = wait_until(
        FAST,
        "bgpd saw our Cease",
        || frr.bgp_neighbor(),
        |n| count(&n["connectionsDropped"]) > drops_before,
    );
    wait_log(&speaker, "closing the BGP session (Cease 6/10 BFD Down");
    // FRR's record of why the session went: the NOTIFICATION it received from us.
    assert_eq!(n["lastResetDueTo"], "BGP Notification received", "{n:#}");
    assert_eq!(n["lastNotificationReason"], "Cease/BFD Down", "{n:#}");
    // BGP never waits for BFD: the session is made again with bfdd still frozen.
    frr.wait_established("BGP Established again while FRR's BFD is silent");
    frr.bfdd.thaw().expect("SIGCONT bfdd");
    // bfdd wakes to an expired detection timer and may reset BGP once more; in the end both
    // are up and the VIP is back.
    frr.wait_bfd("FRR's BFD peer up after bfdd thawed", |p| {
        p["status"] == "up"
    });
    frr.wait_established("BGP Established in the end");
    frr.wait_fib(WAIT, "VIP in FRR's FIB in the end", true);
    speaker.stop();
}

/// An `ebgpMultiHop` BGPPeer gets RFC 5883 multihop BFD (UDP 4784), as FRR's bgpd asks for an
/// `ebgp-multihop` neighbor: Up on both sides as multihop, and our node frozen takes the VIP
/// out of FRR's FIB long before the hold time.
#[test]
fn ebgp_multihop_peer_runs_multihop_bfd_with_frr() {
    if !require_root_and(&[ZEBRA, BFDD, BGPD, "vtysh"]) {
        return;
    }
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (_node_ns, _rtr_ns, frr, _conf, mut speaker) = lab(bin, true, &[web()]);
    frr.wait_established("BGP Established");
    frr.wait_fib(WAIT, "VIP in FRR's FIB", true);
    let p = frr.wait_bfd("FRR's multihop BFD peer up", |p| p["status"] == "up");
    assert_eq!(p["multihop"], true, "RFC 5883 multihop: {p:#}");
    let multihop = speaker
        .wait_log_field(WAIT, "BFD session started", "multihop")
        .unwrap_or_else(|e| panic!("speaker log: {e}"));
    assert_eq!(multihop, "true");
    speaker.freeze().expect("SIGSTOP speaker");
    frr.wait_fib(FAST, "VIP gone from FRR's FIB after our node froze", false);
    assert_eq!(frr.bfd_peer()["status"], "down");
    speaker.thaw().expect("SIGCONT speaker");
    frr.wait_bfd("FRR's multihop BFD peer up again", |p| p["status"] == "up");
    frr.wait_fib(WAIT, "VIP back in FRR's FIB", true);
    speaker.stop();
}

/// Services in the load test: enough that the table write to FRR takes seconds here.
const LOAD_SERVICES: usize = 20_000;
/// Services per file (the file source caps a file at 16 MiB).
const LOAD_PER_FILE: usize = 2_000;

/// FRR's count of prefixes accepted from our node.
fn accepted_prefixes(frr: &Frr) -> u64 {
    count(&frr.bgp_neighbor()["addressFamilyInfo"]["ipv4Unicast"]["acceptedPrefixCounter"])
}

/// A long table write cannot delay BFD: with 50 ms × 3 on both sides, our speaker announces
/// [`LOAD_SERVICES`] VIPs in one burst and then withdraws them all, and through both neither
/// FRR's BFD nor ours sees the session go down, and BGP is never reset. BFD runs in its own
/// tasks (crates/bfd's driver) beside the BGP peer task that packs and writes the UPDATEs.
#[test]
fn a_long_table_write_does_not_flap_bfd() {
    if !require_root_and(&[ZEBRA, BFDD, BGPD, "vtysh"]) {
        return;
    }
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (node_ns, _rtr_ns, frr, conf, mut speaker) = lab(bin, false, &[]);
    frr.wait_established("BGP Established");
    frr.wait_bfd("FRR's BFD peer up", |p| p["status"] == "up");
    let downs_before = count(&frr.bfd_peer()["counter:session-down"]);
    let drops_before = count(&frr.bgp_neighbor()["connectionsDropped"]);

    // The burst: every file lands at once (written aside, then renamed in).
    let files = LOAD_SERVICES / LOAD_PER_FILE;
    for f in 0..files {
        let text: String = (0..LOAD_PER_FILE)
            .map(|j| {
                let i = f * LOAD_PER_FILE + j;
                let vip = format!("198.18.{}.{}", i / 250, i % 250 + 1);
                format!(
                    "{}---\n",
                    fixture::service_with_endpoints(
                        &format!("s{i}"),
                        &[&vip],
                        "Cluster",
                        &["node"]
                    )
                )
            })
            .collect();
        write_atomic(&conf, &format!("svc-{f}.yaml"), &text);
    }
    let all = u64::try_from(LOAD_SERVICES).expect("fits");
    let load = Duration::from_secs(180);
    let started = std::time::Instant::now();
    // Watched while it happens: the first prefix marks the start of the table write.
    wait_until(
        load,
        "FRR's first VIP",
        || accepted_prefixes(&frr),
        |n| *n > 0,
    );
    let first = started.elapsed();
    wait_until(
        load,
        "FRR accepted every VIP",
        || accepted_prefixes(&frr),
        |n| *n == all,
    );
    // A figure for the log, not an assertion: how long the write went on beside BFD.
    eprintln!(
        "table write: first VIP at FRR after {first:?}, all {all} after {:?}",
        started.elapsed()
    );
    let check = |phase: &str| {
        let p = frr.bfd_peer();
        assert_eq!(p["status"], "up", "{phase}: {p:#}");
        assert_eq!(
            count(&p["counter:session-down"]),
            downs_before,
            "{phase}: FRR's BFD never went down: {p:#}"
        );
        let n = frr.bgp_neighbor();
        assert_eq!(
            count(&n["connectionsDropped"]),
            drops_before,
            "{phase}: BGP never reset: {n:#}"
        );
        if program_exists("curl") {
            let downs = metric(
                &node_ns,
                &speaker,
                &format!("metallb_bfd_session_down_events{{peer=\"{RTR}\"}} "),
            );
            assert_eq!(downs, Some(0), "{phase}: our BFD never went down");
        }
    };
    check("after the announce burst");

    // The withdraw burst: every file removed at once.
    for f in 0..files {
        std::fs::remove_file(conf.join(format!("svc-{f}.yaml"))).expect("remove");
    }
    wait_until(
        load,
        "FRR has no VIP left",
        || accepted_prefixes(&frr),
        |n| *n == 0,
    );
    check("after the withdraw burst");
    speaker.stop();
}
