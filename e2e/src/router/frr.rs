//! FRR (bgpd + zebra) in a namespace.
//!
//! Pitfalls handled here (learnt in `shared/bgp-lab`): each instance gets its
//! own pathspace (`-N <ns>`, so vty sockets live in `/var/run/frr/<ns>` and
//! `vtysh -N <ns>` reaches it); bgpd runs with `-n` and `bgp no-rib` so
//! nothing is installed in the kernel; `no bgp ebgp-requires-policy` (FRR
//! ≥ 7.4 drops eBGP routes without a policy otherwise); `-P 0` disables the
//! vty TCP ports so parallel instances cannot clash. Graceful restart helper
//! mode is FRR's default (RFC 4724 receiving speaker): a peer that restarts
//! with the GR capability has its routes kept and marked stale.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::IpNet;
use serde_json::Value;

use super::{
    create_dir, parse_err, wait_ready, Af, Base, ReceivedRoute, Router, RouterConfig, RouterKind,
    SessionState,
};
use crate::{process, Daemon, Error, Netns, FRR_RUN_DIR};

/// Debian's location of bgpd.
pub(crate) const BGPD: &str = "/usr/lib/frr/bgpd";
/// Debian's location of zebra.
pub(crate) const ZEBRA: &str = "/usr/lib/frr/zebra";

const NAME: &str = "frr";

/// FRR bgpd + zebra running in a namespace.
#[derive(Debug)]
pub struct Frr {
    base: Base,
    // bgpd first: fields drop in order, and zebra going away first makes
    // bgpd log noise.
    bgpd: Option<Daemon>,
    zebra: Option<Daemon>,
}

impl Frr {
    /// Writes `bgpd.conf`/`zebra.conf` to the namespace's directory, starts
    /// zebra, then bgpd, and returns once `vtysh` answers. A configuration
    /// line FRR rejects is an [`Error::Config`].
    pub fn start(ns: &Netns, cfg: RouterConfig) -> Result<Frr, Error> {
        let files = [
            ("bgpd.conf", bgpd_conf(ns.name(), &cfg)),
            (
                "zebra.conf",
                format!("frr defaults traditional\nhostname {}-zebra\n", ns.name()),
            ),
        ];
        let mut frr = Frr {
            base: Base::new(ns, "frr", cfg, &files)?,
            bgpd: None,
            zebra: None,
        };
        frr.launch()?;
        Ok(frr)
    }

    /// Runs `vtysh -N <ns> -c <command>` and returns its stdout.
    pub fn vtysh(&self, command: &str) -> Result<String, Error> {
        let out = process::run(
            Command::new("vtysh")
                .args(["-N", &self.base.ns, "-c", command])
                // vtysh looks for /etc/frr/<ns>/vtysh.conf and complains.
                .env("VTYSH_PAGER", "cat"),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `vtysh` output parsed as JSON.
    pub fn vtysh_json(&self, command: &str) -> Result<Value, Error> {
        let out = self.vtysh(command)?;
        serde_json::from_str(&out).map_err(|e| parse_err(NAME, command, &e.to_string(), &out))
    }

    /// bgpd logs each configuration line it refuses while reading the file.
    fn check_config(&self) -> Result<(), Error> {
        let log = self.bgpd.as_ref().map(Daemon::log).unwrap_or_default();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("Unknown command")
                    || l.contains("% Invalid")
                    || l.contains("Ambiguous command")
                    || l.contains("Command incomplete")
                    || l.contains("ERROR: ")
            })
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                router: NAME,
                ns: self.base.ns.clone(),
                lines: bad.join("\n"),
            })
        }
    }
}

