//! Layer 2 mode end to end: with three nodes, each running the real `ferrolb-speaker`
//! in standalone mode, and a client on one bridge.
//!
//! ```text
//!   ns "client"  eth0 192.168.50.100/24 fd00:50::100/64 ─┐
//!   ns "node-a"  eth0 192.168.50.1/24   fd00:50::1/64   ─┤
//!   ns "node-b"  eth0 192.168.50.2/24   fd00:50::2/64   ─┼─ ns "sw" bridge br0
//!   ns "node-c"  eth0 192.168.50.3/24   fd00:50::3/64   ─┘
//!   each node: VIPs on lo, net.ipv4.conf.all.arp_ignore=1 (the kernel never answers ARP for
//!   them), a TCP listener on :8080 answering its node name, ferrolb-speaker (gossip on :7946)
//! ```
//!
//! Services: `web` at 192.168.50.200 and fd00:50::200 (externalTrafficPolicy Cluster,
//! endpoints on every node) and `local` at 192.168.50.201 (Local, endpoint on node-c only).
//! Election order (SHA-256 of "node#vip", `printf 'node-c#192.168.50.200' | sha256sum`):
//! .200: node-c, node-b, node-a; fd00:50::200: node-b, node-c, node-a; .201: node-b, node-a,
//! node-c. So `local` is owned by the last-ranked node: an election that ignored the policy
//! would pick node-b.
//!
//! Failover trial: the client pings .200 every 5 ms; tshark on the survivors records the first
//! echo request reaching each; the owner's speaker gets SIGKILL; the time from the kill to the
//! first packet at the new owner is the failover time. Then the client's neighbour entry must
//! hold the new owner's MAC (moved by the gratuitous ARP: the kernel does not re-resolve a
//! REACHABLE entry on its own), and the killed speaker is restarted and takes the VIP back.
//! Before the trials, MetalLB's per-IP Layer 2 counters (`metallb_layer2_*{ip}`) are read from
//! each speaker's `/metrics`: the owner counts the requests it answered, the others have none.
//! Timings are printed, never asserted; the 20-trial measurement is `#[ignore]`d
//! (`cargo test -p ferrolb-e2e --test l2_failover -- --ignored --nocapture`).
//!
//! Skips loudly without root, arping, ndisc6, tshark, python3 (the listeners), curl or the
//! `ferrolb-speaker` binary (`cargo build -p ferrolb-speaker`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ferrolb_e2e::fixture::{self, yaml};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{assert_holds, require_root_and, wait_for, wait_until, Daemon, Netns, Switch};

const VIP4: &str = "192.168.50.200";
const VIP6: &str = "fd00:50::200";
const VIP_LOCAL: &str = "192.168.50.201";
const CLIENT: [&str; 2] = ["192.168.50.100/24", "fd00:50::100/64"];
const NODES: [(&str, &str, &str); 3] = [
    ("node-a", "192.168.50.1", "fd00:50::1"),
    ("node-b", "192.168.50.2", "fd00:50::2"),
    ("node-c", "192.168.50.3", "fd00:50::3"),
];
/// Owners by the election order in the module doc.
const OWNER4: &str = "node-c";
const OWNER4_NEXT: &str = "node-b";
const OWNER6: &str = "node-b";
const OWNER_LOCAL: &str = "node-c";
const PORT: u16 = 8080;
/// Generous bound for anything to start or converge on a loaded CI machine.
const CONVERGE: Duration = Duration::from_secs(30);

fn config_yaml() -> String {
    let web_endpoints: Vec<(String, &str)> = NODES
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| (format!("10.0.0.{}", i + 1), *name))
        .collect();
    let web_endpoints: Vec<(&str, &str)> = web_endpoints
        .iter()
        .map(|(a, n)| (a.as_str(), *n))
        .collect();
    let port = serde_json::json!([{ "port": PORT }]);
    let mut objects = vec![
        fixture::pool("lan", &["192.168.50.200/31", "fd00:50::200/128"]),
        fixture::l2_advertisement("lan", &["lan"]),
        fixture::service("web", "default", &[VIP4, VIP6])
            .set("spec.ipFamilyPolicy", "PreferDualStack")
            .set("spec.ports", port.clone()),
        fixture::endpoint_slice("web", "default", &web_endpoints),
        fixture::service("local", "default", &[VIP_LOCAL])
            .set("spec.externalTrafficPolicy", "Local")
            .set("spec.ports", port),
        fixture::endpoint_slice("local", "default", &[("10.0.0.13", OWNER_LOCAL)]),
    ];
    objects.extend(
        NODES
            .iter()
            .map(|(name, v4, v6)| fixture::node(name, &[v4, v6])),
    );
    yaml(&objects)
}

