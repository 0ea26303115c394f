//! Real BGP routers (FRR, BIRD2, GoBGP, ExaBGP) run inside a [`Netns`], with
//! one interface to configure, query and disturb them.
//!
//! Lifecycle: `start` writes the configuration into the namespace's scratch
//! directory, starts the daemon(s) and returns once the router's CLI answers
//! (at most [`READY_TIMEOUT`]). Queries go through the router's own CLI
//! (JSON where it has it). Dropping the router stops its processes.
//!
//! Guarantees: what [`Router::routes`] returns is the router's own view,
//! normalized (prefixes sorted, communities as "65000:1", large communities as
//! "65000:1:2", next hops of every path the router selected for forwarding).
//! Assumptions: the daemons are the Debian bookworm packages (frr 8.4, bird2
//! 2.0.12, gobgpd 3.10, exabgp 4.2). Caveats: CLIs have no events, so tests
//! poll with [`crate::wait_for`]; BIRD reports eBGP routes with its default
//! local preference 100 where FRR and GoBGP report none.

mod bird;
mod exabgp;
mod frr;
mod gobgp;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

pub use bird::Bird;
pub use exabgp::ExaBgp;
pub use frr::Frr;
pub use gobgp::GoBgp;

use crate::{Daemon, Error, Netns};

/// How long `start` waits for a router's CLI to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// An address family (unicast only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Af {
    /// IPv4 unicast (AFI 1, SAFI 1).
    V4,
    /// IPv6 unicast (AFI 2, SAFI 1), carried in MP_REACH_NLRI (RFC 4760).
    V6,
}

impl Af {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Af {
        match addr {
            IpAddr::V4(_) => Af::V4,
            IpAddr::V6(_) => Af::V6,
        }
    }
}

/// A BGP session state, with the RFC 4271 §8.2.2 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Idle (also: the router does not run, or the peer is administratively down).
    Idle,
    /// Connect.
    Connect,
    /// Active.
    Active,
    /// OpenSent.
    OpenSent,
    /// OpenConfirm.
    OpenConfirm,
    /// Established.
    Established,
}

impl SessionState {
    /// Maps a router's spelling ("Established", "ESTABLISHED", "OpenSent",
    /// "Clearing", ...) to a state; anything unknown is `Idle`.
    pub fn from_name(s: &str) -> SessionState {
        match s.to_ascii_lowercase().as_str() {
            "established" | "up" => SessionState::Established,
            "openconfirm" => SessionState::OpenConfirm,
            "opensent" => SessionState::OpenSent,
            "active" => SessionState::Active,
            "connect" => SessionState::Connect,
            _ => SessionState::Idle,
        }
    }
}

/// One neighbor in a [`RouterConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's AS (equal to the local AS: iBGP).
    pub remote_as: u32,
    /// Wait for the peer to connect, never connect out.
    pub passive: bool,
    /// TCP MD5 signature password (RFC 2385) on both the listening and the
    /// connecting socket.
    pub md5_password: Option<String>,
    /// eBGP multihop TTL; `None` means directly connected.
    pub ebgp_multihop: Option<u8>,
    /// The peer's TCP port, when it is not 179.
    pub port: Option<u16>,
    /// Our source address toward the peer (required by ExaBGP).
    pub local_address: Option<IpAddr>,
    /// Families to activate; defaults to the family of `address`.
    pub families: Vec<Af>,
    /// Hold time in seconds (keepalive = hold / 3); `None`: the router's default.
    pub hold_time: Option<u16>,
    /// Unnumbered over this interface (FRR's `neighbor IF interface remote-as external`;
    /// `address` is then unused). FRR only.
    pub interface: Option<String>,
    /// FRR only: the neighbor is a route-reflector client (RFC 4456): routes from other
    /// internal peers are reflected to it (by default only the best path of each prefix).
    pub reflector_client: bool,
    /// FRR only: the neighbor is sent every path of a prefix, not only the best (ADD-PATH,
    /// RFC 7911 `addpath-tx-all-paths`), so it can keep them all for (weighted) ECMP.
    pub add_path_tx_all: bool,
}

impl Neighbor {
    /// An active neighbor with the family of its address and no options.
    pub fn new(address: IpAddr, remote_as: u32) -> Neighbor {
        Neighbor {
            address,
            remote_as,
            passive: false,
            md5_password: None,
            ebgp_multihop: None,
            port: None,
            local_address: None,
            families: vec![Af::of(address)],
            hold_time: None,
            reflector_client: false,
            add_path_tx_all: false,
            interface: None,
        }
    }

