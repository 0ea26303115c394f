//! `ferrolb-bgp announce`: peer with routers and announce prefixes until interrupted.
//!
//! Progress goes to stderr as one line per event, for scripts to follow:
//! `established peer=ADDR ...`, `sent N prefixes peer=ADDR ...`, `end-of-rib peer=ADDR`,
//! `withdraw-all`, `down peer=ADDR reason=...`, `connect-failed peer=ADDR error=...`.
//! SIGUSR1 (or `--withdraw-after`) withdraws every prefix but keeps the sessions; SIGHUP re-reads
//! the prefixes (only the difference is sent); SIGTERM or
//! SIGINT sends Cease / Administrative Shutdown (RFC 9003 text) and exits 0.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::rib::{NextHop, Route, Routes};
use ferrolb_bgp::speaker::{GracefulRestartConfig, PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{Community, LargeCommunity};
use ipnet::IpNet;
use tokio::signal::unix::{signal, SignalKind};

/// Arguments of `ferrolb-bgp announce`.
#[derive(Debug, clap::Args)]
pub struct AnnounceArgs {
    /// A router to peer with (repeat for several).
    #[arg(long = "peer", required = true)]
    pub peers: Vec<IpAddr>,
    /// Our ASN.
    #[arg(long)]
    pub local_as: u32,
    /// The routers' ASN (equal to --local-as for iBGP).
    #[arg(long)]
    pub peer_as: u32,
    /// BGP Identifier; defaults to the local IPv4 address of each session.
    #[arg(long)]
    pub router_id: Option<Ipv4Addr>,
    /// The routers' TCP port.
    #[arg(long, default_value_t = 179)]
    pub port: u16,
    /// Source address of our connections.
    #[arg(long)]
    pub local_address: Option<IpAddr>,
    /// TCP-MD5 password (RFC 2385).
    #[arg(long)]
    pub md5_password: Option<String>,
    /// Hold time we propose, seconds.
    #[arg(long, default_value_t = 90)]
    pub hold_time: u16,
    /// Also negotiate IPv6 unicast (MP-BGP) on the sessions.
    #[arg(long)]
    pub ipv6: bool,
    /// A prefix to announce (repeat for several).
    #[arg(long = "prefix", conflicts_with = "prefixes")]
    pub prefix: Vec<IpNet>,
    /// A file with one prefix per line, optionally followed by attributes:
    /// `community=65000:1 large-community=65000:1:2 local-pref=200 med=10 next-hop=ADDR`.
    #[arg(long)]
    pub prefixes: Option<PathBuf>,
    /// Withdraw every prefix this many seconds after the first End-of-RIB, keeping the session.
    #[arg(long)]
    pub withdraw_after: Option<f64>,
    /// Advertise Graceful Restart (RFC 4724) with this restart time, seconds.
    #[arg(long)]
    pub graceful_restart: Option<u16>,
    /// With --graceful-restart: we are restarting; set the Restart State bit.
    #[arg(long, requires = "graceful_restart")]
    pub restarted: bool,
    /// eBGP multihop TTL (default: TTL 1 for eBGP).
    #[arg(long)]
    pub ebgp_multihop: Option<u8>,
}

/// Parses one line of a prefixes file; `None` for blank lines and comments.
pub fn parse_line(line: &str) -> anyhow::Result<Option<(IpNet, Route)>> {
    let line = line.split('#').next().unwrap_or("").trim();
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(None);
    };
    let prefix: IpNet = first
        .parse()
        .with_context(|| format!("bad prefix {first:?}"))?;
    let mut route = Route::default();
    for w in words {
        let (key, value) = w
            .split_once('=')
            .with_context(|| format!("attribute {w:?} is not key=value"))?;
        match key {
            "community" => {
                let (a, b) = value
                    .split_once(':')
                    .with_context(|| format!("community {value:?} is not ASN:VALUE"))?;
                route
                    .communities
                    .insert(Community::new(a.parse()?, b.parse()?));
            }
            "large-community" => {
                let parts: Vec<u32> = value
                    .split(':')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .with_context(|| format!("large community {value:?}"))?;
                let [g, l1, l2] = parts[..] else {
                    bail!("large community {value:?} is not A:B:C");
                };
                route.large_communities.insert(LargeCommunity {
                    global_admin: g,
                    local_data_1: l1,
                    local_data_2: l2,
                });
            }
            "local-pref" => route.local_pref = Some(value.parse().context("local-pref")?),
            "med" => route.med = Some(value.parse().context("med")?),
            "next-hop" => {
                route.next_hop = NextHop::Explicit(value.parse().context("next-hop")?)
            }
            other => bail!("unknown attribute {other:?} (community, large-community, local-pref, med, next-hop)"),
        }
    }
    Ok(Some((prefix, route)))
}

