//! Root-only: the responder answers real `arping` and `ndisc6` (and a hand-made unicast NUD
//! probe) across a veth pair between two network namespaces made for the test.
//!
//! ```text
//!   netns <p>r (responder)                 netns <p>c (client)
//!   v<p>r 10.<n>.0.1/24 fd00:<n>::1/64 ──── v<p>c 10.<n>.0.2/24 fd00:<n>::2/64
//!   VIPs 10.<n>.0.100, fd00:<n>::100 answered by the Responder only (on no interface)
//! ```
//! Skips loudly when not root or when `ip`, `arping` or `ndisc6` is missing. Every namespace
//! made is deleted by a `Drop` guard, on success, failure and panic alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use ferrolb_arp::filter::accept_all;
use ferrolb_arp::iface::{list_interfaces, select_interfaces, InterfaceSelection};
use ferrolb_arp::sys::{register, PacketSocket};
use ferrolb_arp::wire::{
    encode_frame, parse_frame, EtherType, EthernetHeader, Frame, Ipv6Header, MacAddr, NdpMessage,
    NdpOption, NeighborSolicitation,
};
use ferrolb_arp::{CounterSnapshot, InterfaceState, Responder, ResponderConfig, VipCounts};

/// Deletes the namespaces it names when dropped.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            // Deleting a namespace also deletes the veth end inside it, and with it the peer.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    out
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, AF_PACKET)".into());
    }
    ["ip", "arping", "ndisc6"]
        .into_iter()
        .find(|t| !have(t))
        .map(|t| format!("needs `{t}` on PATH"))
}