    /// An unnumbered eBGP neighbor on `ifname` of any AS but ours (FRR's `neighbor IF
    /// interface remote-as external`), IPv4 and IPv6 activated. FRR finds the peer's
    /// link-local address from the Router Advertisements on the link and sends its own.
    pub fn unnumbered(ifname: &str) -> Neighbor {
        Neighbor {
            interface: Some(ifname.to_owned()),
            families: vec![Af::V4, Af::V6],
            remote_as: 0,
            ..Neighbor::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0)
        }
    }

    /// Waits for the peer instead of connecting.
    pub fn passive(mut self) -> Neighbor {
        self.passive = true;
        self
    }

    /// Sets the TCP MD5 password.
    pub fn md5(mut self, password: &str) -> Neighbor {
        self.md5_password = Some(password.to_owned());
        self
    }

    /// Allows the peer `ttl` hops away.
    pub fn ebgp_multihop(mut self, ttl: u8) -> Neighbor {
        self.ebgp_multihop = Some(ttl);
        self
    }

    /// Sets the peer's TCP port.
    pub fn port(mut self, port: u16) -> Neighbor {
        self.port = Some(port);
        self
    }

    /// Sets our source address toward the peer.
    pub fn local_address(mut self, addr: IpAddr) -> Neighbor {
        self.local_address = Some(addr);
        self
    }

    /// Activates exactly `families` (e.g. IPv6 routes over an IPv4 session).
    pub fn families(mut self, families: &[Af]) -> Neighbor {
        self.families = families.to_vec();
        self
    }

    /// Makes the neighbor a route-reflector client (FRR only).
    pub fn reflector_client(mut self) -> Neighbor {
        self.reflector_client = true;
        self
    }

    /// Sends the neighbor every path of each prefix with ADD-PATH (FRR only).
    pub fn add_path_tx_all(mut self) -> Neighbor {
        self.add_path_tx_all = true;
        self
    }

    /// Sets the hold time (keepalive is a third of it).
    pub fn hold_time(mut self, secs: u16) -> Neighbor {
        self.hold_time = Some(secs);
        self
    }

    pub(crate) fn is_ibgp(&self, local_as: u32) -> bool {
        self.remote_as == local_as
    }
}

/// A route to announce (ExaBGP; the receivers ignore these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The prefix.
    pub prefix: IpNet,
    /// The next hop; `None` means "self" (the session's local address, so set
    /// it explicitly for an IPv6 prefix over an IPv4 session).
    pub next_hop: Option<IpAddr>,
    /// AS numbers to put before our own AS.
    pub as_path: Vec<u32>,
    /// Standard communities, "65000:1" (RFC 1997).
    pub communities: Vec<String>,
    /// Large communities, "65000:1:2" (RFC 8092).
    pub large_communities: Vec<String>,
    /// LOCAL_PREF (iBGP only, RFC 4271 §5.1.5).
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
}

impl Announcement {
    /// A plain announcement of `prefix` with next hop self.
    pub fn new(prefix: IpNet) -> Announcement {
        Announcement {
            prefix,
            next_hop: None,
            as_path: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            med: None,
        }
    }
}

/// What a router is told at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Our AS.
    pub local_as: u32,
    /// TCP port the router listens on (179 unless a test needs two on one address).
    pub listen_port: u16,
    /// The peers.
    pub neighbors: Vec<Neighbor>,
    /// Graceful restart (RFC 4724): FRR and GoBGP act as helper (keep a
    /// restarting peer's routes as stale), BIRD and ExaBGP advertise the
    /// capability. On by default.
    pub graceful_restart: bool,
    /// Up to this many equal paths (ECMP) per prefix, eBGP and iBGP (FRR:
    /// `maximum-paths`, with `bestpath as-path multipath-relax` so paths from
    /// different neighbor ASes count as equal).
    pub max_paths: u8,
    /// Routes announced from the start (ExaBGP only; the others ignore it).
    pub announce: Vec<Announcement>,
    /// FRR only: install the selected routes in zebra and the namespace's kernel FIB
    /// (`show ip route`, forwarding to the VIPs), instead of keeping them in bgpd
    /// (`bgp no-rib`). Off by default, since most tests only read BGP.
    pub install_fib: bool,
    /// FRR only: the RFC 8326 §4.2 receiver policy: paths carrying
    /// GRACEFUL_SHUTDOWN (65535:0) get LOCAL_PREF 0 on the way in.
    pub graceful_shutdown_policy: bool,
}

