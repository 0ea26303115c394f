//! Network namespaces, veth pairs and bridges made for one test.
//!
//! ```text
//!   Netns "flb-node-1f2e-0"              Netns "flb-rtr-1f2e-1"
//!     lo (up)                              lo (up)
//!     eth0 192.0.2.1/24  <-- veth -->      eth0 192.0.2.2/24
//!
//!   Switch "flb-sw-1f2e-2" (br0, no STP, no multicast snooping)
//!     p0 --veth-- node A eth1      p1 --veth-- node B eth1      p2 --veth-- client eth0
//! ```
//!
//! Names are `flb-<role>-<pid hex>-<n>` (pid of the test process plus a
//! process-wide counter), so tests running in parallel never collide. Nothing
//! links a namespace to the host's, and addresses must come from the
//! documentation, benchmarking, private or ULA ranges ([`check_lab_address`]).
//!
//! Cleanup (`Drop`, so it also runs while a failing test unwinds): every
//! process still in the namespace gets SIGTERM by PID, a bounded wait, then
//! SIGKILL; the namespace is deleted (its veth ends go with it) and FRR's
//! runtime directory `/var/run/frr/<name>` is removed. The scratch directory is
//! removed too, unless the thread is panicking or `FLB_E2E_KEEP=1` is set:
//! then its path (router configs and logs) is printed and kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipnet::IpNet;

use crate::process::{self, Daemon};
use crate::wait::Backoff;
use crate::Error;

/// Counter making namespace names unique within one test process.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// How long cleanup waits for processes to exit after SIGTERM.
const CLEANUP_GRACE: Duration = Duration::from_secs(3);

/// Attempts at finding a free name (a previous run killed with SIGKILL may
/// have left a namespace with a reused PID behind).
const NAME_ATTEMPTS: u32 = 16;

/// FRR's per-namespace runtime directories (vty sockets, pid files).
pub const FRR_RUN_DIR: &str = "/var/run/frr";

/// Addresses of the first namespace of [`Netns::pair`] (on `eth0`).
pub const PAIR_A: [&str; 2] = ["192.0.2.1/24", "fd00:db8::1/64"];
/// Addresses of the second namespace of [`Netns::pair`] (on `eth0`).
pub const PAIR_B: [&str; 2] = ["192.0.2.2/24", "fd00:db8::2/64"];

/// A network namespace owned by the test; removed on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    dir: Option<tempfile::TempDir>,
}