/// Runs `f` on a fresh thread that has entered netns `ns` (setns(2) affects only the calling
/// thread, so the test's other threads stay in the root namespace).
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: `file` is an open netns file; setns only switches this thread's namespace.
        let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(ret, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

struct Lab {
    _guard: Namespaces,
    resp_ns: String,
    client_ns: String,
    resp_if: String,
    client_if: String,
    vip4: Ipv4Addr,
    vip6: Ipv6Addr,
    client6: Ipv6Addr,
}

/// Builds the two namespaces and the veth pair. `n` keeps concurrent tests' subnets apart.
fn lab(n: u8) -> Lab {
    let tag = format!("{}{n}", std::process::id() % 100_000);
    let (resp_ns, client_ns) = (format!("flb{tag}r"), format!("flb{tag}c"));
    let (resp_if, client_if) = (format!("v{tag}r"), format!("v{tag}c"));
    let guard = Namespaces(vec![resp_ns.clone(), client_ns.clone()]);
    for ns in [&resp_ns, &client_ns] {
        must(&["ip", "netns", "add", ns]);
        // No DAD, so link-local and global addresses are usable at once (ndisc6 needs one).
        must(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ]);
        must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    must(&[
        "ip", "-n", &resp_ns, "link", "add", &resp_if, "type", "veth", "peer", "name", &client_if,
        "netns", &client_ns,
    ]);
    let client6: Ipv6Addr = format!("fd00:{n}::2").parse().expect("addr");
    for (ns, dev, host) in [(&resp_ns, &resp_if, 1), (&client_ns, &client_if, 2)] {
        must(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("10.{n}.0.{host}/24"),
            "dev",
            dev,
        ]);
        must(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("fd00:{n}::{host}/64"),
            "dev",
            dev,
            "nodad",
        ]);
        must(&["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    for (ns, dev) in [(&resp_ns, &resp_if), (&client_ns, &client_if)] {
        wait_ipv6_ready(ns, dev);
    }
    Lab {
        _guard: guard,
        vip4: format!("10.{n}.0.100").parse().expect("addr"),
        vip6: format!("fd00:{n}::100").parse().expect("addr"),
        client6,
        resp_ns,
        client_ns,
        resp_if,
        client_if,
    }
}

enum Cmd {
    /// Apply these VIPs on the lab interface; reply once served (the MAC), `None` on timeout.
    Set(BTreeSet<IpAddr>, mpsc::Sender<Option<MacAddr>>),
}

/// Waits until IPv6 on `dev` is configured: Linux adds the ff00::/8 multicast route only when
/// linkwatch reports the carrier (up to a second after `link set up`); before that, NAs to
/// all-nodes are dropped as "no route". There is no event for it that `ip` can wait on in one
/// command, so this polls the route table, bounded by a 10 s deadline.
fn wait_ipv6_ready(ns: &str, dev: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let routes = text(&run(&[
            "ip", "-n", ns, "-6", "route", "show", "table", "local", "dev", dev,
        ]));
        if routes.contains("ff00::/8") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{ns}/{dev}: IPv6 not configured within 10 s");
}

/// The responder running on a thread in its namespace; commands go over a channel.
struct Running {
    mac: MacAddr,
    cmds: tokio::sync::mpsc::Sender<Cmd>,
    thread: std::thread::JoinHandle<(CounterSnapshot, BTreeMap<IpAddr, VipCounts>)>,
}

impl Running {
    /// Sets the VIPs and waits (up to 10 s) until the interface task serves exactly them.
    fn set(&self, vips: BTreeSet<IpAddr>) -> MacAddr {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .blocking_send(Cmd::Set(vips, tx))
            .expect("responder alive");
        rx.recv_timeout(Duration::from_secs(20))
            .expect("responder replied")
            .expect("served within 10 s")
    }

    /// Stops the responder and returns its final counters.
    fn stop(self) -> CounterSnapshot {
        self.stop_with_vip_counts().0
    }

    /// Stops the responder and returns its final counters, and those per VIP.
    fn stop_with_vip_counts(self) -> (CounterSnapshot, BTreeMap<IpAddr, VipCounts>) {
        drop(self.cmds);
        self.thread.join().expect("responder thread")
    }
}

fn start_responder(lab: &Lab, vips: BTreeSet<IpAddr>) -> Running {
    let (cmds, mut cmd_rx) = tokio::sync::mpsc::channel::<Cmd>(4);
    let iface = lab.resp_if.clone();
    let thread = in_netns(&lab.resp_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let responder = Responder::spawn(ResponderConfig::default());
            let mut states = responder.interfaces();
            // Bounded by the test: ends when the command sender is dropped.
            while let Some(Cmd::Set(vips, reply)) = cmd_rx.recv().await {
                responder.set_vips([(iface.clone(), vips.clone())].into());
                // Served: the interface task reports exactly these VIPs. (An empty set has no
                // interface task; report the last MAC seen by checking the entry is gone.)
                let served = tokio::time::timeout(
                    Duration::from_secs(10),
                    states.wait_for(|m| match m.get(&iface) {
                        Some(InterfaceState::Serving { vips: v, .. }) => *v == vips,
                        None => vips.is_empty(),
                        _ => false,
                    }),
                )
                .await;
                let mac = match served {
                    Ok(Ok(states)) => match states.get(&iface) {
                        Some(InterfaceState::Serving { mac, .. }) => Some(*mac),
                        _ => Some(MacAddr::ZERO),
                    },
                    _ => None,
                };
                let _ = reply.send(mac);
            }
            let counters = responder.counters();
            let per_vip = responder.vip_counts().read();
            responder.shutdown().await;
            (counters, per_vip)
        })
    });
    let mut running = Running {
        mac: MacAddr::ZERO,
        cmds,
        thread,
    };
    running.mac = running.set(vips);
    running
}

fn both_vips(lab: &Lab) -> BTreeSet<IpAddr> {
    [IpAddr::V4(lab.vip4), IpAddr::V6(lab.vip6)].into()
}

/// `arping` from the client: the answer lines ("60 bytes from <mac> (<ip>): ...").
fn arping(lab: &Lab) -> (Vec<String>, String) {
    // arping 2.x (Habets): one request, exit after 2 s regardless.
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.client_ns,
        "arping",
        "-c",
        "1",
        "-w",
        "2",
        "-i",
        &lab.client_if,
        &lab.vip4.to_string(),
    ]);
    let all = text(&out);
    let answers = all
        .lines()
        .filter(|l| l.contains("bytes from"))
        .map(|l| l.to_lowercase())
        .collect();
    (answers, all)
}

/// `ndisc6 -m` from the client: every advertisement received within the wait, one NS.
fn ndisc6(lab: &Lab) -> (Vec<String>, String) {
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.client_ns,
        "ndisc6",
        "-m",
        "-n",
        "-r",
        "1",
        "-w",
        "1500",
        &lab.vip6.to_string(),
        &lab.client_if,
    ]);
    let all = text(&out);
    let answers = all
        .lines()
        .filter(|l| l.contains("link-layer address"))
        .map(|l| l.to_lowercase())
        .collect();
    (answers, all)
}