impl RouterConfig {
    /// A router with no neighbors, listening on 179, GR helper on, 8 paths.
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> RouterConfig {
        RouterConfig {
            router_id,
            local_as,
            listen_port: 179,
            neighbors: Vec::new(),
            graceful_restart: true,
            max_paths: 8,
            announce: Vec::new(),
            install_fib: false,
            graceful_shutdown_policy: false,
        }
    }

    /// Adds a neighbor.
    pub fn neighbor(mut self, n: Neighbor) -> RouterConfig {
        self.neighbors.push(n);
        self
    }

    /// Adds an announcement made at start.
    pub fn announce(mut self, a: Announcement) -> RouterConfig {
        self.announce.push(a);
        self
    }

    pub(crate) fn families(&self) -> Vec<Af> {
        let mut v: Vec<Af> = self
            .neighbors
            .iter()
            .flat_map(|n| n.families.iter().copied())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub(crate) fn find(&self, router: &'static str, addr: IpAddr) -> Result<usize, Error> {
        self.neighbors
            .iter()
            .position(|n| n.address == addr)
            .ok_or(Error::UnknownNeighbor {
                router,
                neighbor: addr,
            })
    }
}

/// A route as the router holds it, normalized across implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRoute {
    /// The prefix.
    pub prefix: IpNet,
    /// Next hops of every path selected for forwarding (best plus multipaths),
    /// sorted; two entries mean ECMP.
    pub next_hops: Vec<IpAddr>,
    /// AS_PATH of the best path, AS_SET members included in order.
    pub as_path: Vec<u32>,
    /// Communities of the best path, "65000:1", in received order.
    pub communities: Vec<String>,
    /// Large communities of the best path, "65000:1:2".
    pub large_communities: Vec<String>,
    /// LOCAL_PREF of the best path, if the router shows one.
    pub local_pref: Option<u32>,
    /// MED of the best path.
    pub med: Option<u32>,
    /// The best path is kept as stale during a peer's graceful restart
    /// (RFC 4724 §4.2; FRR and GoBGP report it, BIRD never).
    pub stale: bool,
}

/// Which implementation a router is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouterKind {
    /// FRR bgpd + zebra.
    Frr,
    /// BIRD 2.
    Bird,
    /// GoBGP (gobgpd + gobgp CLI).
    GoBgp,
    /// ExaBGP (announcer via its API; as receiver its parsed UPDATEs are recorded).
    ExaBgp,
}

impl RouterKind {
    /// All four, for tests that run against each.
    pub const ALL: [RouterKind; 4] = [
        RouterKind::Frr,
        RouterKind::Bird,
        RouterKind::GoBgp,
        RouterKind::ExaBgp,
    ];

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            RouterKind::Frr => "frr",
            RouterKind::Bird => "bird",
            RouterKind::GoBgp => "gobgp",
            RouterKind::ExaBgp => "exabgp",
        }
    }

    /// The programs it needs (names on `PATH`, or absolute paths).
    pub fn binaries(self) -> &'static [&'static str] {
        match self {
            RouterKind::Frr => &[frr::BGPD, frr::ZEBRA, "vtysh"],
            RouterKind::Bird => &["bird", "birdc"],
            RouterKind::GoBgp => &["gobgpd", "gobgp"],
            RouterKind::ExaBgp => &["exabgp", exabgp::PYTHON],
        }
    }

    /// Starts this kind of router in `ns`.
    pub fn start(self, ns: &Netns, cfg: RouterConfig) -> Result<Box<dyn Router>, Error> {
        Ok(match self {
            RouterKind::Frr => Box::new(Frr::start(ns, cfg)?),
            RouterKind::Bird => Box::new(Bird::start(ns, cfg)?),
            RouterKind::GoBgp => Box::new(GoBgp::start(ns, cfg)?),
            RouterKind::ExaBgp => Box::new(ExaBgp::start(ns, cfg)?),
        })
    }
}