/// The TCP listener of a node: answers every connection with the node's name. Bounded so a
/// leaked one ends by itself; the namespace's cleanup stops it anyway.
const LISTENER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[2])))
s.listen(64)
print("listening", flush=True)
for _ in range(100000):
    c, _ = s.accept()
    c.sendall(sys.argv[1].encode())
    c.close()
"#;

const CONNECT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print(c.recv(64).decode())
"#;

struct Node {
    name: &'static str,
    ns: Netns,
    mac: String,
    speaker: Option<Daemon>,
    _listener: Daemon,
    status: PathBuf,
}

struct Lab {
    client: Netns,
    nodes: Vec<Node>,
    bin: FlbCommand,
    conf: PathBuf,
    _sw: Switch,
}

impl Lab {
    fn start() -> Option<Lab> {
        if !require_root_and(&["arping", "ndisc6", "tshark", "python3", "ping", "curl"]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-speaker")?;
        let mut sw = Switch::new().expect("switch");
        let client = Netns::new("client").expect("netns");
        sw.attach(&client, "eth0", &CLIENT).expect("attach client");
        let conf = client.dir().join("conf");
        std::fs::create_dir(&conf).expect("conf dir");
        std::fs::write(conf.join("l2.yaml"), config_yaml()).expect("write config");
        let mut nodes = Vec::new();
        for (name, v4, v6) in NODES {
            let ns = Netns::new(name).expect("netns");
            sw.attach(&ns, "eth0", &[&format!("{v4}/24"), &format!("{v6}/64")])
                .expect("attach node");
            // The VIPs are accepted locally (on lo) but the kernel must never answer ARP for
            // them (arp_ignore=1: only for addresses on the receiving interface) nor use them
            // as the source of its own ARP requests (arp_announce=2).
            ns.exec(&[
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
            ])
            .expect("sysctl");
            ns.add_addrs(
                "lo",
                &[
                    &format!("{VIP4}/32"),
                    &format!("{VIP_LOCAL}/32"),
                    &format!("{VIP6}/128"),
                ],
            )
            .expect("VIPs on lo");
            let listener = ns
                .spawn(
                    "listener",
                    &["python3", "-u", "-c", LISTENER, name, &PORT.to_string()],
                )
                .expect("listener starts");
            wait_for(CONVERGE, "listener ready", || {
                listener.log().contains("listening").then_some(())
            });
            let mac = ns.mac("eth0").expect("mac");
            let status = ns.dir().join("status.json");
            nodes.push(Node {
                name,
                ns,
                mac,
                speaker: None,
                _listener: listener,
                status,
            });
        }
        let mut lab = Lab {
            client,
            nodes,
            bin,
            conf,
            _sw: sw,
        };
        for i in 0..lab.nodes.len() {
            lab.start_speaker(i);
        }
        Some(lab)
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .expect("known node")
    }

    fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("known node")
    }

    fn start_speaker(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let speaker = self
            .bin
            .clone()
            .speaker_standalone(&self.conf, n.name)
            .arg("--status-file")
            .arg(&n.status);
        n.speaker = Some(speaker.spawn_in(&n.ns, "speaker").expect("speaker starts"));
    }

