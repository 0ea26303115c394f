//! GoBGP (gobgpd 3.10) in a namespace.
//!
//! The gRPC API listens on 127.0.0.1:50051 of the namespace's own loopback, so
//! instances in different namespaces never clash. Pitfall (from
//! `shared/bgp-lab`): gobgpd 3.10 waits 5-10 s before its first outgoing
//! connect whatever `connect-retry` says, so tests should make GoBGP the
//! passive side. Queries use `gobgp -j` (JSON).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use ipnet::IpNet;
use serde_json::Value;

use super::{
    community_string, parse_err, wait_ready, Af, Base, ReceivedRoute, Router, RouterConfig,
    RouterKind, SessionState,
};
use crate::{process, Daemon, Error, Netns};

const NAME: &str = "gobgp";
const API: &str = "127.0.0.1:50051";

/// gobgpd running in a namespace.
#[derive(Debug)]
pub struct GoBgp {
    base: Base,
    gobgpd: Option<Daemon>,
}

impl GoBgp {
    /// Writes `gobgpd.toml`, starts gobgpd and returns once `gobgp` answers.
    pub fn start(ns: &Netns, cfg: RouterConfig) -> Result<GoBgp, Error> {
        let files = [("gobgpd.toml", gobgpd_toml(&cfg))];
        let base = Base::new(ns, "gobgp", cfg, &files)?;
        let mut g = GoBgp { base, gobgpd: None };
        g.launch()?;
        Ok(g)
    }

    /// Runs `gobgp -j <args>` inside the namespace and returns its stdout.
    pub fn gobgp(&self, args: &[&str]) -> Result<String, Error> {
        let out = process::run(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.base.ns,
                    "gobgp",
                    "-u",
                    "127.0.0.1",
                    "-p",
                    "50051",
                    "-j",
                ])
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn family_name(af: Af) -> &'static str {
    match af {
        Af::V4 => "ipv4-unicast",
        Af::V6 => "ipv6-unicast",
    }
}

/// gobgpd's TOML configuration for `cfg`.
fn gobgpd_toml(cfg: &RouterConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "[global.config]");
    let _ = writeln!(s, "  as = {}", cfg.local_as);
    let _ = writeln!(s, "  router-id = \"{}\"", cfg.router_id);
    let _ = writeln!(s, "  port = {}", cfg.listen_port);
    if cfg.max_paths > 1 {
        let _ = writeln!(s, "[global.use-multiple-paths.config]\n  enabled = true");
    }
    for n in &cfg.neighbors {
        let _ = writeln!(s, "\n[[neighbors]]\n  [neighbors.config]");
        let _ = writeln!(s, "    neighbor-address = \"{}\"", n.address);
        let _ = writeln!(s, "    peer-as = {}", n.remote_as);
        if let Some(pw) = &n.md5_password {
            let _ = writeln!(s, "    auth-password = \"{pw}\"");
        }
        let _ = writeln!(s, "  [neighbors.transport.config]");
        let _ = writeln!(s, "    passive-mode = {}", n.passive);
        if let Some(p) = n.port {
            let _ = writeln!(s, "    remote-port = {p}");
        }
        if let Some(l) = n.local_address {
            let _ = writeln!(s, "    local-address = \"{l}\"");
        }
        let _ = writeln!(s, "  [neighbors.timers.config]");
        let _ = writeln!(s, "    connect-retry = 1");
        // Default 30 s in Idle after a reset would hide a restarted peer.
        let _ = writeln!(s, "    idle-hold-time-after-reset = 1");
        if let Some(h) = n.hold_time {
            let _ = writeln!(s, "    hold-time = {h}");
            let _ = writeln!(s, "    keepalive-interval = {}", (h / 3).max(1));
        }
        if let Some(ttl) = n.ebgp_multihop {
            let _ = writeln!(s, "  [neighbors.ebgp-multihop.config]");
            let _ = writeln!(s, "    enabled = true\n    multihop-ttl = {ttl}");
        }
        if cfg.graceful_restart {
            // Helper only: keep a restarting peer's routes (RFC 4724 §4.2).
            let _ = writeln!(s, "  [neighbors.graceful-restart.config]");
            let _ = writeln!(s, "    enabled = true\n    helper-only = true");
        }
        for af in &n.families {
            let _ = writeln!(s, "  [[neighbors.afi-safis]]");
            let _ = writeln!(s, "    [neighbors.afi-safis.config]");
            let _ = writeln!(s, "      afi-safi-name = \"{}\"", family_name(*af));
            if cfg.graceful_restart {
                let _ = writeln!(s, "    [neighbors.afi-safis.mp-graceful-restart.config]");
                let _ = writeln!(s, "      enabled = true");
            }
        }
    }
    s
}

