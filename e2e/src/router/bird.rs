//! BIRD 2 in a namespace.
//!
//! Pitfalls handled (from `shared/bgp-lab`): `connect delay time 0` (BIRD
//! otherwise waits 5 s before its first connect), `error wait time 1, 5`
//! (otherwise 60 s before reconnecting after an error, which would hide a
//! restarted peer), `direct` for iBGP on a shared subnet (BIRD treats iBGP as
//! multihop with recursive next hops by default), no `protocol kernel` so
//! nothing reaches a FIB. BIRD has no JSON output: routes are parsed from
//! `birdc show route all`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use ipnet::IpNet;

use super::{
    parse_err, wait_ready, Af, Base, ReceivedRoute, Router, RouterConfig, RouterKind, SessionState,
};
use crate::{process, Daemon, Error, Netns};

const NAME: &str = "bird";

/// BIRD 2 running in a namespace.
#[derive(Debug)]
pub struct Bird {
    base: Base,
    bird: Option<Daemon>,
}

impl Bird {
    /// Writes `bird.conf`, starts `bird -f` and returns once `birdc` answers.
    /// Neighbor `i` of the config is protocol `n<i>`.
    pub fn start(ns: &Netns, cfg: RouterConfig) -> Result<Bird, Error> {
        let files = [("bird.conf", bird_conf(&cfg))];
        let base = Base::new(ns, "bird", cfg, &files)?;
        let mut b = Bird { base, bird: None };
        b.launch()?;
        Ok(b)
    }