/// Follows `ip monitor neigh` in the client namespace; killed (by its own handle) on drop.
struct NeighMonitor {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl NeighMonitor {
    fn start(ns: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("ip")
            .args(["-n", ns, "monitor", "neigh"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ip monitor");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Ends at EOF, when the child is killed.
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NeighMonitor { child, lines }
    }

    /// Waits up to `within` for a line mentioning all of `words`.
    fn wait_for(&self, words: &[&str], within: Duration) -> Result<String, Vec<String>> {
        let deadline = std::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if words.iter().all(|w| line.to_lowercase().contains(w)) => {
                    return Ok(line)
                }
                Ok(line) => seen.push(line),
                Err(_) => return Err(seen),
            }
        }
    }
}

impl Drop for NeighMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn arping_and_ndisc6_get_exactly_one_answer_with_the_responders_mac() {
    if let Some(reason) = skip_reason() {
        eprintln!(
            "SKIPPED arping_and_ndisc6_get_exactly_one_answer_with_the_responders_mac: {reason}"
        );
        return;
    }
    let lab = lab(71);
    let responder = start_responder(&lab, both_vips(&lab));
    let mac = responder.mac.to_string();

    let (answers, out) = arping(&lab);
    assert_eq!(answers.len(), 1, "arping output:\n{out}");
    assert!(
        answers.iter().all(|l| l.contains(&mac)),
        "not from {mac}:\n{out}"
    );

    let (answers, out) = ndisc6(&lab);
    assert_eq!(answers.len(), 1, "ndisc6 output:\n{out}");
    assert!(
        answers.iter().all(|l| l.contains(&mac)),
        "not from {mac}:\n{out}"
    );