fn netns_command(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// FRR's `bgpd.conf` for `cfg`.
fn bgpd_conf(ns: &str, cfg: &RouterConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "frr defaults traditional\nhostname {ns}\n!");
    if !cfg.install_fib {
        // Keep the RIB out of zebra and the kernel: the namespace only proves BGP, unless the
        // test forwards traffic through it.
        let _ = writeln!(s, "bgp no-rib\n!");
    }
    if cfg.graceful_shutdown_policy {
        // RFC 8326 §4.2: lower the preference of paths marked GRACEFUL_SHUTDOWN.
        let _ = writeln!(
            s,
            "bgp community-list standard GSHUT permit graceful-shutdown\n\
             route-map GSHUT-IN permit 10\n match community GSHUT\n set local-preference 0\n\
             route-map GSHUT-IN permit 20\n!"
        );
    }
    let _ = writeln!(s, "router bgp {}", cfg.local_as);
    let _ = writeln!(s, " bgp router-id {}", cfg.router_id);
    let _ = writeln!(s, " bgp log-neighbor-changes");
    let _ = writeln!(s, " no bgp ebgp-requires-policy");
    let _ = writeln!(s, " no bgp default ipv4-unicast");
    let _ = writeln!(s, " no bgp network import-check");
    // Paths from neighbors in different ASes are equal for ECMP.
    let _ = writeln!(s, " bgp bestpath as-path multipath-relax");
    if !cfg.graceful_restart {
        let _ = writeln!(s, " bgp graceful-restart-disable");
    }
    for n in &cfg.neighbors {
        let a = n.interface.clone().unwrap_or_else(|| n.address.to_string());
        if n.interface.is_some() {
            let _ = writeln!(s, " neighbor {a} interface remote-as external");
        } else {
            let _ = writeln!(s, " neighbor {a} remote-as {}", n.remote_as);
        }
        // Retry quickly after a failed connect (default 120 s).
        let _ = writeln!(s, " neighbor {a} timers connect 1");
        if n.passive {
            let _ = writeln!(s, " neighbor {a} passive");
        }
        if let Some(pw) = &n.md5_password {
            let _ = writeln!(s, " neighbor {a} password {pw}");
        }
        if let Some(ttl) = n.ebgp_multihop {
            let _ = writeln!(s, " neighbor {a} ebgp-multihop {ttl}");
        }
        if let Some(p) = n.port {
            let _ = writeln!(s, " neighbor {a} port {p}");
        }
        if let Some(l) = n.local_address {
            let _ = writeln!(s, " neighbor {a} update-source {l}");
        }
        if let Some(h) = n.hold_time {
            let _ = writeln!(s, " neighbor {a} timers {} {h}", (h / 3).max(1));
        }
    }
    for af in cfg.families() {
        let name = match af {
            Af::V4 => "ipv4",
            Af::V6 => "ipv6",
        };
        let _ = writeln!(s, " !\n address-family {name} unicast");
        for n in cfg.neighbors.iter().filter(|n| n.families.contains(&af)) {
            // An unnumbered neighbor is named by its interface (FRR's `neighbor IF ...`).
            let k = n.interface.clone().unwrap_or_else(|| n.address.to_string());
            let _ = writeln!(s, "  neighbor {k} activate");
            if cfg.graceful_shutdown_policy {
                let _ = writeln!(s, "  neighbor {k} route-map GSHUT-IN in");
            }
            if n.reflector_client {
                let _ = writeln!(s, "  neighbor {k} route-reflector-client");
            }
            if n.add_path_tx_all {
                let _ = writeln!(s, "  neighbor {k} addpath-tx-all-paths");
            }
        }
        if cfg.max_paths > 1 {
            let _ = writeln!(s, "  maximum-paths {}", cfg.max_paths);
            let _ = writeln!(s, "  maximum-paths ibgp {}", cfg.max_paths);
        }
        let _ = writeln!(s, " exit-address-family");
    }
    let _ = writeln!(s, "exit\n!");
    s
}