    /// Runs `birdc -s <socket> <args>` and returns its stdout.
    pub fn birdc(&self, args: &[&str]) -> Result<String, Error> {
        let out = process::run(
            Command::new("birdc")
                .arg("-s")
                .arg(self.base.dir.join("bird.ctl"))
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// BIRD's configuration for `cfg`.
fn bird_conf(cfg: &RouterConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "router id {};", cfg.router_id);
    let _ = writeln!(s, "log stderr all;");
    let _ = writeln!(s, "protocol device {{ scan time 60; }}");
    // Multihop sessions resolve next hops recursively; direct routes make the
    // attached subnets resolvable (nothing is exported anywhere).
    let _ = writeln!(s, "protocol direct {{ ipv4; ipv6; }}");
    for (i, n) in cfg.neighbors.iter().enumerate() {
        if let Some(ifname) = &n.interface {
            unnumbered(&mut s, i, ifname, cfg);
            continue;
        }
        let _ = writeln!(s, "protocol bgp n{i} {{");
        let local = n.local_address.map(|a| format!(" {a}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  local{local} port {} as {};",
            cfg.listen_port, cfg.local_as
        );
        let port = n.port.map(|p| format!(" port {p}")).unwrap_or_default();
        let _ = writeln!(s, "  neighbor {}{port} as {};", n.address, n.remote_as);
        let _ = writeln!(s, "  passive {};", if n.passive { "on" } else { "off" });
        let _ = writeln!(s, "  connect delay time 0;");
        let _ = writeln!(s, "  connect retry time 1;");
        let _ = writeln!(s, "  error wait time 1, 5;");
        if let Some(pw) = &n.md5_password {
            let _ = writeln!(s, "  password \"{pw}\";");
        }
        match n.ebgp_multihop {
            Some(ttl) => {
                let _ = writeln!(s, "  multihop {ttl};");
            }
            None if n.is_ibgp(cfg.local_as) => {
                let _ = writeln!(s, "  direct;");
            }
            None => {}
        }
        if let Some(h) = n.hold_time {
            let _ = writeln!(s, "  hold time {h};");
            let _ = writeln!(s, "  keepalive time {};", (h / 3).max(1));
        }
        let gr = if cfg.graceful_restart { "on" } else { "off" };
        let _ = writeln!(s, "  graceful restart {gr};");
        for af in &n.families {
            let name = match af {
                Af::V4 => "ipv4",
                Af::V6 => "ipv6",
            };
            let _ = writeln!(s, "  {name} {{ import all; export none; }};");
        }
        let _ = writeln!(s, "}}");
    }
    s
}

/// An unnumbered neighbor on `ifname` (BIRD has no `neighbor IF interface`): RAs on the link
/// (`protocol radv`, router lifetime 0) so the peer finds our link-local address, and a
/// dynamic BGP protocol accepting any external link-local peer on the link (`neighbor range
/// fe80::/10`, passive as dynamic BGP is), IPv4 with Extended Next Hop (RFC 8950). Its
/// sessions are spawned protocols (`dynbgp1`...), so [`Router::session_state`] does not see
/// them; wait for routes instead.
fn unnumbered(s: &mut String, i: usize, ifname: &str, cfg: &RouterConfig) {
    let _ = writeln!(
        s,
        "protocol radv r{i} {{ ipv6; interface \"{ifname}\" {{ min ra interval 3; \
         max ra interval 4; default lifetime 0; }}; }}"
    );
    let _ = writeln!(s, "protocol bgp n{i} {{");
    let _ = writeln!(s, "  local port {} as {};", cfg.listen_port, cfg.local_as);
    let _ = writeln!(s, "  neighbor range fe80::/10 external;");
    let _ = writeln!(s, "  interface \"{ifname}\";");
    let _ = writeln!(s, "  error wait time 1, 5;");
    let _ = writeln!(
        s,
        "  ipv4 {{ import all; export none; extended next hop on; }};"
    );
    let _ = writeln!(s, "  ipv6 {{ import all; export none; }};");
    let _ = writeln!(s, "}}");
}

/// Parses `birdc show route all` (BIRD 2.0.12):
///
/// ```text
/// Table master4:
/// 198.51.100.1/32      unicast [n0 09:23:28.177] * (100) [AS65001i]
///     via 192.0.2.1 on vb
///     BGP.as_path: 65001
///     BGP.next_hop: 192.0.2.1
///     BGP.med: 10
///     BGP.local_pref: 100
///     BGP.community: (65000,1) (65000,2)
///     BGP.large_community: (65000, 1, 2)
///                      unicast [n1 09:23:29.001] (100) [AS65002i]
/// ```
///
/// A line starting with a prefix opens a route; an indented line with `[`
/// opens another path of the same prefix; tab-indented lines are attributes
/// of the current path. Only the best path (`*`) is kept.
pub(crate) fn parse_routes(text: &str) -> Result<Vec<ReceivedRoute>, String> {
    let mut out: Vec<ReceivedRoute> = Vec::new();
    let mut prefix: Option<IpNet> = None;
    // The path being read: None when it is not the best path.
    let mut current: Option<ReceivedRoute> = None;
    for line in text.lines() {
        if line.starts_with('\t') {
            if let Some(r) = current.as_mut() {
                parse_attr(r, line.trim())?;
            }
            continue;
        }
        if line.is_empty()
            || line.starts_with("Table ")
            || line.starts_with("BIRD ")
            || !line.contains('[')
        {
            continue;
        }
        if let Some(r) = current.take() {
            out.push(r);
        }
        if !line.starts_with(' ') {
            let first = line.split_whitespace().next().unwrap_or_default();
            prefix = Some(
                first
                    .parse()
                    .map_err(|e| format!("prefix `{first}`: {e}"))?,
            );
        }
        // Only paths from our `protocol bgp n<i>` (or the `dynbgp<i>` sessions an unnumbered
        // neighbor spawns), not `direct1`'s subnets.
        let from_bgp = line
            .split_once('[')
            .map(|(_, rest)| rest.trim_start())
            .and_then(|rest| {
                rest.strip_prefix('n')
                    .or_else(|| rest.strip_prefix("dynbgp"))
            })
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        let best = from_bgp && line.contains("] * ");
        if let (true, Some(p)) = (best, prefix) {
            current = Some(ReceivedRoute {
                prefix: p,
                next_hops: Vec::new(),
                as_path: Vec::new(),
                communities: Vec::new(),
                large_communities: Vec::new(),
                local_pref: None,
                med: None,
                stale: false,
            });
        }
    }
    if let Some(r) = current.take() {
        out.push(r);
    }
    out.sort_by_key(|r| r.prefix);
    Ok(out)
}

fn parse_attr(r: &mut ReceivedRoute, line: &str) -> Result<(), String> {
    let Some((key, value)) = line.split_once(": ") else {
        return Ok(());
    };
    let value = value.trim();
    let num =
        |v: &str| -> Result<u32, String> { v.parse().map_err(|e| format!("{key} `{v}`: {e}")) };
    match key {
        // The attribute as received; an IPv6 one may carry "global link-local", and the
        // global one is `::` when the peer sent only a link-local address (unnumbered).
        "BGP.next_hop" => {
            if let Some(a) = value.split_whitespace().find(|a| *a != "::") {
                r.next_hops = vec![a.parse().map_err(|e| format!("{key} `{a}`: {e}"))?];
            }
        }
        "BGP.as_path" => {
            r.as_path = value
                .split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
                .filter(|t| !t.is_empty())
                .map(num)
                .collect::<Result<_, _>>()?;
        }
        "BGP.med" => r.med = Some(num(value)?),
        "BGP.local_pref" => r.local_pref = Some(num(value)?),
        "BGP.community" => r.communities = tuples(value, ':'),
        "BGP.large_community" => r.large_communities = tuples(value, ':'),
        _ => {}
    }
    Ok(())
}

/// "(65000,1) (65000,2)" -> ["65000:1", "65000:2"]; "(65000, 1, 2)" -> ["65000:1:2"].
fn tuples(value: &str, sep: char) -> Vec<String> {
    value
        .split(')')
        .map(|t| t.trim().trim_start_matches('('))
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(&sep.to_string())
        })
        .collect()
}

/// Sums "Routes: N imported" of the `af` channel of every `n<i>` protocol in
/// `birdc show protocols all`.
fn count_imported(out: &str, af: Af) -> usize {
    let want = match af {
        Af::V4 => "Channel ipv4",
        Af::V6 => "Channel ipv6",
    };
    let mut ours = false;
    let mut channel = false;
    let mut total = 0usize;
    for line in out.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            let name = line.split_whitespace().next().unwrap_or_default();
            ours = name
                .strip_prefix('n')
                .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()));
            channel = false;
            continue;
        }
        let t = line.trim();
        if t.starts_with("Channel ") {
            channel = t == want;
        } else if let (true, true, Some(rest)) = (ours, channel, t.strip_prefix("Routes:")) {
            let n = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            total = total.saturating_add(n);
        }
    }
    total
}

