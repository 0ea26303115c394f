//! The BGP backend: [`BgpDesired`] (per peer: session settings and routes) onto crates/bgp.
//!
//! ```text
//!  BgpAdvertiser::set_desired ──watch<BgpDesired>──▶ backend task
//!      backend task: one ferrolb_bgp Speaker per BGPPeer (its own ASN, router ID, GR, routes)
//!        ├─ set_peers([peer]) / set_routes(routes)   (crates/bgp diffs the Adj-RIB-Out)
//!        ├─ per Speaker: event task ──▶ Metrics (session up, prefixes, UPDATEs) + logs
//!        └─ BfdCoupling (backend/bfd.rs): a BFD session per peer with a bfdProfile
//!  BgpBackend::shutdown ──cancel──▶ backend task: Cease 6/2 to every peer (RFC 4486 §4)
//!  BgpBackend::shutdown_for_restart: the same, but sessions with Graceful Restart close so
//!      the routers keep our routes (crates/bgp `Speaker::shutdown_for_restart`)
//! ```
//!
//! One crates/bgp `Speaker` per peer because BGPPeers may differ in `myASN`, `routerID` and
//! Graceful Restart, which crates/bgp holds per speaker, and because each peer has its own
//! route set (advertisement `peers` lists, family). A peer whose speaker-level settings change
//! is stopped and started again; other changes go through `set_peers`, which restarts only that
//! session (Cease 6/6), and route changes through `set_routes`, which sends only the diff.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::model::{BgpPeer, PeerAsn};
use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::speaker::{GracefulRestartConfig, PeerConfig, Speaker, SpeakerConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::bfd::BfdCoupling;
use crate::advertiser::{Advertiser, AdvertiserError};
use crate::announce::bgp::BgpDesired;
use crate::backend::{peering, unnumbered};
use crate::metrics::Metrics;

/// Restart Time we advertise with Graceful Restart (RFC 4724 §3), seconds; MetalLB (FRR mode)
/// uses FRR's default of 120.
pub const GR_RESTART_TIME: u16 = 120;

/// How long shutdown waits for the Cease NOTIFICATIONs to go out.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);

/// Backend-wide settings.
#[derive(Debug, Clone, Default)]
pub struct BgpBackendOptions {
    /// We are coming back from a restart: set the Restart State bit for peers with Graceful
    /// Restart so they keep our routes meanwhile (RFC 4724 §4.1).
    pub restarted: bool,
    /// Where to send a Warning Event about a BGPPeer whose session cannot be made on this node
    /// (Kubernetes mode; `None` logs only).
    pub peer_warnings: Option<mpsc::UnboundedSender<Vec<ferrolb_runtime::events::Warning>>>,
}

/// The handle the reconcile loop uses.
#[derive(Debug, Clone)]
pub struct BgpAdvertiser {
    tx: watch::Sender<Arc<BgpDesired>>,
}

impl Advertiser for BgpAdvertiser {
    type Desired = BgpDesired;

    fn set_desired(&mut self, desired: BgpDesired) -> Result<(), AdvertiserError> {
        self.tx
            .send(Arc::new(desired))
            .map_err(|_| AdvertiserError::Closed { backend: "bgp" })
    }
}

/// Owner of the backend task.
#[derive(Debug)]
pub struct BgpBackend {
    cancel: CancellationToken,
    restart: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl BgpBackend {
    /// Starts the backend task; must run inside a tokio runtime.
    pub fn start(metrics: Arc<Metrics>, opts: BgpBackendOptions) -> (BgpAdvertiser, BgpBackend) {
        let (tx, rx) = watch::channel(Arc::new(BgpDesired::default()));
        let cancel = CancellationToken::new();
        let restart = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(backend_task(
            rx,
            metrics,
            opts,
            cancel.clone(),
            Arc::clone(&restart),
        ));
        (
            BgpAdvertiser { tx },
            BgpBackend {
                cancel,
                restart,
                task,
            },
        )
    }

    /// Shutdown before this process is started again (SIGTERM: an upgrade, a Pod replaced):
    /// sessions with Graceful Restart close so that the routers keep our routes as stale
    /// until the next speaker re-announces them (RFC 4724 §4.2, RFC 8538 §4); the others get
    /// the Cease of [`BgpBackend::shutdown`].
    pub async fn shutdown_for_restart(self) {
        self.restart.store(true, Ordering::Release);
        self.shutdown().await;
    }

    /// Graceful shutdown: Cease / Administrative Shutdown (6/2, RFC 4486 §4; RFC 9003 text) to
    /// every peer so routers withdraw our routes at once. Returns when the NOTIFICATIONs went out
    /// or [`SHUTDOWN_LIMIT`] passed.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The crates/bgp speaker of one BGPPeer.
struct Session {
    speaker_cfg: SpeakerConfig,
    peer_cfg: PeerConfig,
    speaker: Speaker,
    label: String,
    events: JoinHandle<()>,
}

/// The speaker-level settings of a BGPPeer.
pub fn speaker_config(peer: &BgpPeer, opts: &BgpBackendOptions) -> SpeakerConfig {
    SpeakerConfig {
        router_id: peer.router_id,
        graceful_restart: peer
            .enable_graceful_restart
            .then_some(GracefulRestartConfig {
                restart_time: GR_RESTART_TIME,
                restarted: opts.restarted,
            }),
        ..SpeakerConfig::new(peer.my_asn)
    }
}

/// The session settings of a BGPPeer.
pub fn peer_config(peer: &BgpPeer) -> PeerConfig {
    let secs = |d: std::time::Duration| u16::try_from(d.as_secs()).unwrap_or(u16::MAX);
    let peer_as = match peer.peer_asn {
        PeerAsn::Fixed(asn) => Some(asn),
        PeerAsn::Internal => Some(peer.session_asn()),
        // dynamicASN: external: any AS but ours; crates/bgp accepts any when None.
        PeerAsn::External => None,
    };
    let (ipv4, ipv6) = if peer.disable_mp {
        // disableMP: one family per session, the peer address's own (MetalLB semantics).
        (peer.peer_address.is_ipv4(), peer.peer_address.is_ipv6())
    } else {
        (true, true)
    };
    PeerConfig {
        port: peer.peer_port,
        peer_as,
        local_address: peer.source_address,
        hold_time: peer.hold_time.map_or(90, secs),
        keepalive: peer.keepalive_time.map(secs),
        md5_password: peer.password.clone(),
        // ebgpMultiHop: MetalLB (FRR) sets the maximum TTL.
        ebgp_multihop: peer.ebgp_multihop.then_some(255),
        // Without it, MetalLB's native speaker sets no TTL, so an eBGP router a few hops away
        // peers with the kernel's default; TTL 1 would leave that session down after a switch.
        ebgp_system_ttl: true,
        ipv4,
        ipv6,
        // FRR-mode peering (backend/peering.rs): `neighbor X local-as N no-prepend replace-as`,
        // `timers connect`, and the session bound to its VRF's device.
        local_as: peer.local_asn,
        connect_retry: peer.connect_time,
        bind_device: peer.vrf.clone(),
        ..PeerConfig::new(peer.peer_address, peer_as.unwrap_or(0))
    }
}

/// The `peer` label of a session: its address, like MetalLB's metrics.
fn label(addr: IpAddr) -> String {
    addr.to_string()
}

async fn backend_task(
    mut rx: watch::Receiver<Arc<BgpDesired>>,
    metrics: Arc<Metrics>,
    opts: BgpBackendOptions,
    cancel: CancellationToken,
    restart: Arc<AtomicBool>,
) {
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    let mut discovery = unnumbered::Discovery::new();
    let bfd = BfdCoupling::new(&metrics);
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { break },
            // An unnumbered peer's router was found (backend/unnumbered.rs).
            () = discovery.changed() => {}
            () = cancel.cancelled() => break,
        }
        let desired = Arc::clone(&rx.borrow_and_update());
        converge(
            &mut sessions,
            &desired,
            &metrics,
            &opts,
            &mut discovery,
            &bfd,
        )
        .await;
        // Peers with a bfdProfile get their BFD session (backend/bfd.rs).
        bfd.converge(desired.peers.iter().filter_map(|(name, want)| {
            let s = sessions.get(name)?;
            Some((name.as_str(), &want.session, &s.speaker))
        }));
    }
    // RFC 4486 §4 Administrative Shutdown, so routers withdraw at once instead of waiting for
    // the hold timer.
    let restart = restart.load(Ordering::Acquire);
    let stops = sessions.into_values().map(|s| async move {
        let message = "ferrolb-speaker shutting down";
        if restart {
            s.speaker
                .shutdown_for_restart(message, SHUTDOWN_LIMIT)
                .await;
        } else {
            s.speaker.shutdown(message, SHUTDOWN_LIMIT).await;
        }
        s.events.abort();
    });
    futures::future::join_all(stops).await;
    bfd.shutdown().await;
}

async fn converge(
    sessions: &mut BTreeMap<String, Session>,
    desired: &BgpDesired,
    metrics: &Arc<Metrics>,
    opts: &BgpBackendOptions,
    discovery: &mut unnumbered::Discovery,
    bfd: &BfdCoupling,
) {
    discovery.watch(
        &desired
            .peers
            .values()
            .filter_map(|p| p.session.interface.clone())
            .collect(),
    );
    // Peers gone, or whose speaker-level settings changed: Cease 6/3 (Peer De-configured).
    let stale: Vec<String> = sessions
        .iter()
        .filter(|(name, s)| {
            desired
                .peers
                .get(*name)
                .is_none_or(|p| speaker_config(&p.session, opts) != s.speaker_cfg)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in stale {
        if let Some(s) = sessions.remove(&name) {
            tracing::info!(peer = %name, addr = %s.peer_cfg.addr, "peer removed");
            // set_peers([]) sends Cease 6/3 (RFC 4486 §4) without waiting for it to go out.
            let _ = s.speaker.set_peers(Vec::new());
            s.events.abort();
            metrics.remove_peer(&s.label);
        }
    }
    for (name, want) in &desired.peers {
        let span = tracing::info_span!("peer", name = %name, addr = %want.session.peer_address,
            asn = ?want.session.peer_asn);
        let router = want
            .session
            .interface
            .as_deref()
            .and_then(|i| discovery.router(i));
        let Some(peer_cfg) =
            unnumbered::session_config(peer_config(&want.session), &want.session, router)
        else {
            span.in_scope(|| {
                tracing::info!(interface = ?want.session.interface,
                    "unnumbered peer: waiting for the router's advertisement on the link")
            });
            continue;
        };
        let speaker_cfg = speaker_config(&want.session, opts);
        // The announcement's routes are crates/bgp's `Routes` already, equal routes sharing
        // one `Arc` (announce::bgp interns them): a copy of the map is a pointer per prefix.
        let routes = want.routes.clone();
        if let Some(s) = sessions.get_mut(name) {
            if s.peer_cfg != peer_cfg {
                span.in_scope(|| tracing::info!("peer settings changed; restarting the session"));
                if let Err(error) = s.speaker.set_peers(vec![peer_cfg.clone()]) {
                    span.in_scope(|| tracing::error!(%error, "peer not configured"));
                }
                let metallb_peer =
                    std::net::SocketAddr::new(peer_cfg.addr, peer_cfg.port).to_string();
                metrics.update_peer(&s.label, |m| m.metallb_peer = metallb_peer);
                export_messages(metrics, &s.label, &s.speaker, &peer_cfg, &want.session);
                s.peer_cfg = peer_cfg;
            }
            span.in_scope(|| tracing::debug!(prefixes = routes.len(), "routes set"));
            let pending = routes.len();
            metrics.update_peer(&s.label, |m| m.pending_prefixes = pending);
            s.speaker.set_routes(routes);
            continue;
        }
        let started = Speaker::start(speaker_cfg.clone()).await;
        let (speaker, events) = match started {
            Ok(x) => x,
            Err(error) => {
                span.in_scope(|| tracing::error!(%error, "BGP speaker not started"));
                continue;
            }
        };
        if let Some(problem) = peering::check(&want.session, Path::new(peering::SYS_CLASS_NET)) {
            span.in_scope(|| tracing::error!(%problem, "peer down"));
            if let Some(tx) = &opts.peer_warnings {
                let _ = tx.send(vec![peering::warning(name, &problem)]);
            }
        }
        if let Err(error) = speaker.set_peers(vec![peer_cfg.clone()]) {
            span.in_scope(|| tracing::error!(%error, "peer not configured"));
            continue;
        }
        let pending = routes.len();
        speaker.set_routes(routes);
        let label = label(peer_cfg.addr);
        let metallb_peer = std::net::SocketAddr::new(peer_cfg.addr, peer_cfg.port).to_string();
        metrics.update_peer(&label, |m| {
            m.metallb_peer = metallb_peer;
            m.pending_prefixes = pending;
        });
        export_messages(metrics, &label, &speaker, &peer_cfg, &want.session);
        span.in_scope(|| tracing::info!("peer added"));
        let up = {
            let (bfd, name) = (bfd.clone(), name.clone());
            move |local| bfd.bgp_up(&name, local)
        };
        let events = tokio::spawn(
            drain_events(events, Arc::clone(metrics), label.clone(), up).instrument(span),
        );
        sessions.insert(
            name.clone(),
            Session {
                speaker_cfg,
                peer_cfg,
                speaker,
                label,
                events,
            },
        );
    }
}

/// Exports the message counts of `speaker`'s one peer under MetalLB's FRR-mode names
/// ([`crate::counter_metrics`]), labelled like MetalLB's: `address:port` and the VRF.
fn export_messages(
    metrics: &Metrics,
    label: &str,
    speaker: &Speaker,
    peer_cfg: &PeerConfig,
    peer: &BgpPeer,
) {
    let speaker = speaker.clone();
    let addr = peer_cfg.addr;
    metrics.set_peer_messages(
        label,
        crate::counter_metrics::PeerMessages {
            peer: std::net::SocketAddr::new(addr, peer_cfg.port).to_string(),
            vrf: peer
                .vrf
                .clone()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "default".into()),
            read: Box::new(move || speaker.message_counts(addr)),
        },
    );
}

/// Prefixes in one batch of UPDATEs above which the memory freed after it is returned.
const BIG_BATCH: usize = 1000;

/// Turns a speaker's events into metrics and logs (at info for state changes).
/// `on_up` gets the session's local address (the BFD coupling's source).
async fn drain_events(
    mut rx: mpsc::Receiver<SpeakerEvent>,
    metrics: Arc<Metrics>,
    label: String,
    on_up: impl Fn(Option<IpAddr>),
) {
    while let Some(ev) = rx.recv().await {
        match ev.kind {
            EventKind::Up {
                peer_as,
                hold_time,
                local_addr,
                ..
            } => {
                on_up(local_addr);
                tracing::info!(
                    from = "connecting",
                    to = "established",
                    peer_as,
                    hold_time,
                    "session up"
                );
                metrics.update_peer(&label, |m| m.session_up = true);
            }
            EventKind::Down {
                was_established,
                reason,
            } => {
                if was_established {
                    tracing::info!(from = "established", to = "idle", reason = ?reason,
                        "session down");
                } else {
                    tracing::debug!(reason = ?reason, "session attempt failed");
                }
                metrics.update_peer(&label, |m| {
                    m.session_up = false;
                    m.announced_prefixes = 0;
                });
            }
            EventKind::ConnectFailed { error } if peering::is_bind_device_failure(&error) => {
                tracing::warn!(%error, "connect failed: the VRF device is missing");
            }
            EventKind::ConnectFailed { error } => tracing::debug!(%error, "connect failed"),
            EventKind::PackFailed { error } => {
                tracing::error!(%error, "routes not sent: they cannot be packed into UPDATEs")
            }
            EventKind::PrefixesSent {
                announced,
                withdrawn,
                updates,
                total,
                skipped,
            } => {
                tracing::info!(
                    announced,
                    withdrawn,
                    updates,
                    total,
                    skipped,
                    "UPDATEs sent"
                );
                metrics.update_peer(&label, |m| {
                    m.announced_prefixes = total;
                    m.updates_sent = m.updates_sent.saturating_add(updates as u64);
                });
                // A big batch (a first table, a pool added or removed) encoded its UPDATEs
                // into buffers that are free now; glibc would keep them resident.
                if announced + withdrawn >= BIG_BATCH {
                    ferrolb_runtime::process::release_freed_memory();
                }
            }
            other => tracing::trace!(event = ?other, "bgp event"),
        }
    }
}