impl Netns {
    /// Creates `flb-<role>-<pid>-<n>` with `lo` up and IPv6 DAD off.
    ///
    /// `role` (e.g. "rtr", "node-a") only makes names readable in
    /// `ip netns list`; keep it short and alphanumeric.
    pub fn new(role: &str) -> Result<Netns, Error> {
        if role.is_empty()
            || role.len() > 12
            || !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Error::BadValue {
                field: "namespace role",
                value: role.to_owned(),
                reason: "1-12 characters of [A-Za-z0-9-]".to_owned(),
            });
        }
        let mut last_err = None;
        for _ in 0..NAME_ATTEMPTS {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let name = format!("flb-{role}-{:x}-{id}", std::process::id());
            match process::run(Command::new("ip").args(["netns", "add", &name])) {
                Ok(_) => return Netns::init(name),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::BadValue {
            field: "namespace role",
            value: role.to_owned(),
            reason: "no free name".to_owned(),
        }))
    }

    fn init(name: String) -> Result<Netns, Error> {
        // From here on Drop deletes the namespace, even if setup fails.
        let mut ns = Netns { name, dir: None };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}.", ns.name))
            .tempdir()
            .map_err(|source| Error::Io {
                op: "create scratch dir",
                path: std::env::temp_dir(),
                source,
            })?;
        // FRR drops privileges to user `frr` and must read its configs here.
        set_mode(dir.path(), 0o755)?;
        ns.dir = Some(dir);
        ns.ip(&["link", "set", "lo", "up"])?;
        // DAD would keep new IPv6 addresses "tentative" (unusable for bind)
        // for ~1 s; we assign unique addresses ourselves.
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])?;
        Ok(ns)
    }

    /// Two namespaces joined by a veth pair `eth0` <-> `eth0`, with the
    /// addresses of [`PAIR_A`] (first) and [`PAIR_B`] (second): the usual
    /// "speaker and router" lab.
    pub fn pair(role_a: &str, role_b: &str) -> Result<(Netns, Netns), Error> {
        let a = Netns::new(role_a)?;
        let b = Netns::new(role_b)?;
        a.veth("eth0", &PAIR_A, &b, "eth0", &PAIR_B)?;
        Ok((a, b))
    }

    /// The namespace's name (`ip netns exec <name> ...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scratch directory for this namespace's configs, sockets and logs.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or_else(|| Path::new("/nonexistent"), |d| d.path())
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `args` inside the namespace; a non-zero exit is an error.
    pub fn exec(&self, args: &[&str]) -> Result<Output, Error> {
        let (prog, rest) = split_args(args)?;
        process::run(self.command(prog).args(rest))
    }

    /// Runs `args` inside the namespace and returns the output whatever the
    /// exit status.
    pub fn exec_unchecked(&self, args: &[&str]) -> Result<Output, Error> {
        let (prog, rest) = split_args(args)?;
        process::run_unchecked(self.command(prog).args(rest))
    }

    /// Starts a long-running process inside the namespace; its output goes to
    /// `<dir>/<name>.log`. It is stopped when the returned [`Daemon`] drops
    /// (and at the latest when the namespace does).
    pub fn spawn(&self, name: &str, args: &[&str]) -> Result<Daemon, Error> {
        let (prog, rest) = split_args(args)?;
        let mut cmd = self.command(prog);
        cmd.args(rest);
        Daemon::spawn(name, cmd, &self.dir().join(format!("{name}.log")))
    }

    /// `ip -n <ns> <args>` (no fork of `ip netns exec`, same effect).
    pub fn ip(&self, args: &[&str]) -> Result<Output, Error> {
        process::run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Creates the Linux VRF device `name` (routing table `table`), sets it up and enslaves
    /// `members` to it. `Ok(false)` when the kernel has no VRF support (`ip` says "Unknown
    /// device type"), so a test can skip loudly instead of failing.
    pub fn vrf(&self, name: &str, table: u32, members: &[&str]) -> Result<bool, Error> {
        check_ifname(name)?;
        let out = self.ip_unchecked(&[
            "link",
            "add",
            name,
            "type",
            "vrf",
            "table",
            &table.to_string(),
        ])?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("Unknown device type") || err.contains("Not supported") {
                return Ok(false);
            }
            return self
                .ip(&[
                    "link",
                    "add",
                    name,
                    "type",
                    "vrf",
                    "table",
                    &table.to_string(),
                ])
                .map(|_| false);
        }
        self.ip(&["link", "set", name, "up"])?;
        for m in members {
            self.ip(&["link", "set", m, "master", name])?;
        }
        Ok(true)
    }

    fn ip_unchecked(&self, args: &[&str]) -> Result<Output, Error> {
        process::run_unchecked(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Adds `addrs` to `ifname` (IPv6 with `nodad`) and sets it up.
    pub fn add_addrs(&self, ifname: &str, addrs: &[&str]) -> Result<(), Error> {
        for a in addrs {
            let net = check_lab_address(a)?;
            let s = net.to_string();
            match net {
                IpNet::V4(_) => self.ip(&["addr", "add", &s, "dev", ifname])?,
                IpNet::V6(_) => self.ip(&["-6", "addr", "add", &s, "dev", ifname, "nodad"])?,
            };
        }
        self.ip(&["link", "set", ifname, "up"]).map(drop)
    }

    /// Creates a veth pair: `ifname` here with `addrs`, `peer_ifname` in
    /// `peer` with `peer_addrs`; both ends up. Addresses are CIDR strings
    /// ("192.0.2.1/24", "fd00:db8::1/64").
    pub fn veth(
        &self,
        ifname: &str,
        addrs: &[&str],
        peer: &Netns,
        peer_ifname: &str,
        peer_addrs: &[&str],
    ) -> Result<(), Error> {
        check_ifname(ifname)?;
        check_ifname(peer_ifname)?;
        for a in addrs.iter().chain(peer_addrs) {
            check_lab_address(a)?;
        }
        // Both ends are created directly in their namespaces (IFLA_NET_NS_FD),
        // so the names never exist in the host's namespace.
        process::run(Command::new("ip").args([
            "link",
            "add",
            ifname,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            peer_ifname,
            "netns",
            &peer.name,
        ]))?;
        self.add_addrs(ifname, addrs)?;
        peer.add_addrs(peer_ifname, peer_addrs)
    }

    /// Creates a bridge `name` in this namespace (STP and multicast snooping
    /// off, so ports forward at once and NDP multicast reaches every port).
    pub fn bridge(&self, name: &str) -> Result<(), Error> {
        check_ifname(name)?;
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        self.ip(&["link", "set", name, "up"]).map(drop)
    }

    /// The MAC address of `ifname` ("aa:bb:cc:dd:ee:ff").
    pub fn mac(&self, ifname: &str) -> Result<String, Error> {
        let out = self.ip(&["-j", "link", "show", "dev", ifname])?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse {
                router: "ip",
                query: format!("link show dev {ifname}"),
                reason: e.to_string(),
                excerpt: crate::error::excerpt(&String::from_utf8_lossy(&out.stdout), 200),
            })?;
        v.get(0)
            .and_then(|l| l.get("address"))
            .and_then(|a| a.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::Parse {
                router: "ip",
                query: format!("link show dev {ifname}"),
                reason: "no address field".to_owned(),
                excerpt: crate::error::excerpt(&String::from_utf8_lossy(&out.stdout), 200),
            })
    }

    /// One ping from this namespace to `addr` (1 s timeout): true if answered.
    pub fn ping(&self, addr: IpAddr) -> bool {
        let a = addr.to_string();
        self.exec(&["ping", "-c1", "-W1", "-n", "-q", &a]).is_ok()
    }

    /// The MAC address this namespace's neighbour cache (ARP/NDP) holds for
    /// `addr`, if any entry with a link-layer address exists.
    pub fn neighbour_mac(&self, addr: IpAddr) -> Result<Option<String>, Error> {
        let a = addr.to_string();
        let out = self.ip(&["-j", "neigh", "show", "to", &a])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .find_map(|e| e.get("lladdr").and_then(|m| m.as_str()))
            .map(str::to_owned))
    }

    /// Sends `count` ARP requests for `addr` out of `ifname` (Debian's
    /// `arping`, one per second) and returns the sender MAC of every reply
    /// (lowercase, in arrival order, duplicates kept: two nodes answering
    /// show up as two different MACs). No reply is an empty list.
    pub fn arping(&self, ifname: &str, addr: Ipv4Addr, count: u32) -> Result<Vec<String>, Error> {
        let (c, w, a) = (
            count.to_string(),
            count.saturating_add(1).to_string(),
            addr.to_string(),
        );
        let out = self.exec_unchecked(&["arping", "-c", &c, "-w", &w, "-I", ifname, &a])?;
        Ok(parse_arping(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Sends one Neighbor Solicitation for `addr` out of `ifname` (`ndisc6
    /// -m`, waiting 1 s for every answer) and returns the target link-layer
    /// address of each Neighbor Advertisement (lowercase).
    pub fn ndisc(&self, ifname: &str, addr: Ipv6Addr) -> Result<Vec<String>, Error> {
        let a = addr.to_string();
        let out =
            self.exec_unchecked(&["ndisc6", "-n", "-m", "-r", "1", "-w", "1000", &a, ifname])?;
        Ok(parse_ndisc6(&String::from_utf8_lossy(&out.stdout)))
    }

    /// PIDs of every process inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        namespace_pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        stop_all(&self.name);
        if let Err(e) = process::run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("ferrolb-e2e: could not delete namespace {}: {e}", self.name);
        }
        let frr = Path::new(FRR_RUN_DIR).join(&self.name);
        if frr.exists() {
            let _ = std::fs::remove_dir_all(&frr);
        }
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() || std::env::var_os("FLB_E2E_KEEP").is_some() {
                let kept: PathBuf = dir.keep();
                eprintln!(
                    "ferrolb-e2e: kept {} (configs and logs of {})",
                    kept.display(),
                    self.name
                );
            }
        }
    }
}