/// Parses `gobgp -j global rib -a <af>`: a map from prefix to paths, each with
/// `best`, `stale` and typed `attrs` (type codes of RFC 4271 §5 and IANA's
/// registry: 2 AS_PATH, 3 NEXT_HOP, 4 MED, 5 LOCAL_PREF, 8 COMMUNITIES,
/// 14 MP_REACH_NLRI, 32 LARGE_COMMUNITY).
pub(crate) fn parse_rib(v: &Value) -> Result<Vec<ReceivedRoute>, String> {
    let Some(map) = v.as_object() else {
        return if v.is_null() || v.as_array().is_some_and(|a| a.is_empty()) {
            Ok(Vec::new())
        } else {
            Err("not an object".to_owned())
        };
    };
    let mut out = Vec::new();
    for (prefix, paths) in map {
        let prefix: IpNet = prefix
            .parse()
            .map_err(|e| format!("prefix `{prefix}`: {e}"))?;
        let paths: Vec<&Value> = paths
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let is_best = |p: &Value| p.get("best").and_then(Value::as_bool).unwrap_or(false);
        let Some(best) = paths.iter().find(|p| is_best(p)).or(paths.first()) else {
            continue;
        };
        let mut r = ReceivedRoute {
            prefix,
            next_hops: Vec::new(),
            as_path: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            med: None,
            stale: best.get("stale").and_then(Value::as_bool).unwrap_or(false),
        };
        for attr in best
            .get("attrs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            apply_attr(&mut r, attr);
        }
        out.push(r);
    }
    out.sort_by_key(|r| r.prefix);
    Ok(out)
}

fn apply_attr(r: &mut ReceivedRoute, attr: &Value) {
    let u32_of = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    match attr.get("type").and_then(Value::as_u64) {
        Some(2) => {
            r.as_path = attr
                .get("as_paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|seg| seg.get("asns").and_then(Value::as_array))
                .flatten()
                .filter_map(|a| u32_of(Some(a)))
                .collect();
        }
        Some(3) | Some(14) => {
            if let Some(nh) = attr
                .get("nexthop")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                r.next_hops = vec![nh];
            }
        }
        Some(4) => r.med = u32_of(attr.get("metric")),
        Some(5) => r.local_pref = u32_of(attr.get("value")),
        Some(8) => {
            r.communities = attr
                .get("communities")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| u32_of(Some(c)))
                .map(community_string)
                .collect();
        }
        Some(32) => {
            r.large_communities = attr
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some(format!(
                        "{}:{}:{}",
                        u32_of(c.get("ASN"))?,
                        u32_of(c.get("LocalData1"))?,
                        u32_of(c.get("LocalData2"))?
                    ))
                })
                .collect();
        }
        _ => {}
    }
}

/// GoBGP's API enum: 1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm,
/// 6 Established.
fn state_from_api(n: u64) -> SessionState {
    match n {
        2 => SessionState::Connect,
        3 => SessionState::Active,
        4 => SessionState::OpenSent,
        5 => SessionState::OpenConfirm,
        6 => SessionState::Established,
        _ => SessionState::Idle,
    }
}

