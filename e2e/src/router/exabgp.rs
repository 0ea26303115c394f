//! ExaBGP 4.2 as an announcer.
//!
//! ExaBGP is driven through its API process: the harness writes a small
//! Python helper (`flb-exabgp-api.py`) that ExaBGP runs. The helper
//!
//! * forwards command files the harness drops into `cmd/` (`NNNNNN.cmd`,
//!   written under a temporary name and renamed, so never read half-written)
//!   to ExaBGP in sequence, renaming each to `.sent` once handed over, and
//! * records each neighbor's state from ExaBGP's JSON `neighbor-changes`
//!   messages in `cmd/state-<peer>` ("connected", "up", "down"), and
//! * keeps a table of received routes from ExaBGP's parsed JSON UPDATEs in
//!   `cmd/rib.json` (a peer's routes are dropped when its session leaves
//!   `up`: ExaBGP is no graceful-restart helper here), which
//!   [`Router::routes`] reads.
//!
//! The helper exits when ExaBGP closes its stdin or after [`HELPER_LIFETIME`].
//! A passive neighbor makes ExaBGP listen on its `local_address` and
//! `listen_port`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;

use super::{
    create_dir, parse_err, wait_ready, write_file, Af, Announcement, Base, ReceivedRoute, Router,
    RouterConfig, RouterKind, SessionState,
};
use crate::{Daemon, Error, Netns};

const NAME: &str = "exabgp";
/// The interpreter that runs the API helper.
pub(crate) const PYTHON: &str = "/usr/bin/python3";
/// Upper bound on the API helper's life (its loop is bounded).
pub const HELPER_LIFETIME: Duration = Duration::from_secs(3600);
/// How long [`ExaBgp::announce`] waits for the helper to take a command.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

const HELPER: &str = r#"import json, os, select, sys, time
cmd_dir, deadline = sys.argv[1], time.time() + float(sys.argv[2])
seq, buf, rib = 0, b"", {}
def write(name, text):
    tmp = os.path.join(cmd_dir, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(cmd_dir, name))
def nlris(entries):
    for x in entries or []:
        if isinstance(x, str):
            yield x
        elif isinstance(x, dict) and "nlri" in x:
            yield x["nlri"]
        elif isinstance(x, dict):
            yield from x.keys()
def record(line):
    try:
        msg = json.loads(line)
    except ValueError:
        return
    if not isinstance(msg, dict):
        return
    n = msg.get("neighbor") or {}
    peer = (n.get("address") or {}).get("peer")
    if not peer:
        return
    if msg.get("type") == "state" and n.get("state"):
        write("state-%s" % peer, n["state"])
        if n["state"] != "up":
            for k in [k for k in rib if k[0] == peer]:
                del rib[k]
            write("rib.json", json.dumps(list(rib.values())))
        return
    upd = (n.get("message") or {}).get("update")
    if msg.get("type") != "update" or not isinstance(upd, dict):
        return
    attrs = upd.get("attribute") or {}
    for fam, by_nh in (upd.get("announce") or {}).items():
        for nh, entries in (by_nh or {}).items():
            for p in nlris(entries):
                rib[(peer, p)] = {"peer": peer, "family": fam, "prefix": p, "next_hop": nh, "attribute": attrs}
    for fam, entries in (upd.get("withdraw") or {}).items():
        for p in nlris(entries):
            rib.pop((peer, p), None)
    write("rib.json", json.dumps(list(rib.values())))
write("rib.json", "[]")
open(os.path.join(cmd_dir, "ready"), "w").close()
while time.time() < deadline:
    r, _, _ = select.select([0], [], [], 0.02)
    if r:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            record(line.decode("utf-8", "replace"))
    path = os.path.join(cmd_dir, "%06d.cmd" % seq)
    if os.path.exists(path):
        with open(path) as f:
            sys.stdout.write(f.read())
        sys.stdout.flush()
        os.replace(path, path + ".sent")
        seq += 1
"#;

/// ExaBGP running in a namespace.
#[derive(Debug)]
pub struct ExaBgp {
    base: Base,
    exabgp: Option<Daemon>,
    /// Next command file number.
    seq: u32,
    /// What is announced now (re-sent after a restart).
    announced: BTreeMap<IpNet, Announcement>,
}

impl ExaBgp {
    /// Writes `exabgp.conf` and the API helper, starts ExaBGP (connecting out
    /// to every neighbor) and announces `cfg.announce`. Each neighbor needs a
    /// `local_address`; passive neighbors are [`Error::Unsupported`].
    pub fn start(ns: &Netns, cfg: RouterConfig) -> Result<ExaBgp, Error> {
        let conf = exabgp_conf(&cfg, &ns.dir().join("exabgp"))?;
        let announced = cfg.announce.iter().map(|a| (a.prefix, a.clone())).collect();
        let files = [
            ("flb-exabgp-api.py", HELPER.to_owned()),
            ("exabgp.conf", conf),
        ];
        let mut e = ExaBgp {
            base: Base::new(ns, "exabgp", cfg, &files)?,
            exabgp: None,
            seq: 0,
            announced,
        };
        e.launch()?;
        Ok(e)
    }

