//! ExaBGP 4.2 as an announcer.
//!
//! ExaBGP is driven through its API process: the harness writes a small
//! Python helper (`flb-exabgp-api.py`) that ExaBGP runs. The helper
//!
//! * forwards command files the harness drops into `cmd/` (`NNNNNN.cmd`,
//!   written under a temporary name and renamed, so never read half-written)
//!   to ExaBGP in sequence, renaming each to `.sent` once handed over, and
//! * records each neighbor's state from ExaBGP's JSON `neighbor-changes`
//!   messages in `cmd/state-<peer>` ("connected", "up", "down").
//!
//! The helper exits when ExaBGP closes its stdin or after [`HELPER_LIFETIME`].
//! ExaBGP keeps no queryable table of received routes, so [`Router::routes`]
//! is unsupported; as a passive listener it is not supported either.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;

use super::{
    wait_ready, write_file, Af, Announcement, ReceivedRoute, Router, RouterConfig, RouterKind,
    SessionState,
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
seq, buf = 0, b""
open(os.path.join(cmd_dir, "ready"), "w").close()
def record(line):
    try:
        msg = json.loads(line)
    except ValueError:
        return
    if not isinstance(msg, dict) or msg.get("type") != "state":
        return
    n = msg.get("neighbor") or {}
    peer, state = (n.get("address") or {}).get("peer"), n.get("state")
    if peer and state:
        tmp = os.path.join(cmd_dir, "state-%s.tmp" % peer)
        with open(tmp, "w") as f:
            f.write(state)
        os.replace(tmp, os.path.join(cmd_dir, "state-%s" % peer))
while time.time() < deadline:
    r, _, _ = select.select([0], [], [], 0.02)
    if r:
        chunk = os.read(0, 65536)
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
    ns: String,
    dir: PathBuf,
    cfg: RouterConfig,
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
        let dir = ns.dir().join("exabgp");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            op: "create dir",
            path: dir.clone(),
            source,
        })?;
        write_file(&dir.join("flb-exabgp-api.py"), HELPER)?;
        write_file(&dir.join("exabgp.conf"), &exabgp_conf(&cfg, &dir)?)?;
        let announced = cfg.announce.iter().map(|a| (a.prefix, a.clone())).collect();
        let mut e = ExaBgp {
            ns: ns.name().to_owned(),
            dir,
            cfg,
            exabgp: None,
            seq: 0,
            announced,
        };
        e.launch()?;
        Ok(e)
    }

    fn cmd_dir(&self) -> PathBuf {
        self.dir.join("cmd")
    }

    fn launch(&mut self) -> Result<(), Error> {
        let cmd_dir = self.cmd_dir();
        // A fresh command queue and no stale neighbor states.
        let _ = std::fs::remove_dir_all(&cmd_dir);
        std::fs::create_dir_all(&cmd_dir).map_err(|source| Error::Io {
            op: "create dir",
            path: cmd_dir.clone(),
            source,
        })?;
        self.seq = 0;
        // Queue what is announced before ExaBGP starts: the helper hands it
        // over at once and ExaBGP sends it when each session comes up.
        let all: Vec<Announcement> = self.announced.values().cloned().collect();
        if !all.is_empty() {
            self.queue(&announce_lines(&all))?;
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "env"])
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
            .arg(self.dir.join("exabgp.conf"));
        let mut d = Daemon::spawn("exabgp", cmd, &self.dir.join("exabgp.log"))?;
        let ready_file = cmd_dir.join("ready");
        let ready = wait_ready(NAME, &self.ns, &mut [&mut d], || ready_file.exists());
        self.exabgp = Some(d);
        ready
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
        wait_ready_for(&self.ns, &mut daemons, &sent)
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
        if n.passive {
            return Err(Error::Unsupported {
                router: NAME,
                feature: "passive neighbors".to_owned(),
            });
        }
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
        let _ = writeln!(s, "    api {{ processes [ flb ]; neighbor-changes; }}");
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

impl Router for ExaBgp {
    fn kind(&self) -> RouterKind {
        RouterKind::ExaBgp
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<SessionState, Error> {
        self.cfg.find(NAME, neighbor)?;
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

    fn routes(&self, _af: Af) -> Result<Vec<ReceivedRoute>, Error> {
        Err(Error::Unsupported {
            router: NAME,
            feature: "reading received routes".to_owned(),
        })
    }

    fn stop(&mut self) -> Result<(), Error> {
        if let Some(mut d) = self.exabgp.take() {
            d.stop();
        }
        Ok(())
    }

    fn restart(&mut self) -> Result<(), Error> {
        self.stop()?;
        self.launch()
    }

    fn kill(&mut self) {
        if let Some(mut d) = self.exabgp.take() {
            d.kill();
        }
    }

    fn freeze(&self) -> Result<(), Error> {
        self.exabgp.as_ref().map_or(Ok(()), Daemon::freeze)
    }

    fn thaw(&self) -> Result<(), Error> {
        self.exabgp.as_ref().map_or(Ok(()), Daemon::thaw)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("exabgp.log")).unwrap_or_default()
    }

    fn pid(&self) -> Option<u32> {
        self.exabgp.as_ref().map(Daemon::pid)
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

impl Drop for ExaBgp {
    fn drop(&mut self) {
        let _ = self.stop();
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
    fn exabgp_refuses_a_neighbor_without_local_address() {
        let cfg = RouterConfig::new("192.0.2.1".parse().unwrap(), 65001)
            .neighbor(crate::Neighbor::new("192.0.2.2".parse().unwrap(), 65000));
        assert!(exabgp_conf(&cfg, Path::new("/tmp")).is_err());
    }
}