fn load_routes(args: &AnnounceArgs) -> anyhow::Result<Routes> {
    let mut routes = Routes::new();
    // Prefixes with the same attributes share one `Route` (100k prefixes, a few sets).
    let mut interned: HashMap<Route, Arc<Route>> = HashMap::new();
    let mut intern =
        |r: Route| Arc::clone(interned.entry(r.clone()).or_insert_with(|| Arc::new(r)));
    if let Some(path) = &args.prefixes {
        // Line by line: a 100k-line file is never held whole next to the table.
        let mut batch = Routes::new();
        let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if let Some((p, r)) =
                parse_line(&line).with_context(|| format!("{}:{}", path.display(), n + 1))?
            {
                batch.insert(p, intern(r));
                if batch.len() >= 4096 {
                    // append() rebuilds with full B-tree nodes: about half the memory of
                    // inserting 100k ascending prefixes one by one.
                    routes.append(&mut batch);
                }
            }
        }
        routes.append(&mut batch);
    }
    for p in &args.prefix {
        routes.insert(*p, intern(Route::default()));
    }
    if routes.is_empty() {
        bail!("nothing to announce: give --prefix or --prefixes");
    }
    Ok(routes)
}

/// Prints one progress line for an event; returns true for an End-of-RIB.
pub fn progress(e: &SpeakerEvent) -> bool {
    let peer = e.peer;
    match &e.kind {
        EventKind::Up {
            peer_as,
            router_id,
            hold_time,
            ..
        } => eprintln!(
            "established peer={peer} peer-as={peer_as} router-id={router_id} hold-time={hold_time}"
        ),
        EventKind::Down {
            was_established,
            reason,
        } => eprintln!("down peer={peer} was-established={was_established} reason={reason}"),
        EventKind::ConnectFailed { error } => eprintln!("connect-failed peer={peer} error={error}"),
        EventKind::PackFailed { error } => eprintln!("pack-failed peer={peer} error={error}"),
        EventKind::PrefixesSent {
            announced,
            withdrawn,
            updates,
            total,
            skipped,
        } => {
            if *announced > 0 || *withdrawn == 0 {
                eprintln!("sent {announced} prefixes peer={peer} updates={updates} total={total} skipped={skipped}");
            }
            if *withdrawn > 0 {
                eprintln!(
                    "withdrew {withdrawn} prefixes peer={peer} updates={updates} total={total}"
                );
            }
        }
        EventKind::EndOfRibSent => {
            eprintln!("end-of-rib peer={peer}");
            return true;
        }
        EventKind::RouteRefreshServed => eprintln!("route-refresh peer={peer}"),
        EventKind::Messages {
            received,
            sent,
            prefixes_received,
            prefixes_withdrawn,
            // Not printed: the line's format is fixed for scripts; each unsent NOTIFICATION
            // is logged at warn (`--log-level`).
            ..
        } => eprintln!(
            "messages peer={peer} received={received} sent={sent} \
             prefixes-received={prefixes_received} prefixes-withdrawn={prefixes_withdrawn}"
        ),
        EventKind::UpdateReceived { .. } | EventKind::EndOfRibReceived => {}
    }
    false
}