    let (counters, per_vip) = responder.stop_with_vip_counts();
    assert!(counters.arp_replies >= 1, "{counters:?}");
    assert!(counters.na_replies >= 1, "{counters:?}");
    assert!(counters.announcements >= 1, "{counters:?}");
    assert_eq!(counters.dropped_bad_frame, 0, "{counters:?}");
    // MetalLB's per-IP counters: arping's one request, answered once; the NS answered too
    // (the client's kernel may solicit the VIP on its own as well, so at least once).
    let v4 = per_vip
        .get(&IpAddr::V4(lab.vip4))
        .copied()
        .unwrap_or_default();
    assert_eq!(
        (v4.requests_received, v4.responses_sent),
        (1, 1),
        "{per_vip:?}"
    );
    assert!(v4.gratuitous_sent >= 1, "{per_vip:?}");
    let v6 = per_vip
        .get(&IpAddr::V6(lab.vip6))
        .copied()
        .unwrap_or_default();
    assert!(v6.requests_received >= 1, "{per_vip:?}");
    assert_eq!(v6.responses_sent, v6.requests_received, "{per_vip:?}");
    assert!(v6.gratuitous_sent >= 1, "{per_vip:?}");
}

#[test]
fn a_unicast_nud_probe_without_source_link_layer_option_is_answered() {
    if let Some(reason) = skip_reason() {
        eprintln!(
            "SKIPPED a_unicast_nud_probe_without_source_link_layer_option_is_answered: {reason}"
        );
        return;
    }
    let lab = lab(72);
    let responder = start_responder(&lab, both_vips(&lab));
    let resp_mac = responder.mac;
    let (client_if, client6, vip6) = (lab.client_if.clone(), lab.client6, lab.vip6);

    // From the client namespace: a raw NS unicast to the VIP at the responder's MAC, with no
    // SLLA option (RFC 4861 §7.3.1 NUD probe; MetalLB bug #2920), then wait for the NA.
    let probe = in_netns(&lab.client_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let socket = PacketSocket::open(&client_if, &accept_all()).expect("client socket");
            let client_mac = socket.mac();
            let ns = Frame::Ndp {
                eth: EthernetHeader {
                    dst: resp_mac,
                    src: client_mac,
                    ethertype: EtherType::IPV6,
                },
                ip: Ipv6Header {
                    traffic_class: 0,
                    flow_label: 0,
                    hop_limit: 255,
                    src: client6,
                    dst: vip6,
                },
                msg: NdpMessage::NeighborSolicitation(NeighborSolicitation {
                    code: 0,
                    target: vip6,
                    options: vec![],
                }),
            };
            let fd = register(socket).expect("register");
            fd.get_ref().send(&encode_frame(&ns)).expect("send NS");
            let mut buf = vec![0u8; 2048];
            let wait = async {
                // Bounded by the timeout below; each pass consumes one received frame.
                loop {
                    let mut guard = fd.readable().await.expect("readable");
                    let Ok(Ok(got)) = guard.try_io(|s| s.get_ref().recv(&mut buf)) else {
                        continue;
                    };
                    let bytes = buf.get(..got.len.min(buf.len())).unwrap_or_default();
                    if let Ok(Frame::Ndp {
                        eth,
                        ip,
                        msg: NdpMessage::NeighborAdvertisement(na),
                    }) = parse_frame(bytes)
                    {
                        // Skip the unsolicited NAs still being announced to all-nodes.
                        if na.target == vip6 && ip.dst == client6 {
                            return (client_mac, eth, ip, na);
                        }
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .expect("an NA within 5 s")
        })
    });
    let (client_mac, eth, ip, na) = probe.join().expect("probe thread");
    // RFC 4861 §7.2.4: solicited, override, unicast to the solicitor, from our MAC.
    assert_eq!(eth.src, resp_mac);
    assert_eq!(eth.dst, client_mac);
    assert_eq!((ip.src, ip.dst, ip.hop_limit), (vip6, client6, 255));
    assert!(na.solicited && na.override_flag && !na.router, "{na:?}");
    assert_eq!(na.options, vec![NdpOption::TargetLinkLayer(resp_mac)]);

    let counters = responder.stop();
    assert!(counters.na_replies >= 1, "{counters:?}");
}

#[test]
fn gaining_a_vip_updates_neighbour_caches_and_losing_it_stops_answers() {
    if let Some(reason) = skip_reason() {
        eprintln!(
            "SKIPPED gaining_a_vip_updates_neighbour_caches_and_losing_it_stops_answers: {reason}"
        );
        return;
    }
    let lab = lab(73);
    // The client believes the VIPs are at an old MAC (the node that just died). `ip monitor`
    // subscribes some time after it starts, so the entries are re-made until the monitor
    // reports them: then it is known to see everything that follows.
    let monitor = NeighMonitor::start(&lab.client_ns);
    let old = "02:00:00:00:de:ad";
    for vip in [lab.vip4.to_string(), lab.vip6.to_string()] {
        let mut seen = Err(Vec::new());
        for _ in 0..50 {
            must(&["ip", "-n", &lab.client_ns, "neigh", "flush", "to", &vip]);
            must(&[
                "ip",
                "-n",
                &lab.client_ns,
                "neigh",
                "replace",
                &vip,
                "lladdr",
                old,
                "dev",
                &lab.client_if,
                "nud",
                "stale",
            ]);
            seen = monitor.wait_for(&[&vip, old], Duration::from_millis(200));
            if seen.is_ok() {
                break;
            }
        }
        assert!(seen.is_ok(), "monitor never saw the old entry of {vip}");
    }
    let responder = start_responder(&lab, both_vips(&lab));
    let mac = responder.mac.to_string();

    // The announcements alone (no client traffic) move both entries to our MAC: gratuitous
    // ARP (RFC 5227 §3, RFC 5944 §4.6) and unsolicited NA with Override (RFC 4861 §7.2.6).
    for vip in [lab.vip4.to_string(), lab.vip6.to_string()] {
        let seen = monitor.wait_for(&[&vip, &mac], Duration::from_secs(5));
        if let Err(lines) = seen {
            // Diagnostics only on failure: the table and the kernel's IPv6/ICMPv6 counters.
            let table = text(&run(&["ip", "-n", &lab.client_ns, "neigh", "show"]));
            let stats = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.client_ns,
                    "nstat",
                    "-az",
                    "Icmp6*",
                    "Ip6In*",
                ])
                .output()
                .map(|o| text(&o))
                .unwrap_or_default();
            panic!("no neighbour update of {vip} to {mac}: {lines:?}\n{table}\n{stats}");
        }
    }

    // Withdraw every VIP: the interface task ends and nothing answers any more.
    responder.set(BTreeSet::new());
    let (answers, out) = arping(&lab);
    assert!(answers.is_empty(), "answered after withdrawal:\n{out}");
    let (answers, out) = ndisc6(&lab);
    assert!(answers.is_empty(), "answered after withdrawal:\n{out}");

    let counters = responder.stop();
    assert!(counters.announcements >= 3, "{counters:?}");
}