    fn cmd_dir(&self) -> PathBuf {
        self.base.dir.join("cmd")
    }

    /// Drops one command file for the helper.
    fn queue(&mut self, text: &str) -> Result<PathBuf, Error> {
        let dir = self.cmd_dir();
        let tmp = dir.join(format!("{:06}.tmp", self.seq));
        let cmd = dir.join(format!("{:06}.cmd", self.seq));
        write_file(&tmp, text)?;
        std::fs::rename(&tmp, &cmd).map_err(|source| Error::Io {
            op: "rename",
            path: tmp,
            source,
        })?;
        self.seq += 1;
        Ok(cmd)
    }

    /// Queues `text` and waits until the helper handed it to ExaBGP.
    fn send(&mut self, text: &str) -> Result<(), Error> {
        let cmd = self.queue(text)?;
        let mut sent = cmd.into_os_string();
        sent.push(".sent");
        let sent = PathBuf::from(sent);
        let mut daemons: Vec<&mut Daemon> = self.exabgp.iter_mut().collect();
        if daemons.is_empty() {
            // Not running: the command waits for the next start.
            return Ok(());
        }
        wait_ready_for(&self.base.ns, &mut daemons, &sent)
    }
}

fn wait_ready_for(ns: &str, daemons: &mut [&mut Daemon], sent: &Path) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + SEND_TIMEOUT;
    wait_ready(NAME, ns, daemons, || {
        sent.exists() || std::time::Instant::now() >= deadline
    })?;
    if sent.exists() {
        Ok(())
    } else {
        Err(Error::NotReady {
            router: NAME,
            ns: ns.to_owned(),
            reason: format!("API helper did not take {} in time", sent.display()),
            log_tail: String::new(),
        })
    }
}

/// ExaBGP's configuration: one `neighbor` block per neighbor, all fed by
/// the API helper.
fn exabgp_conf(cfg: &RouterConfig, dir: &Path) -> Result<String, Error> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "process flb {{\n    run {PYTHON} {} {} {};\n    encoder json;\n}}",
        dir.join("flb-exabgp-api.py").display(),
        dir.join("cmd").display(),
        HELPER_LIFETIME.as_secs()
    );
    for n in &cfg.neighbors {
        let local = n.local_address.ok_or_else(|| Error::BadValue {
            field: "neighbor local_address",
            value: n.address.to_string(),
            reason: "ExaBGP needs the local address of each neighbor".to_owned(),
        })?;
        let _ = writeln!(s, "neighbor {} {{", n.address);
        let _ = writeln!(s, "    router-id {};", cfg.router_id);
        let _ = writeln!(s, "    local-address {local};");
        let _ = writeln!(s, "    local-as {};", cfg.local_as);
        let _ = writeln!(s, "    peer-as {};", n.remote_as);
        if let Some(p) = n.port {
            let _ = writeln!(s, "    connect {p};");
        }
        if n.passive {
            // ExaBGP opens a listener for a neighbor that has `listen`.
            let _ = writeln!(s, "    passive true;");
            let _ = writeln!(s, "    listen {};", cfg.listen_port);
        }
        if let Some(h) = n.hold_time {
            let _ = writeln!(s, "    hold-time {h};");
        }
        if let Some(pw) = &n.md5_password {
            let _ = writeln!(s, "    md5-password \"{pw}\";");
        }
        if let Some(ttl) = n.ebgp_multihop {
            let _ = writeln!(s, "    outgoing-ttl {ttl};");
        }
        let _ = writeln!(s, "    family {{");
        for af in &n.families {
            let f = match af {
                Af::V4 => "ipv4 unicast",
                Af::V6 => "ipv6 unicast",
            };
            let _ = writeln!(s, "        {f};");
        }
        let _ = writeln!(s, "    }}");
        if cfg.graceful_restart {
            let _ = writeln!(s, "    capability {{ graceful-restart 120; }}");
        }
        let _ = writeln!(
            s,
            "    api {{ processes [ flb ]; neighbor-changes; receive {{ parsed; update; }} }}"
        );
        let _ = writeln!(s, "}}");
    }
    Ok(s)
}