/// A "switch": a namespace holding bridge `br0`, with one veth port per
/// attached namespace (for Layer 2 tests: ARP/NDP between nodes and a client).
#[derive(Debug)]
pub struct Switch {
    ns: Netns,
    ports: u32,
}

impl Switch {
    /// The bridge's name inside the switch namespace.
    pub const BRIDGE: &'static str = "br0";

    /// Creates the switch namespace and its bridge.
    pub fn new() -> Result<Switch, Error> {
        let ns = Netns::new("sw")?;
        ns.bridge(Switch::BRIDGE)?;
        Ok(Switch { ns, ports: 0 })
    }

    /// Connects `node` to the bridge: `ifname` in `node` with `addrs`, the
    /// other end `p<n>` enslaved to `br0`. Returns the port's name.
    pub fn attach(&mut self, node: &Netns, ifname: &str, addrs: &[&str]) -> Result<String, Error> {
        let port = format!("p{}", self.ports);
        self.ports += 1;
        node.veth(ifname, addrs, &self.ns, &port, &[])?;
        self.ns
            .ip(&["link", "set", &port, "master", Switch::BRIDGE])?;
        Ok(port)
    }

    /// The switch's namespace (to run `tcpdump` on `br0`, say).
    pub fn netns(&self) -> &Netns {
        &self.ns
    }
}

/// Names of the harness's namespaces (`flb-` prefix) that exist now; tests use
/// it to prove cleanup.
pub fn list_flb_namespaces() -> Vec<String> {
    let Ok(out) = process::run(Command::new("ip").args(["netns", "list"])) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("flb-"))
        .map(str::to_owned)
        .collect()
}