/// A running router. Every method queries or acts on the live daemon.
pub trait Router: Send {
    /// Which implementation this is.
    fn kind(&self) -> RouterKind;

    /// The session state toward `neighbor` (Idle when the router is stopped).
    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, Error>;

    /// Every route in the router's table for `af`, sorted by prefix (ExaBGP:
    /// the routes its API helper recorded from received UPDATEs).
    fn routes(&self, af: Af) -> Result<Vec<ReceivedRoute>, Error>;

    /// The router's processes, in the order [`Router::stop`] stops them
    /// (the BGP process first); `None` where one is not running.
    fn processes(&mut self) -> Vec<&mut Option<Daemon>>;

    /// The BGP process, while it runs: what [`Router::freeze`],
    /// [`Router::thaw`] and [`Router::pid`] act on.
    fn bgp_process(&self) -> Option<&Daemon>;

    /// Starts the processes with the configuration written at start (after
    /// [`Router::stop`] or [`Router::kill`]); returns once the CLI answers.
    fn launch(&mut self) -> Result<(), Error>;

    /// The log files, each with a short name ("bgpd"), the BGP process's
    /// first. They outlive the processes.
    fn log_files(&self) -> Vec<(&'static str, PathBuf)>;

    /// Stops the processes: SIGTERM, bounded wait, SIGKILL.
    fn stop(&mut self) -> Result<(), Error> {
        for p in self.processes() {
            if let Some(mut d) = p.take() {
                d.stop();
            }
        }
        Ok(())
    }

    /// Stops, then starts again with the same configuration (ExaBGP re-sends
    /// what is announced now); returns once the CLI answers.
    fn restart(&mut self) -> Result<(), Error> {
        self.stop()?;
        self.launch()
    }

    /// SIGKILL to the router's processes: a crash, no NOTIFICATION sent.
    /// `restart` starts it again.
    fn kill(&mut self) {
        for p in self.processes() {
            if let Some(mut d) = p.take() {
                d.kill();
            }
        }
    }

    /// SIGSTOP to the BGP process: it stops answering, so its peer's hold
    /// timer runs out. A no-op when it does not run.
    fn freeze(&self) -> Result<(), Error> {
        self.bgp_process().map_or(Ok(()), Daemon::freeze)
    }

    /// SIGCONT after [`Router::freeze`].
    fn thaw(&self) -> Result<(), Error> {
        self.bgp_process().map_or(Ok(()), Daemon::thaw)
    }

    /// All of the router's log output so far: the one log file, or each
    /// under a `== name ==` heading (unreadable files read as empty).
    fn log(&self) -> String {
        let files = self.log_files();
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        match files.as_slice() {
            [(_, only)] => read(only),
            _ => files
                .iter()
                .map(|(name, p)| format!("== {name} ==\n{}", read(p)))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// PID of the BGP process, while it runs.
    fn pid(&self) -> Option<u32> {
        self.bgp_process().map(Daemon::pid)
    }

    /// Announces (or re-announces with new attributes) `routes`.
    fn announce(&mut self, routes: &[Announcement]) -> Result<(), Error> {
        let _ = routes;
        Err(Error::Unsupported {
            router: self.kind().name(),
            feature: "announce".to_owned(),
        })
    }

    /// Withdraws `prefixes`.
    fn withdraw(&mut self, prefixes: &[IpNet]) -> Result<(), Error> {
        let _ = prefixes;
        Err(Error::Unsupported {
            router: self.kind().name(),
            feature: "withdraw".to_owned(),
        })
    }

    /// How many paths for `af` the router accepted from all its neighbors
    /// (a prefix from two neighbors counts twice). Cheaper than
    /// [`Router::routes`] on large tables for FRR, BIRD and GoBGP, whose
    /// summaries are read instead.
    fn paths_received(&self, af: Af) -> Result<usize, Error> {
        Ok(self
            .routes(af)?
            .iter()
            .map(|r| r.next_hops.len().max(1))
            .sum())
    }

    /// The route for `prefix`, if the router holds one.
    fn route(&self, prefix: IpNet) -> Result<Option<ReceivedRoute>, Error> {
        let af = Af::of(prefix.addr());
        Ok(self.routes(af)?.into_iter().find(|r| r.prefix == prefix))
    }

    /// Waits until the session with `neighbor` is Established; panics after
    /// `timeout` with the last state seen and the router's log tail.
    fn wait_established(&self, neighbor: IpAddr, timeout: Duration) {
        let what = format!("{} session with {neighbor} Established", self.kind().name());
        let last = crate::wait_until(
            timeout,
            &what,
            || self.session_state(neighbor),
            |s| matches!(s, Ok(SessionState::Established)),
        );
        drop(last);
    }

    /// Waits until the routes for `af` satisfy `done`; returns them. Panics
    /// after `timeout` with the last table seen.
    fn wait_routes(
        &self,
        af: Af,
        timeout: Duration,
        what: &str,
        done: &mut dyn FnMut(&[ReceivedRoute]) -> bool,
    ) -> Vec<ReceivedRoute> {
        let what = format!("{}: {what}", self.kind().name());
        crate::wait_until(
            timeout,
            &what,
            || self.routes(af),
            |r| r.as_ref().is_ok_and(|r| done(r)),
        )
        .unwrap_or_default()
    }
}

/// Formats a 32-bit community as "asn:value" (RFC 1997).
pub(crate) fn community_string(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xffff)
}

/// Errors from a router's CLI output.
pub(crate) fn parse_err(router: &'static str, query: &str, reason: &str, out: &str) -> Error {
    Error::Parse {
        router,
        query: query.to_owned(),
        reason: reason.to_owned(),
        excerpt: crate::error::excerpt(out, 300),
    }
}

/// Waits (bounded) until `ready` answers Ok, failing early if a daemon exits.
pub(crate) fn wait_ready(
    router: &'static str,
    ns: &str,
    daemons: &mut [&mut crate::Daemon],
    mut ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    let mut backoff = crate::wait::Backoff::with_steps(
        READY_TIMEOUT,
        Duration::from_millis(10),
        Duration::from_millis(100),
    );
    loop {
        for d in daemons.iter_mut() {
            if let Some(st) = d.exit_status() {
                return Err(Error::NotReady {
                    router,
                    ns: ns.to_owned(),
                    reason: format!("{} exited ({st})", d.name()),
                    log_tail: crate::error::tail(&d.log(), 30),
                });
            }
        }
        if ready() {
            return Ok(());
        }
        if !backoff.pause() {
            let log_tail = daemons
                .iter()
                .map(|d| crate::error::tail(&d.log(), 15))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(Error::NotReady {
                router,
                ns: ns.to_owned(),
                reason: format!("did not answer within {READY_TIMEOUT:?}"),
                log_tail,
            });
        }
    }
}

/// What every driver keeps: the namespace's name, the directory of the
/// router's configuration and logs, and the configuration it was started
/// with.
#[derive(Debug)]
pub(crate) struct Base {
    /// The namespace's name.
    pub(crate) ns: String,
    /// `<namespace dir>/<router>`.
    pub(crate) dir: PathBuf,
    /// The configuration given at start.
    pub(crate) cfg: RouterConfig,
}

impl Base {
    /// Creates `<ns dir>/<sub>` and writes `files` (name, text) into it.
    pub(crate) fn new(
        ns: &Netns,
        sub: &str,
        cfg: RouterConfig,
        files: &[(&str, String)],
    ) -> Result<Base, Error> {
        let dir = ns.dir().join(sub);
        create_dir(&dir)?;
        for (name, text) in files {
            write_file(&dir.join(name), text)?;
        }
        Ok(Base {
            ns: ns.name().to_owned(),
            dir,
            cfg,
        })
    }
}

/// Creates a directory (and its parents) for a router's files.
pub(crate) fn create_dir(path: &std::path::Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::Io {
        op: "create dir",
        path: path.to_owned(),
        source,
    })
}

/// Writes a config file into the namespace's scratch directory.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        op: "write",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_print_as_asn_colon_value() {
        assert_eq!(community_string(4_259_840_001), "65000:1");
        assert_eq!(community_string(0xffff_ff01), "65535:65281");
    }

    #[test]
    fn session_state_names_from_every_router_map_to_rfc_states() {
        assert_eq!(
            SessionState::from_name("Established"),
            SessionState::Established
        );
        assert_eq!(SessionState::from_name("up"), SessionState::Established);
        assert_eq!(SessionState::from_name("OpenSent"), SessionState::OpenSent);
        assert_eq!(SessionState::from_name("Clearing"), SessionState::Idle);
        assert_eq!(SessionState::from_name("Active"), SessionState::Active);
    }
}
