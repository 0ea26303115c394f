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

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use ferrolb_arp::filter::accept_all;
use ferrolb_arp::sys::{register, PacketSocket};
use ferrolb_arp::wire::{
    encode_frame, parse_frame, EtherType, EthernetHeader, Frame, Ipv6Header, MacAddr, NdpMessage,
    NdpOption, NeighborSolicitation,
};
use ferrolb_arp::{CounterSnapshot, InterfaceState, Responder, ResponderConfig};

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

/// The responder running in its namespace; `stop` ends it and returns its counters.
struct Running {
    mac: MacAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<CounterSnapshot>,
}

impl Running {
    fn stop(self) -> CounterSnapshot {
        let _ = self.stop.send(());
        self.thread.join().expect("responder thread")
    }
}

fn start_responder(lab: &Lab) -> Running {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let iface = lab.resp_if.clone();
    let vips: BTreeSet<IpAddr> = [IpAddr::V4(lab.vip4), IpAddr::V6(lab.vip6)].into();
    let thread = in_netns(&lab.resp_ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let responder = Responder::spawn(ResponderConfig::default());
            let mut states = responder.interfaces();
            responder.set_vips([(iface.clone(), vips.clone())].into());
            let serving = tokio::time::timeout(
                Duration::from_secs(10),
                states.wait_for(|m| {
                    matches!(m.get(&iface), Some(InterfaceState::Serving { vips: v, .. }) if *v == vips)
                }),
            )
            .await;
            let mac = match serving {
                Ok(Ok(states)) => match states.get(&iface) {
                    Some(InterfaceState::Serving { mac, .. }) => Some(*mac),
                    _ => None,
                },
                _ => None,
            };
            let _ = ready_tx.send(mac);
            let _ = stop_rx.await;
            let counters = responder.counters();
            responder.shutdown().await;
            counters
        })
    });
    let mac = ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("responder reported")
        .expect("responder serving within 10 s");
    Running { mac, stop, thread }
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
    let responder = start_responder(&lab);
    let mac = responder.mac.to_string();

    // arping 2.x (Habets): one request, wait up to 3 s for replies.
    let out = run(&[
        "ip",
        "netns",
        "exec",
        &lab.client_ns,
        "arping",
        "-c",
        "1",
        "-w",
        "3",
        "-i",
        &lab.client_if,
        &lab.vip4.to_string(),
    ]);
    let arping = text(&out);
    let answers: Vec<&str> = arping
        .lines()
        .filter(|l| l.contains("bytes from"))
        .collect();
    assert_eq!(answers.len(), 1, "arping output:\n{arping}");
    assert!(
        answers.iter().all(|l| l.to_lowercase().contains(&mac)),
        "answer not from {mac}:\n{arping}"
    );

    // ndisc6 -m: print every advertisement received within the wait, one solicitation.
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
    let ndisc = text(&out);
    let answers: Vec<&str> = ndisc
        .lines()
        .filter(|l| l.contains("link-layer address"))
        .collect();
    assert_eq!(answers.len(), 1, "ndisc6 output:\n{ndisc}");
    assert!(
        answers.iter().all(|l| l.to_lowercase().contains(&mac)),
        "answer not from {mac}:\n{ndisc}"
    );

    let counters = responder.stop();
    assert!(counters.arp_replies >= 1, "{counters:?}");
    assert!(counters.na_replies >= 1, "{counters:?}");
    assert!(counters.announcements >= 1, "{counters:?}");
    assert_eq!(counters.dropped_bad_frame, 0, "{counters:?}");
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
    let responder = start_responder(&lab);
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
                        if na.target == vip6 {
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