#[test]
fn with_the_vip_on_loopback_and_arp_ignore_only_the_responder_answers_and_tcp_connects() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED with_the_vip_on_loopback_and_arp_ignore_only_the_responder_answers_and_tcp_connects: {reason}");
        return;
    }
    let lab = lab(74);
    // As kube-proxy in IPVS mode: the node accepts traffic for the VIP, but arp_ignore=1 stops
    // the kernel answering ARP for an address not on the receiving interface.
    must(&[
        "ip",
        "netns",
        "exec",
        &lab.resp_ns,
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.arp_ignore=1",
    ]);
    must(&[
        "ip",
        "-n",
        &lab.resp_ns,
        "addr",
        "add",
        &format!("{}/32", lab.vip4),
        "dev",
        "lo",
    ]);
    let responder = start_responder(&lab, both_vips(&lab));
    let mac = responder.mac.to_string();

    let (answers, out) = arping(&lab);
    assert_eq!(answers.len(), 1, "arping output:\n{out}");
    assert!(
        answers.iter().all(|l| l.contains(&mac)),
        "not from {mac}:\n{out}"
    );

    // A TCP connection from the client to the VIP reaches a listener in the node's namespace.
    let vip4 = lab.vip4;
    let (port_tx, port_rx) = mpsc::channel();
    let server = in_netns(&lab.resp_ns, move || {
        let listener = std::net::TcpListener::bind((vip4, 0)).expect("bind VIP");
        let _ = port_tx.send(listener.local_addr().expect("addr").port());
        // Bounded: the client connects or fails within its timeout, then we are woken either
        // way by the connection attempt or by the test ending (thread detached on failure).
        let (mut conn, _) = listener.accept().expect("accept");
        std::io::Write::write_all(&mut conn, b"ferrolb").expect("write");
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("listening");
    let client = in_netns(&lab.client_ns, move || {
        let mut conn = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from((vip4, port)),
            Duration::from_secs(5),
        )?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut got = String::new();
        std::io::Read::read_to_string(&mut conn, &mut got)?;
        Ok::<_, std::io::Error>(got)
    });
    let got = client.join().expect("client thread");
    assert_eq!(got.as_deref().ok(), Some("ferrolb"), "{got:?}");
    server.join().expect("server thread");
    responder.stop();
}

#[test]
fn interface_listing_and_selection_see_the_namespace_of_the_calling_thread() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED interface_listing_and_selection_see_the_namespace_of_the_calling_thread: {reason}");
        return;
    }
    let lab = lab(75);
    let interfaces = in_netns(&lab.resp_ns, list_interfaces)
        .join()
        .expect("lister thread")
        .expect("getifaddrs");
    let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["lo", lab.resp_if.as_str()], "{interfaces:?}");
    let veth = interfaces
        .iter()
        .find(|i| i.name == lab.resp_if)
        .expect("veth");
    assert!(!veth.loopback);
    for net in ["10.75.0.1/24", "fd00:75::1/64"] {
        let net: ipnet::IpNet = net.parse().expect("net");
        assert!(veth.addrs.contains(&net), "{net} missing from {veth:?}");
    }
    assert!(interfaces.iter().any(|i| i.name == "lo" && i.loopback));

    let every_one = InterfaceSelection::default();
    for vip in [IpAddr::V4(lab.vip4), IpAddr::V6(lab.vip6)] {
        assert_eq!(
            select_interfaces(vip, &interfaces, &every_one),
            [lab.resp_if.clone()].into(),
            "{vip}"
        );
    }
    // As MetalLB: without `interfaces`, every interface that can answer does, whatever its
    // subnets; loopback never.
    let elsewhere: IpAddr = "203.0.113.9".parse().expect("addr");
    assert_eq!(
        select_interfaces(elsewhere, &interfaces, &every_one),
        [lab.resp_if.clone()].into()
    );
    assert!(
        veth.up && veth.broadcast && !veth.noarp && !veth.enslaved,
        "{veth:?}"
    );
}
