//! `ferrolb-bgp listen`: a passive BGP listener that accepts sessions from any address and
//! prints every route received and withdrawn as one JSON object per line on stdout:
//!
//! ```text
//! {"peer":"192.0.2.1","event":"established","peer_as":65001,"router_id":"10.0.0.1","hold_time":90}
//! {"peer":"192.0.2.1","event":"announce","prefix":"198.51.100.1/32","next_hop":"192.0.2.1",
//!  "as_path":[65001],"communities":["65000:1"],"large_communities":["65000:1:2"],"local_pref":null,"med":10}
//! {"peer":"192.0.2.1","event":"withdraw","prefix":"198.51.100.1/32"}
//! {"peer":"192.0.2.1","event":"withdraw","prefix":"198.51.100.2/32","treat_as_withdraw":true}
//! {"peer":"192.0.2.1","event":"end-of-rib"}
//! {"peer":"192.0.2.1","event":"down","reason":"received NOTIFICATION 6/2 ..."}
//! ```
//!
//! An UPDATE with an RFC 7606 treat-as-withdraw error (a zero-length AS_PATH segment, ORIGIN
//! 7, a NEXT_HOP not 4 octets long or missing, ...) announces nothing: each prefix it names
//! is printed as a withdraw with `"treat_as_withdraw":true`, as `decode` reports it.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use ferrolb_bgp::event::EventKind;
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{MpNextHop, Update};
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

/// Arguments of `ferrolb-bgp listen`.
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub listen: IpAddr,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 179)]
    pub port: u16,
    /// Our ASN.
    #[arg(long)]
    pub local_as: u32,
    /// Accept only this peer ASN (default: any).
    #[arg(long)]
    pub peer_as: Option<u32>,
    /// BGP Identifier (default: the local IPv4 address of each session).
    #[arg(long)]
    pub router_id: Option<Ipv4Addr>,
    /// Hold time we propose, seconds.
    #[arg(long, default_value_t = 90)]
    pub hold_time: u16,
    /// Seconds a connection has to send its OPEN before it gets 4/0 and is closed. While all
    /// 64 slots for sessions are taken, a new connection also evicts the oldest one that has
    /// not sent its OPEN yet.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=240))]
    pub open_deadline_secs: u64,
}

fn update_lines(peer: IpAddr, u: &Update) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in u.withdrawn_prefixes() {
        out.push(json!({"peer": peer, "event": "withdraw", "prefix": p.to_string()}));
    }
    if u.treat_as_withdraw {
        // RFC 7606 §2: "routes indicated as reachable by the UPDATE message ... MUST be
        // handled as though they were withdrawn".
        for p in u.announced() {
            out.push(
                json!({"peer": peer, "event": "withdraw", "prefix": p.to_string(),
                "treat_as_withdraw": true}),
            );
        }
        return out;
    }
    let as_path: Vec<u32> = u
        .attrs
        .as_path
        .iter()
        .flat_map(|p| p.segments.iter().flat_map(|s| s.asns.iter().copied()))
        .collect();
    let communities: Vec<String> = u
        .attrs
        .communities
        .iter()
        .flatten()
        .map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff))
        .collect();
    let large: Vec<String> = u
        .attrs
        .large_communities
        .iter()
        .flatten()
        .map(ToString::to_string)
        .collect();
    for p in u.announced() {
        let next_hop = match (&p, &u.mp_reach) {
            (ipnet::IpNet::V6(_), Some(r)) => match r.next_hop {
                MpNextHop::V6 { global, .. } => Some(IpAddr::V6(global)),
                MpNextHop::V4(a) => Some(IpAddr::V4(a)),
            },
            _ => u.attrs.next_hop.map(IpAddr::V4),
        };
        out.push(json!({
            "peer": peer,
            "event": "announce",
            "prefix": p.to_string(),
            "next_hop": next_hop,
            "as_path": as_path,
            "communities": communities,
            "large_communities": large,
            "local_pref": u.attrs.local_pref,
            "med": u.attrs.med,
        }));
    }
    out
}

/// Runs `listen` until SIGTERM/SIGINT.
pub fn run(args: ListenArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(listen(args))
}

async fn listen(args: ListenArgs) -> anyhow::Result<i32> {
    let mut cfg = SpeakerConfig::new(args.local_as);
    cfg.router_id = args.router_id;
    cfg.listen = vec![SocketAddr::new(args.listen, args.port)];
    let mut template = PeerConfig::new(args.listen, 0);
    template.peer_as = args.peer_as;
    template.hold_time = args.hold_time;
    template.passive = true;
    template.deliver_updates = true;
    cfg.accept_unknown = Some(template);
    cfg.open_deadline = Duration::from_secs(args.open_deadline_secs);
    let (speaker, mut events) = Speaker::start(cfg).await?;
    for a in speaker.listen_addrs() {
        eprintln!("listening on {a}");
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stdout = std::io::stdout();
    loop {
        tokio::select! {
            Some(e) = events.recv() => {
                let peer = e.peer;
                let lines = match e.kind {
                    EventKind::Up { peer_as, router_id, hold_time, .. } => vec![json!({
                        "peer": peer, "event": "established", "peer_as": peer_as,
                        "router_id": router_id, "hold_time": hold_time})],
                    EventKind::Down { reason, .. } => vec![json!({
                        "peer": peer, "event": "down", "reason": reason.to_string()})],
                    EventKind::EndOfRibReceived => vec![json!({"peer": peer, "event": "end-of-rib"})],
                    EventKind::UpdateReceived { update: Some(u), .. } => update_lines(peer, &u),
                    _ => Vec::new(),
                };
                let mut out = stdout.lock();
                for l in lines {
                    writeln!(out, "{l}").context("writing to stdout")?;
                }
                out.flush().context("writing to stdout")?;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    speaker
        .shutdown("ferrolb-bgp listen stopped", Duration::from_secs(5))
        .await;
    Ok(0)
}