/// Parses `show bgp <af> unicast json detail` (FRR 8.4): `routes` maps each
/// prefix to an array whose first element describes the prefix and whose
/// other elements are paths.
pub(crate) fn parse_routes(v: &Value) -> Result<Vec<ReceivedRoute>, String> {
    let Some(routes) = v.get("routes").and_then(Value::as_object) else {
        // An empty table prints `{}` in some versions.
        return if v.as_object().is_some_and(|o| o.is_empty()) || v.get("routes").is_none() {
            Ok(Vec::new())
        } else {
            Err("`routes` is not an object".to_owned())
        };
    };
    let mut out = Vec::new();
    for (prefix, entries) in routes {
        let prefix: IpNet = prefix
            .parse()
            .map_err(|e| format!("prefix `{prefix}`: {e}"))?;
        let paths: Vec<&Value> = entries
            .as_array()
            .map(|a| a.iter().filter(|p| p.get("nexthops").is_some()).collect())
            .unwrap_or_default();
        let is_best = |p: &Value| {
            p.get("bestpath")
                .and_then(|b| b.get("overall"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let Some(best) = paths.iter().find(|p| is_best(p)).or(paths.first()) else {
            continue;
        };
        let selected = paths
            .iter()
            .filter(|p| is_best(p) || p.get("multipath").and_then(Value::as_bool).unwrap_or(false));
        let mut next_hops: Vec<IpAddr> = selected.flat_map(|p| path_next_hops(p)).collect();
        if next_hops.is_empty() {
            // Right after an UPDATE, bgpd may list the path before its best-path run has
            // marked it (no `bestpath`, no `multipath` yet): the path's own next hops, as for
            // its other attributes above.
            next_hops = path_next_hops(best);
        }
        next_hops.sort();
        next_hops.dedup();
        out.push(ReceivedRoute {
            prefix,
            next_hops,
            as_path: best
                .get("aspath")
                .and_then(|a| a.get("segments"))
                .and_then(Value::as_array)
                .map(|segs| {
                    segs.iter()
                        .filter_map(|s| s.get("list").and_then(Value::as_array))
                        .flatten()
                        .filter_map(as_u32)
                        .collect()
                })
                .unwrap_or_default(),
            communities: string_list(best.get("community")),
            large_communities: string_list(best.get("largeCommunity")),
            local_pref: best
                .get("localpref")
                .or_else(|| best.get("locPrf"))
                .and_then(as_u32),
            med: best.get("metric").and_then(as_u32),
            stale: best.get("stale").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    out.sort_by_key(|r| r.prefix);
    Ok(out)
}

fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(|c| c.get("list"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Global next hops of a path (an IPv6 path may also list its link-local one).
fn path_next_hops(p: &Value) -> Vec<IpAddr> {
    p.get("nexthops")
        .and_then(Value::as_array)
        .map(|nhs| {
            nhs.iter()
                .filter(|nh| nh.get("scope").and_then(Value::as_str) != Some("link-local"))
                .filter_map(|nh| nh.get("ip").and_then(Value::as_str))
                .filter_map(|ip| ip.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Router for Frr {
    fn kind(&self) -> RouterKind {
        RouterKind::Frr
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, Error> {
        self.base.cfg.find(NAME, neighbor)?;
        if self.bgpd.is_none() {
            return Ok(SessionState::Idle);
        }
        let q = format!("show bgp neighbors {neighbor} json");
        let v = self.vtysh_json(&q)?;
        let st = v
            .get(neighbor.to_string())
            .and_then(|n| n.get("bgpState"))
            .and_then(Value::as_str)
            .ok_or_else(|| parse_err(NAME, &q, "no bgpState", &v.to_string()))?;
        Ok(SessionState::from_name(st))
    }

    fn routes(&self, af: Af) -> Result<Vec<ReceivedRoute>, Error> {
        let q = match af {
            Af::V4 => "show bgp ipv4 unicast json detail",
            Af::V6 => "show bgp ipv6 unicast json detail",
        };
        let v = self.vtysh_json(q)?;
        parse_routes(&v).map_err(|reason| parse_err(NAME, q, &reason, &v.to_string()))
    }

    fn paths_received(&self, af: Af) -> Result<usize, Error> {
        let q = match af {
            Af::V4 => "show bgp ipv4 unicast summary json",
            Af::V6 => "show bgp ipv6 unicast summary json",
        };
        let v = self.vtysh_json(q)?;
        Ok(v.get("peers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(_, p)| p.get("pfxRcd").and_then(Value::as_u64))
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .fold(0usize, usize::saturating_add))
    }

    fn processes(&mut self) -> Vec<&mut Option<Daemon>> {
        vec![&mut self.bgpd, &mut self.zebra]
    }

    fn bgp_process(&self) -> Option<&Daemon> {
        self.bgpd.as_ref()
    }

    fn launch(&mut self) -> Result<(), Error> {
        let run = Path::new(FRR_RUN_DIR).join(&self.base.ns);
        create_dir(&run)?;
        process::run(Command::new("chown").args(["frr:frr"]).arg(&run))?;
        let zlog = self.base.dir.join("zebra.log");
        let blog = self.base.dir.join("bgpd.log");
        let zconf = self.base.dir.join("zebra.conf");
        let bconf = self.base.dir.join("bgpd.conf");
        let mut zcmd = netns_command(&self.base.ns, ZEBRA);
        zcmd.args(["-N", &self.base.ns, "-f"]).arg(&zconf).args([
            "-P",
            "0",
            "--log",
            "stdout",
            "--log-level",
            "info",
        ]);
        let mut zebra = Daemon::spawn("zebra", zcmd, &zlog)?;
        let zsock = run.join("zserv.api");
        wait_ready(NAME, &self.base.ns, &mut [&mut zebra], || zsock.exists())?;
        let port = self.base.cfg.listen_port.to_string();
        let mut bcmd = netns_command(&self.base.ns, BGPD);
        bcmd.args(["-N", &self.base.ns, "-f"]).arg(&bconf).args([
            "-P",
            "0",
            "-p",
            &port,
            "--log",
            "stdout",
            "--log-level",
            "info",
        ]);
        // `-n` (no_kernel): bgpd hands zebra nothing, unless the test forwards traffic.
        if !self.base.cfg.install_fib {
            bcmd.arg("-n");
        }
        let mut bgpd = Daemon::spawn("bgpd", bcmd, &blog)?;
        let ready = wait_ready(NAME, &self.base.ns, &mut [&mut zebra, &mut bgpd], || {
            self.vtysh("show bgp summary json").is_ok()
        });
        self.zebra = Some(zebra);
        self.bgpd = Some(bgpd);
        ready?;
        self.check_config()
    }

    fn log_files(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("bgpd", self.base.dir.join("bgpd.log")),
            ("zebra", self.base.dir.join("zebra.log")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Neighbor;

    /// Captured from FRR 8.4.4 (`show bgp ipv4 unicast json detail`), one
    /// prefix with two ECMP paths, one of them stale, trimmed.
    const DETAIL: &str = r#"{"vrfId":0,"routes":{"198.51.100.1/32":[
      {"prefix":"198.51.100.1/32","version":1},
      {"aspath":{"string":"65001","segments":[{"type":"as-sequence","list":[65001]}],"length":1},
       "metric":10,"localpref":200,"valid":true,"multipath":true,"bestpath":{"overall":true},
       "community":{"string":"65000:1 65000:2","list":["65000:1","65000:2"]},
       "largeCommunity":{"string":"65000:1:2","list":["65000:1:2"]},"stale":true,
       "nexthops":[{"ip":"192.0.2.1","afi":"ipv4","used":true}],"peer":{"peerId":"192.0.2.1"}},
      {"aspath":{"segments":[{"type":"as-sequence","list":[65002]}]},"valid":true,"multipath":true,
       "nexthops":[{"ip":"192.0.2.3","afi":"ipv4"}],"peer":{"peerId":"192.0.2.3"}}]}}"#;

    #[test]
    fn frr_detail_json_yields_best_path_attributes_and_ecmp_next_hops() {
        let v: Value = serde_json::from_str(DETAIL).unwrap();
        let r = parse_routes(&v).unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.prefix.to_string(), "198.51.100.1/32");
        assert_eq!(
            r.next_hops,
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.3".parse().unwrap()
            ]
        );
        assert_eq!(r.as_path, vec![65001]);
        assert_eq!(r.communities, vec!["65000:1", "65000:2"]);
        assert_eq!(r.large_communities, vec!["65000:1:2"]);
        assert_eq!(r.local_pref, Some(200));
        assert_eq!(r.med, Some(10));
        assert!(r.stale);
    }

    #[test]
    fn frr_empty_table_is_no_routes() {
        let v: Value = serde_json::from_str(r#"{"vrfId":0,"routes":{}}"#).unwrap();
        assert!(parse_routes(&v).unwrap().is_empty());
        let v: Value = serde_json::from_str("{}").unwrap();
        assert!(parse_routes(&v).unwrap().is_empty());
    }

    #[test]
    fn frr_config_has_password_multihop_and_families() {
        let cfg = RouterConfig::new("192.0.2.2".parse().unwrap(), 65000).neighbor(
            Neighbor::new("192.0.2.1".parse().unwrap(), 65001)
                .passive()
                .md5("s3cret")
                .ebgp_multihop(3)
                .families(&[Af::V4, Af::V6]),
        );
        let c = bgpd_conf("flb-x", &cfg);
        assert!(c.contains(" neighbor 192.0.2.1 password s3cret\n"));
        assert!(c.contains(" neighbor 192.0.2.1 ebgp-multihop 3\n"));
        assert!(c.contains(" neighbor 192.0.2.1 passive\n"));
        assert!(c.contains(" address-family ipv6 unicast\n  neighbor 192.0.2.1 activate\n"));
        assert!(c.contains("  maximum-paths 8\n"));
    }
}