impl Router for GoBgp {
    fn kind(&self) -> RouterKind {
        RouterKind::GoBgp
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, Error> {
        self.base.cfg.find(NAME, neighbor)?;
        if self.gobgpd.is_none() {
            return Ok(SessionState::Idle);
        }
        let out = self.gobgp(&["neighbor"])?;
        let v: Value = serde_json::from_str(&out)
            .map_err(|e| parse_err(NAME, "neighbor", &e.to_string(), &out))?;
        let addr = neighbor.to_string();
        let peer = v
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p.get("conf")
                    .and_then(|c| c.get("neighbor_address"))
                    .and_then(Value::as_str)
                    == Some(addr.as_str())
            })
            .ok_or_else(|| parse_err(NAME, "neighbor", "neighbor not listed", &out))?;
        let st = peer.get("state").and_then(|s| s.get("session_state"));
        Ok(match st {
            Some(Value::Number(n)) => state_from_api(n.as_u64().unwrap_or(0)),
            Some(Value::String(s)) => SessionState::from_name(s),
            _ => SessionState::Idle,
        })
    }

    fn routes(&self, af: Af) -> Result<Vec<ReceivedRoute>, Error> {
        let fam = match af {
            Af::V4 => "ipv4",
            Af::V6 => "ipv6",
        };
        let out = self.gobgp(&["global", "rib", "-a", fam])?;
        if out.trim().is_empty() {
            return Ok(Vec::new());
        }
        let q = format!("global rib -a {fam}");
        let v: Value =
            serde_json::from_str(&out).map_err(|e| parse_err(NAME, &q, &e.to_string(), &out))?;
        parse_rib(&v).map_err(|r| parse_err(NAME, &q, &r, &out))
    }

    fn paths_received(&self, af: Af) -> Result<usize, Error> {
        let out = self.gobgp(&["neighbor"])?;
        let v: Value = serde_json::from_str(&out)
            .map_err(|e| parse_err(NAME, "neighbor", &e.to_string(), &out))?;
        let afi = match af {
            Af::V4 => 1,
            Af::V6 => 2,
        };
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("afi_safis").and_then(Value::as_array))
            .flatten()
            .filter_map(|a| a.get("state"))
            .filter(|st| {
                st.get("family")
                    .and_then(|f| f.get("afi"))
                    .and_then(Value::as_u64)
                    == Some(afi)
            })
            .filter_map(|st| st.get("accepted").and_then(Value::as_u64))
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .fold(0usize, usize::saturating_add))
    }

    fn processes(&mut self) -> Vec<&mut Option<Daemon>> {
        vec![&mut self.gobgpd]
    }

    fn bgp_process(&self) -> Option<&Daemon> {
        self.gobgpd.as_ref()
    }

    fn launch(&mut self) -> Result<(), Error> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.base.ns, "gobgpd", "-f"])
            .arg(self.base.dir.join("gobgpd.toml"))
            .args(["--api-hosts", API, "--log-level", "info"]);
        let mut d = Daemon::spawn("gobgpd", cmd, &self.base.dir.join("gobgpd.log"))?;
        let ready = wait_ready(NAME, &self.base.ns, &mut [&mut d], || {
            self.gobgp(&["global"]).is_ok()
        });
        self.gobgpd = Some(d);
        ready
    }

    fn log_files(&self) -> Vec<(&'static str, PathBuf)> {
        vec![("gobgpd", self.base.dir.join("gobgpd.log"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from gobgp 3.10 (`gobgp -j global rib -a ipv4` and `-a ipv6`).
    const RIB: &str = r#"{"198.51.100.1/32":[{"nlri":{"prefix":"198.51.100.1/32"},"best":true,
      "attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[65001]}]},
      {"type":3,"nexthop":"192.0.2.1"},{"type":4,"metric":10},{"type":5,"value":200},
      {"type":8,"communities":[4259840001,4259840002]},
      {"type":32,"value":[{"ASN":65000,"LocalData1":1,"LocalData2":2}]}],
      "stale":true,"neighbor-ip":"192.0.2.1"}],
      "fd00:ff::1/128":[{"nlri":{"prefix":"fd00:ff::1/128"},"best":true,"attrs":[
      {"type":14,"nexthop":"fd00:db8::1","afi":2,"safi":1,"value":[{"prefix":"fd00:ff::1/128"}]}],
      "stale":false}]}"#;

    #[test]
    fn gobgp_rib_json_yields_attributes() {
        let v: Value = serde_json::from_str(RIB).unwrap();
        let r = parse_rib(&v).unwrap();
        assert_eq!(r.len(), 2);
        let a = &r[0];
        assert_eq!(a.prefix.to_string(), "198.51.100.1/32");
        assert_eq!(a.next_hops, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.as_path, vec![65001]);
        assert_eq!(a.med, Some(10));
        assert_eq!(a.local_pref, Some(200));
        assert_eq!(a.communities, vec!["65000:1", "65000:2"]);
        assert_eq!(a.large_communities, vec!["65000:1:2"]);
        assert!(a.stale);
        assert_eq!(
            r[1].next_hops,
            vec!["fd00:db8::1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn gobgp_session_state_numbers_map_to_rfc_states() {
        assert_eq!(state_from_api(6), SessionState::Established);
        assert_eq!(state_from_api(3), SessionState::Active);
        assert_eq!(state_from_api(0), SessionState::Idle);
    }
}