impl Router for Bird {
    fn kind(&self) -> RouterKind {
        RouterKind::Bird
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, Error> {
        let i = self.base.cfg.find(NAME, neighbor)?;
        if self.bird.is_none() {
            return Ok(SessionState::Idle);
        }
        let proto = format!("n{i}");
        let out = self.birdc(&["show", "protocols", "all", &proto])?;
        // "  BGP state:          Established"; absent while the protocol is down.
        Ok(out
            .lines()
            .find_map(|l| l.trim().strip_prefix("BGP state:"))
            .map_or(SessionState::Idle, |s| SessionState::from_name(s.trim())))
    }

    fn routes(&self, af: Af) -> Result<Vec<ReceivedRoute>, Error> {
        let table = match af {
            Af::V4 => "master4",
            Af::V6 => "master6",
        };
        let out = self.birdc(&["show", "route", "all", "table", table])?;
        // Only BGP routes: `protocol direct` puts the attached subnets here too.
        let mut routes =
            parse_routes(&out).map_err(|r| parse_err(NAME, "show route all", &r, &out))?;
        routes.retain(|r| !r.as_path.is_empty() || !r.next_hops.is_empty());
        Ok(routes)
    }

    fn paths_received(&self, af: Af) -> Result<usize, Error> {
        let out = self.birdc(&["show", "protocols", "all"])?;
        Ok(count_imported(&out, af))
    }

    fn processes(&mut self) -> Vec<&mut Option<Daemon>> {
        vec![&mut self.bird]
    }

    fn bgp_process(&self) -> Option<&Daemon> {
        self.bird.as_ref()
    }

    fn launch(&mut self) -> Result<(), Error> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.base.ns, "bird", "-f", "-c"])
            .arg(self.base.dir.join("bird.conf"))
            .arg("-s")
            .arg(self.base.dir.join("bird.ctl"));
        let mut d = Daemon::spawn("bird", cmd, &self.base.dir.join("bird.log"))?;
        let ready = wait_ready(NAME, &self.base.ns, &mut [&mut d], || {
            self.birdc(&["show", "status"]).is_ok()
        });
        self.bird = Some(d);
        ready
    }

    fn log_files(&self) -> Vec<(&'static str, PathBuf)> {
        vec![("bird", self.base.dir.join("bird.log"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from BIRD 2.0.12 (`show route all table master4`), plus a
    /// second, non-best path and a direct route.
    const SHOW_ROUTE: &str = "BIRD 2.0.12 ready.
Table master4:
192.0.2.0/24         unicast [direct1 09:23:27.001] * (240)
\tdev vb
\tType: device univ
198.51.100.1/32      unicast [n0 09:23:28.177] * (100) [AS65001i]
\tvia 192.0.2.1 on vb
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65001 {65003,65004}
\tBGP.next_hop: 192.0.2.1
\tBGP.med: 10
\tBGP.local_pref: 100
\tBGP.community: (65000,1) (65000,2)
\tBGP.large_community: (65000, 1, 2)
                     unicast [n1 09:23:29.001] (100) [AS65002i]
\tvia 192.0.2.3 on vb
\tBGP.as_path: 65002
\tBGP.next_hop: 192.0.2.3
";

    #[test]
    fn bird_show_route_all_yields_the_best_path_with_attributes() {
        let r = parse_routes(SHOW_ROUTE).unwrap();
        assert_eq!(r.len(), 1, "the direct route is not a BGP route: {r:?}");
        let b = &r[0];
        assert_eq!(b.prefix.to_string(), "198.51.100.1/32");
        assert_eq!(b.next_hops, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(b.as_path, vec![65001, 65003, 65004]);
        assert_eq!(b.communities, vec!["65000:1", "65000:2"]);
        assert_eq!(b.large_communities, vec!["65000:1:2"]);
        assert_eq!(b.med, Some(10));
        assert_eq!(b.local_pref, Some(100));
    }

    #[test]
    fn bird_imported_counts_come_from_our_protocols_channel_of_the_family() {
        let out = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
direct1    Direct     ---        up     09:23:27.001
  Channel ipv4
    Routes:         1 imported, 0 exported, 1 preferred
n0         BGP        ---        up     09:23:28.136  Established
  BGP state:          Established
  Channel ipv4
    State:          UP
    Routes:         2 imported, 0 exported, 2 preferred
  Channel ipv6
    Routes:         5 imported, 0 exported, 5 preferred
n1         BGP        ---        up     09:23:28.136  Established
  Channel ipv4
    Routes:         3 imported, 0 exported, 3 preferred
";
        assert_eq!(count_imported(out, Af::V4), 5);
        assert_eq!(count_imported(out, Af::V6), 5);
    }

    #[test]
    fn bird_garbage_prefix_is_an_error_not_a_panic() {
        assert!(parse_routes("zzz unicast [n0] * (100)\n").is_err());
        assert!(parse_routes("\tBGP.med: x\n").unwrap().is_empty());
    }
}