/// ExaBGP API lines announcing `routes` to every neighbor.
pub(crate) fn announce_lines(routes: &[Announcement]) -> String {
    let mut s = String::new();
    for a in routes {
        let nh = a
            .next_hop
            .map_or_else(|| "self".to_owned(), |n| n.to_string());
        let _ = write!(s, "announce route {} next-hop {nh}", a.prefix);
        if !a.as_path.is_empty() {
            let p: Vec<String> = a.as_path.iter().map(u32::to_string).collect();
            let _ = write!(s, " as-path [ {} ]", p.join(" "));
        }
        if let Some(m) = a.med {
            let _ = write!(s, " med {m}");
        }
        if let Some(lp) = a.local_pref {
            let _ = write!(s, " local-preference {lp}");
        }
        if !a.communities.is_empty() {
            let _ = write!(s, " community [ {} ]", a.communities.join(" "));
        }
        if !a.large_communities.is_empty() {
            let _ = write!(s, " large-community [ {} ]", a.large_communities.join(" "));
        }
        s.push('\n');
    }
    s
}

/// Parses the helper's `rib.json`: a list of `{peer, family, prefix,
/// next_hop, attribute}` where `attribute` is ExaBGP's JSON (`as-path`,
/// `med`, `local-preference`, `community` as `[[asn, value]]`,
/// `large-community` as `[[asn, d1, d2]]`). Paths for one prefix from several
/// peers become one route with several next hops (ExaBGP selects nothing).
pub(crate) fn parse_rib(v: &serde_json::Value, af: Af) -> Result<Vec<ReceivedRoute>, String> {
    use serde_json::Value;
    let entries = v.as_array().ok_or("not a list")?;
    let mut by_prefix: BTreeMap<IpNet, ReceivedRoute> = BTreeMap::new();
    let u32_of = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    for e in entries {
        let p = e
            .get("prefix")
            .and_then(Value::as_str)
            .ok_or("entry without prefix")?;
        let prefix: IpNet = p.parse().map_err(|err| format!("prefix `{p}`: {err}"))?;
        if Af::of(prefix.addr()) != af {
            continue;
        }
        let nh: Option<IpAddr> = e
            .get("next_hop")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        let a = e.get("attribute").cloned().unwrap_or(Value::Null);
        let r = by_prefix.entry(prefix).or_insert_with(|| {
            let mut as_path = Vec::new();
            flatten_asns(a.get("as-path"), &mut as_path);
            let tuples = |key: &str| -> Vec<String> {
                a.get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        let parts: Option<Vec<String>> = t
                            .as_array()?
                            .iter()
                            .map(|x| u32_of(x).map(|n| n.to_string()))
                            .collect();
                        parts.map(|p| p.join(":"))
                    })
                    .collect()
            };
            ReceivedRoute {
                prefix,
                next_hops: Vec::new(),
                as_path,
                communities: tuples("community"),
                large_communities: tuples("large-community"),
                local_pref: a.get("local-preference").and_then(u32_of),
                med: a.get("med").and_then(u32_of),
                stale: false,
            }
        });
        if let Some(nh) = nh {
            r.next_hops.push(nh);
            r.next_hops.sort();
            r.next_hops.dedup();
        }
    }
    Ok(by_prefix.into_values().collect())
}

/// AS numbers of an ExaBGP `as-path` (a list, sets nested as lists or
/// objects), in order.
fn flatten_asns(v: Option<&serde_json::Value>, out: &mut Vec<u32>) {
    use serde_json::Value;
    // Bounded by the JSON's depth; ExaBGP nests at most one level (AS_SET).
    match v {
        Some(Value::Number(n)) => {
            if let Some(n) = n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                out.push(n);
            }
        }
        Some(Value::Array(a)) => a.iter().for_each(|x| flatten_asns(Some(x), out)),
        Some(Value::Object(o)) => o.values().for_each(|x| flatten_asns(Some(x), out)),
        _ => {}
    }
}