/// Whether any prefix in the file is IPv6, from the first word of each line only: a cheap pass
/// (one reused line buffer) so the sessions can start before the file is parsed.
fn file_has_ipv6(path: &std::path::Path) -> anyhow::Result<bool> {
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    // Bounded by the file's length: each round consumes one line, EOF reads 0.
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok(false);
        }
        let first = line
            .split(|b| b.is_ascii_whitespace() || *b == b'#')
            .find(|w| !w.is_empty());
        if first.is_some_and(|w| w.contains(&b':')) {
            return Ok(true);
        }
    }
}

/// Runs `announce` until SIGTERM/SIGINT.
pub fn run(args: AnnounceArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(announce(args))
}

async fn announce(args: AnnounceArgs) -> anyhow::Result<i32> {
    // The sessions start first and the file is parsed meanwhile on a blocking thread, so
    // Established does not wait for a 100k-line file; the peers hold their initial UPDATEs and
    // End-of-RIB until the routes are set (Speaker::defer_routes).
    let want_v6 = args.ipv6
        || args.prefix.iter().any(|p| matches!(p, IpNet::V6(_)))
        || match &args.prefixes {
            Some(path) => file_has_ipv6(path)?,
            None => false,
        };
    let args = Arc::new(args);
    let loading = {
        let args = Arc::clone(&args);
        tokio::task::spawn_blocking(move || load_routes(&args))
    };
    let mut cfg = SpeakerConfig::new(args.local_as);
    cfg.router_id = args.router_id;
    cfg.graceful_restart = args.graceful_restart.map(|t| GracefulRestartConfig {
        restart_time: t,
        restarted: args.restarted,
    });
    let (speaker, mut events) = Speaker::start(cfg).await?;
    speaker.defer_routes();
    let peers = args
        .peers
        .iter()
        .map(|addr| {
            let mut p = PeerConfig::new(*addr, args.peer_as);
            p.port = args.port;
            p.local_address = args.local_address;
            p.md5_password = args.md5_password.clone();
            p.hold_time = args.hold_time;
            p.ebgp_multihop = args.ebgp_multihop;
            p.ipv4 = true;
            p.ipv6 = want_v6;
            p
        })
        .collect();
    speaker.set_peers(peers)?;
    let routes = match loading.await.context("reading the prefixes")? {
        Ok(routes) => routes,
        Err(e) => {
            // Nothing was announced yet: leave the sessions with a Cease, then fail.
            speaker
                .shutdown("ferrolb-bgp announce: bad prefixes", Duration::from_secs(5))
                .await;
            return Err(e);
        }
    };
    speaker.set_routes(routes);

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut withdraw_at: Option<tokio::time::Instant> = None;
    let mut withdrawn = false;
    let reason = loop {
        let deadline = withdraw_at;
        tokio::select! {
            Some(e) = events.recv() => {
                if progress(&e) && !withdrawn && withdraw_at.is_none() {
                    if let Some(secs) = args.withdraw_after {
                        withdraw_at = Some(tokio::time::Instant::now()
                            + Duration::from_secs_f64(secs.max(0.0)));
                    }
                }
            }
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            }, if deadline.is_some() => {
                withdraw_at = None;
                withdrawn = true;
                eprintln!("withdraw-all");
                speaker.set_routes(Routes::new());
            }
            _ = usr1.recv() => {
                withdrawn = true;
                eprintln!("withdraw-all");
                speaker.set_routes(Routes::new());
            }
            _ = hup.recv() => {
                // Re-read the prefixes: only the difference goes out.
                match load_routes(&args) {
                    Ok(routes) => {
                        eprintln!("reload {} prefixes", routes.len());
                        speaker.set_routes(routes);
                    }
                    Err(e) => eprintln!("reload-failed error={e:#}"),
                }
            }
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    eprintln!("shutdown signal={reason}");
    speaker
        .shutdown(
            &format!("ferrolb-bgp announce stopped ({reason})"),
            Duration::from_secs(5),
        )
        .await;
    while let Ok(e) = events.try_recv() {
        progress(&e);
    }
    Ok(0)
}