    /// node name -> its MAC, for messages.
    fn who(&self, macs: &[String]) -> Vec<&'static str> {
        macs.iter()
            .map(|m| {
                self.nodes
                    .iter()
                    .find(|n| n.mac == *m)
                    .map_or("unknown", |n| n.name)
            })
            .collect()
    }

    /// The owner of `vip` of `service` as each running speaker reports it (status file).
    fn reported_owners(&self, service: &str, vip: &str) -> BTreeMap<&'static str, Option<String>> {
        self.nodes
            .iter()
            .filter(|n| n.speaker.is_some())
            .map(|n| {
                let owner = std::fs::read_to_string(&n.status)
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| {
                        v["l2"][service]["vips"][vip]["node"]
                            .as_str()
                            .map(str::to_owned)
                    });
                (n.name, owner)
            })
            .collect()
    }

    fn wait_all_report(&self, service: &str, vip: &str, owner: &str) {
        wait_until(
            CONVERGE,
            &format!("every speaker reports {owner} as owner of {vip}"),
            || self.reported_owners(service, vip),
            |m| m.values().all(|o| o.as_deref() == Some(owner)),
        );
    }

    fn arping(&self, vip: &str) -> Vec<String> {
        let ip: Ipv4Addr = vip.parse().expect("ipv4");
        self.client.arping("eth0", ip, 1).expect("arping runs")
    }

    fn ndisc(&self, vip: &str) -> Vec<String> {
        let ip: Ipv6Addr = vip.parse().expect("ipv6");
        self.client.ndisc("eth0", ip).expect("ndisc6 runs")
    }

    fn tcp(&self, vip: &str) -> String {
        let out = self
            .client
            .exec_unchecked(&["python3", "-c", CONNECT, vip, &PORT.to_string()])
            .expect("python3 runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n.speaker.as_ref().map(Daemon::log).unwrap_or_default();
                format!("--- {} ---\n{log}", n.name)
            })
            .collect()
    }

    /// Waits until `answers` (MACs of ARP/NDP replies) is exactly `owner`'s MAC.
    fn wait_only_answer(&self, what: &str, answers: impl FnMut() -> Vec<String>, owner: &str) {
        let mac = self.node(owner).mac.clone();
        let got = wait_until(CONVERGE, what, answers, |a| *a == [mac.clone()]);
        assert_eq!(self.who(&got), [owner]);
    }

    /// Checks the steady state with every speaker up.
    fn check_steady(&self) {
        self.wait_all_report("default/web", VIP4, OWNER4);
        self.wait_only_answer(
            "one ARP answer for the IPv4 VIP, from its owner",
            || self.arping(VIP4),
            OWNER4,
        );
        self.wait_only_answer(
            "one NA for the IPv6 VIP, from its owner",
            || self.ndisc(VIP6),
            OWNER6,
        );
        assert_eq!(self.tcp(VIP4), OWNER4, "TCP to the VIP reaches the owner");
        // ETP Local: only the node with the endpoint answers, though it ranks last.
        self.wait_only_answer(
            "one ARP answer for the Local VIP, from the node with the endpoint",
            || self.arping(VIP_LOCAL),
            OWNER_LOCAL,
        );
    }

    /// `node`'s `/metrics`, fetched inside its namespace (the speaker listens on its loopback).
    fn metrics(&self, node: &str) -> String {
        let n = self.node(node);
        let addr = n
            .speaker
            .as_ref()
            .expect("speaker running")
            .metrics_addr(CONVERGE)
            .expect("metrics address logged");
        let out =
            n.ns.exec(&[
                "curl",
                "-sS",
                "--max-time",
                "5",
                &format!("http://{addr}/metrics"),
            ])
            .expect("curl /metrics");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// MetalLB's per-IP Layer 2 counters after the steady-state checks (which sent ARP
    /// requests until one answer came): the owner counts the requests it answered and its
    /// gratuitous ARPs for the VIP; the other nodes have no series for it (they do not own it).
    fn check_layer2_counters(&self) {
        let value = |text: &str, family: &str| -> Option<u64> {
            let prefix = format!("{family}{{ip=\"{VIP4}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .and_then(|v| v.trim().parse().ok())
        };
        let owner = self.metrics(OWNER4);
        let requests = value(&owner, "metallb_layer2_requests_received");
        let responses = value(&owner, "metallb_layer2_responses_sent");
        assert!(requests.is_some_and(|n| n >= 1), "{owner}");
        assert_eq!(responses, requests, "every request answered:\n{owner}");
        assert!(
            value(&owner, "metallb_layer2_gratuitous_sent").is_some_and(|n| n >= 1),
            "{owner}"
        );
        for n in self.nodes.iter().filter(|n| n.name != OWNER4) {
            let text = self.metrics(n.name);
            assert!(
                text.contains("# TYPE metallb_layer2_requests_received counter"),
                "{text}"
            );
            assert_eq!(
                value(&text, "metallb_layer2_requests_received"),
                None,
                "{}: {text}",
                n.name
            );
        }
    }

    /// Kills the owner of VIP4, returns the time from the kill to the first echo request at
    /// the new owner, checks the state during the outage, restarts the killed speaker and
    /// waits for the steady state again.
    fn failover_trial(&mut self, trial: usize) -> Duration {
        let ping = self
            .client
            .spawn(
                &format!("ping-{trial}"),
                &["ping", "-n", "-i", "0.005", VIP4],
            )
            .expect("ping starts");
        // Traffic must be flowing to the owner before the kill.
        let owner_mac = self.node(OWNER4).mac.clone();
        let vip4: IpAddr = VIP4.parse().expect("ip");
        wait_for(CONVERGE, "client neighbour entry for the VIP", || {
            (self.client.neighbour_mac(vip4).ok().flatten() == Some(owner_mac.clone()))
                .then_some(())
        });
        let capture = |n: &Node| {
            // A log of its own per trial: Daemon logs append.
            n.ns.spawn(
                &format!("tshark-{trial}"),
                &[
                    "tshark",
                    "-n",
                    "-l",
                    "-i",
                    "eth0",
                    "-c",
                    "1",
                    "-f",
                    &format!("icmp and dst host {VIP4}"),
                    "-T",
                    "fields",
                    "-e",
                    "frame.time_epoch",
                    "-e",
                    "eth.dst",
                ],
            )
            .expect("tshark starts")
        };
        let next_mac = self.node(OWNER4_NEXT).mac.clone();
        let mut cap = capture(self.node(OWNER4_NEXT));
        wait_for(CONVERGE, "tshark capturing", || {
            cap.log().contains("Capturing on").then_some(())
        });
        let killed = self.index(OWNER4);
        let t0 = SystemTime::now();
        if let Some(s) = self.nodes[killed].speaker.as_mut() {
            s.kill();
        }
        self.nodes[killed].speaker = None;
        let first = wait_for(CONVERGE, "first echo request at the new owner", || {
            cap.log()
                .lines()
                .find_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        });
        let _ = cap.exit_status();
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(first);
        let took = t1.duration_since(t0).unwrap_or_else(|early| {
            panic!(
                "an echo request reached {OWNER4_NEXT} {:?} before the kill:\n{}",
                early.duration(),
                cap.log()
            )
        });

        // The gratuitous ARP moved the client's entry (traffic could not reach the new owner
        // otherwise, but check the cache itself too).
        wait_for(
            CONVERGE,
            "client neighbour entry moved to the new owner",
            || {
                (self.client.neighbour_mac(vip4).ok().flatten() == Some(next_mac.clone()))
                    .then_some(())
            },
        );
        drop(ping);
        let answers = self.arping(VIP4);
        assert_eq!(
            self.who(&answers),
            [OWNER4_NEXT],
            "one answer, from the new owner\n{}",
            self.logs()
        );
        assert_eq!(self.tcp(VIP4), OWNER4_NEXT, "TCP reaches the new owner");
        // ETP Local: the only node with an endpoint is gone, and the others never answer.
        assert_holds(
            Duration::from_secs(2),
            "no node without a local endpoint answers for the Local VIP",
            || self.arping(VIP_LOCAL),
            Vec::is_empty,
        );

        self.start_speaker(killed);
        self.check_steady();
        took
    }
}

fn report(samples: &mut [Duration]) {
    samples.sort();
    let pick = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    eprintln!(
        "l2 failover, SIGKILL of the owner's speaker -> first packet at the new owner, {} trials: p50 {:?}, p99 {:?}, max {:?}; all: {:?}",
        samples.len(),
        pick(0.5),
        pick(0.99),
        samples.last().copied().unwrap_or_default(),
        samples
    );
}

fn run_trials(n: usize) {
    let Some(mut lab) = Lab::start() else { return };
    lab.check_steady();
    lab.check_layer2_counters();
    let mut samples = Vec::new();
    for trial in 0..n {
        samples.push(lab.failover_trial(trial));
    }
    report(&mut samples);
    assert_eq!(samples.len(), n);
}

/// Exactly one answer from the elected node (ARP and NDP), TCP reaches it, ETP Local is
/// answered only where the endpoint is, and three SIGKILL failovers.
#[test]
fn layer2_three_nodes_one_answer_and_failover_on_sigkill() {
    run_trials(3);
}

/// The measurement of docs/l2.md: 20 failovers (about two minutes).
#[test]
#[ignore = "20 failovers take minutes; run by hand with --ignored --nocapture"]
fn layer2_failover_20_trials() {
    run_trials(20);
}