/// Accepts an address for use inside a lab namespace only if it is from a
/// range that can never be someone's real address: IPv4 documentation
/// (RFC 5737), benchmarking (RFC 2544), private (RFC 1918), loopback; IPv6
/// documentation (RFC 3849), ULA (RFC 4193), link-local, loopback.
pub fn check_lab_address(cidr: &str) -> Result<IpNet, Error> {
    let net: IpNet = cidr
        .parse()
        .map_err(|e: ipnet::AddrParseError| Error::BadValue {
            field: "address",
            value: cidr.to_owned(),
            reason: format!("{e} (want CIDR such as 192.0.2.1/24)"),
        })?;
    let ok = match net.addr() {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || matches!(o, [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _])
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
        }
    };
    if ok {
        Ok(net)
    } else {
        Err(Error::BadValue {
            field: "address",
            value: cidr.to_owned(),
            reason: "not a documentation, benchmarking, private or ULA address".to_owned(),
        })
    }
}

/// MACs from `arping` lines such as
/// `42 bytes from c6:a9:c9:7e:cf:66 (192.0.2.2): index=0 time=13.716 usec`.
fn parse_arping(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_once(" bytes from "))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// MACs from `ndisc6` lines such as `Target link-layer address: C6:A9:C9:7E:CF:66`.
fn parse_ndisc6(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Target link-layer address:"))
        .map(|m| m.trim().to_ascii_lowercase())
        .collect()
}

fn check_ifname(name: &str) -> Result<(), Error> {
    // IFNAMSIZ is 16 including the NUL.
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
        return Err(Error::BadValue {
            field: "interface name",
            value: name.to_owned(),
            reason: "1-15 characters, no '/', ':' or spaces".to_owned(),
        });
    }
    Ok(())
}

fn split_args<'a>(args: &'a [&'a str]) -> Result<(&'a str, &'a [&'a str]), Error> {
    args.split_first()
        .map(|(p, r)| (*p, r))
        .ok_or_else(|| Error::BadValue {
            field: "command",
            value: String::new(),
            reason: "empty argument list".to_owned(),
        })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::Io {
            op: "chmod",
            path: path.to_owned(),
            source,
        }
    })
}

fn namespace_pids(name: &str) -> Vec<u32> {
    process::run(Command::new("ip").args(["netns", "pids", name]))
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// SIGTERM every process in the namespace (by PID), wait up to
/// [`CLEANUP_GRACE`] for them to go, SIGKILL what is left.
fn stop_all(name: &str) {
    let pids = namespace_pids(name);
    if pids.is_empty() {
        return;
    }
    for &p in &pids {
        // A frozen process would never act on TERM.
        let _ = process::signal(p, "CONT");
        let _ = process::signal(p, "TERM");
    }
    let step = Duration::from_millis(20);
    let mut backoff = Backoff::with_steps(CLEANUP_GRACE, step, step);
    while !namespace_pids(name).is_empty() && backoff.pause() {}
    for p in namespace_pids(name) {
        let _ = process::signal(p, "KILL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_addresses_are_accepted() {
        for a in [
            "192.0.2.1/24",
            "198.51.100.7/32",
            "203.0.113.9/32",
            "10.1.2.3/8",
            "198.18.0.1/15",
            "fd00:db8::1/64",
            "2001:db8::1/128",
            "fe80::1/64",
        ] {
            assert!(check_lab_address(a).is_ok(), "{a}");
        }
    }

    #[test]
    fn real_world_addresses_and_garbage_are_refused() {
        for a in [
            "8.8.8.8/32",
            "2606:4700::1/128",
            "1.1.1.1/24",
            "192.0.2.1",
            "nonsense",
        ] {
            assert!(check_lab_address(a).is_err(), "{a}");
        }
    }

    #[test]
    fn arping_and_ndisc6_replies_yield_lowercase_macs() {
        let arping = "ARPING 192.0.2.2\n\
            42 bytes from c6:a9:c9:7e:cf:66 (192.0.2.2): index=0 time=13.716 usec\n\
            42 bytes from 02:00:00:00:00:01 (192.0.2.2): index=1 time=8.315 usec\n\n\
            --- 192.0.2.2 statistics ---\n";
        assert_eq!(
            parse_arping(arping),
            vec!["c6:a9:c9:7e:cf:66", "02:00:00:00:00:01"]
        );
        assert!(parse_arping("ARPING 192.0.2.9\nTimeout\n").is_empty());
        let nd = "Soliciting fd00::2 (fd00::2) on e0...\n\
            Target link-layer address: C6:A9:C9:7E:CF:66\n from fd00::2\n";
        assert_eq!(parse_ndisc6(nd), vec!["c6:a9:c9:7e:cf:66"]);
        assert!(parse_ndisc6("Timed out.\nNo response.\n").is_empty());
    }

    #[test]
    fn interface_names_longer_than_ifnamsiz_are_refused() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        assert!(check_ifname("").is_err());
    }
}