impl Router for ExaBgp {
    fn kind(&self) -> RouterKind {
        RouterKind::ExaBgp
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, Error> {
        self.base.cfg.find(NAME, neighbor)?;
        if self.exabgp.is_none() {
            return Ok(SessionState::Idle);
        }
        let f = self.cmd_dir().join(format!("state-{neighbor}"));
        Ok(match std::fs::read_to_string(f).as_deref().map(str::trim) {
            Ok("up") => SessionState::Established,
            // TCP is up, OPENs are being exchanged.
            Ok("connected") => SessionState::OpenSent,
            _ => SessionState::Idle,
        })
    }

    fn routes(&self, af: Af) -> Result<Vec<ReceivedRoute>, Error> {
        let path = self.cmd_dir().join("rib.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            op: "read",
            path,
            source,
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| parse_err(NAME, "rib.json", &e.to_string(), &text))?;
        parse_rib(&v, af).map_err(|r| parse_err(NAME, "rib.json", &r, &text))
    }

    fn processes(&mut self) -> Vec<&mut Option<Daemon>> {
        vec![&mut self.exabgp]
    }

    fn bgp_process(&self) -> Option<&Daemon> {
        self.exabgp.as_ref()
    }

    fn launch(&mut self) -> Result<(), Error> {
        let cmd_dir = self.cmd_dir();
        // A fresh command queue and no stale neighbor states.
        let _ = std::fs::remove_dir_all(&cmd_dir);
        create_dir(&cmd_dir)?;
        self.seq = 0;
        // Queue what is announced before ExaBGP starts: the helper hands it
        // over at once and ExaBGP sends it when each session comes up.
        let all: Vec<Announcement> = self.announced.values().cloned().collect();
        if !all.is_empty() {
            self.queue(&announce_lines(&all))?;
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.base.ns, "env"])
            .args([
                "exabgp.daemon.user=root",
                "exabgp.daemon.drop=false",
                "exabgp.daemon.daemonize=false",
                "exabgp.api.ack=false",
                "exabgp.api.cli=false",
                "exabgp.log.level=INFO",
                "exabgp.log.destination=stdout",
            ])
            .arg("exabgp")
            .arg(self.base.dir.join("exabgp.conf"));
        let mut d = Daemon::spawn("exabgp", cmd, &self.base.dir.join("exabgp.log"))?;
        let ready_file = cmd_dir.join("ready");
        let ready = wait_ready(NAME, &self.base.ns, &mut [&mut d], || ready_file.exists());
        self.exabgp = Some(d);
        ready
    }

    fn log_files(&self) -> Vec<(&'static str, PathBuf)> {
        vec![("exabgp", self.base.dir.join("exabgp.log"))]
    }

    fn announce(&mut self, routes: &[Announcement]) -> Result<(), Error> {
        for a in routes {
            self.announced.insert(a.prefix, a.clone());
        }
        self.send(&announce_lines(routes))
    }

    fn withdraw(&mut self, prefixes: &[IpNet]) -> Result<(), Error> {
        let mut s = String::new();
        for p in prefixes {
            self.announced.remove(p);
            // ExaBGP indexes its RIB by NLRI, so the prefix alone withdraws.
            let _ = writeln!(s, "withdraw route {p} next-hop self");
        }
        self.send(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exabgp_announce_line_carries_every_attribute() {
        let mut a = Announcement::new("198.51.100.1/32".parse().unwrap());
        a.communities = vec!["65000:1".into(), "65000:2".into()];
        a.large_communities = vec!["65000:1:2".into()];
        a.local_pref = Some(200);
        a.med = Some(10);
        a.as_path = vec![65010];
        assert_eq!(
            announce_lines(&[a]),
            "announce route 198.51.100.1/32 next-hop self as-path [ 65010 ] med 10 \
             local-preference 200 community [ 65000:1 65000:2 ] large-community [ 65000:1:2 ]\n"
        );
    }

    #[test]
    fn exabgp_rib_json_yields_routes_per_family_with_next_hops_of_all_peers() {
        let v: serde_json::Value = serde_json::from_str(
            r#"[{"peer":"192.0.2.2","family":"ipv4 unicast","prefix":"198.51.100.1/32",
                 "next_hop":"192.0.2.2","attribute":{"origin":"igp","as-path":[65000],
                 "med":10,"local-preference":200,"community":[[65000,1],[65000,2]],
                 "large-community":[[65000,1,2]]}},
                {"peer":"192.0.2.3","family":"ipv4 unicast","prefix":"198.51.100.1/32",
                 "next_hop":"192.0.2.3","attribute":{}},
                {"peer":"192.0.2.2","family":"ipv6 unicast","prefix":"2001:db8::1/128",
                 "next_hop":"fd00::2","attribute":{}}]"#,
        )
        .unwrap();
        let r = parse_rib(&v, Af::V4).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].next_hops.len(), 2);
        assert_eq!(r[0].as_path, vec![65000]);
        assert_eq!(r[0].communities, vec!["65000:1", "65000:2"]);
        assert_eq!(r[0].large_communities, vec!["65000:1:2"]);
        assert_eq!((r[0].med, r[0].local_pref), (Some(10), Some(200)));
        assert_eq!(parse_rib(&v, Af::V6).unwrap().len(), 1);
        assert!(parse_rib(&serde_json::json!({"x": 1}), Af::V4).is_err());
    }

    #[test]
    fn exabgp_refuses_a_neighbor_without_local_address() {
        let cfg = RouterConfig::new("192.0.2.1".parse().unwrap(), 65001)
            .neighbor(crate::Neighbor::new("192.0.2.2".parse().unwrap(), 65000));
        assert!(exabgp_conf(&cfg, Path::new("/tmp")).is_err());
    }
}
