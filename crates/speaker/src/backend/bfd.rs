//! BFD coupled to BGP: a BGPPeer with `bfdProfile` gets a BFD session (crates/bfd) to the same
//! address from the same source, and BFD declaring the path down closes that BGP session at
//! once with Cease 6/10 "BFD Down" (RFC 9384, what FRR's bgpd sends); the session then
//! reconnects with the usual backoff.
//!
//! ```text
//!  BGP backend task ── converge(peers, speakers) ──▶ BfdCoupling (plan per peer, pure)
//!  BGP event task ──── bgp_up(peer, local address) ─┘   │ watch<Inputs> per peer
//!                                                       ▼
//!                         coupling task per peer: BfdSession (crates/bfd, own tx task)
//!                           profile changed ──▶ set_profile (Poll Sequence, no flap)
//!                           address changed ──▶ new session
//!                           Up ──▶ Down (path failure) ──▶ Speaker::reset_peer(Cease 6/10)
//!  /metrics ◀── CountersReader per session (metallb_bfd_*{peer})
//! ```
//!
//! What MetalLB (FRR mode) does, and so do we:
//! - The BGP session never waits for BFD: BGP comes up on its own; BFD only takes it down.
//! - The BFD session's source is `sourceAddress`, else the BGP session's own local address,
//!   learnt when BGP reaches Established (FRR registers the BFD peer with bgpd's `su_local`).
//! - `ebgpMultiHop` peers get RFC 5883 multihop BFD (port 4784, `minimumTtl` applies); the
//!   others RFC 5881 single hop (port 3784).
//! - Only a path failure closes BGP: the peer's AdminDown (its maintenance, or it deconfigured
//!   BFD) does not (RFC 5882 §3.2; FRR's bgpd ignores it too).
//! - A profile change renegotiates the timers of the running session (RFC 5880 §6.5 Poll
//!   Sequence): no BFD or BGP flap.
//!
//! The BFD transmit timer runs in crates/bfd's per-session task, so a long table write in the
//! BGP backend cannot delay Control packets; the coupling task here only reacts to status
//! changes and configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ferrolb_api::model::{self, BgpPeer};
use ferrolb_bfd::{Bfd, BfdProfile, BfdSession, CountersReader, SessionConfig, SessionStatus};
use ferrolb_bgp::speaker::Speaker;
use ferrolb_bgp::wire::error::cease_subcode;
use ferrolb_bgp::Notification;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::Metrics;

/// How long a session that could not be started (a socket error, a device gone) waits before
/// the next attempt, unless its configuration changes first.
pub const START_RETRY: Duration = Duration::from_secs(10);

/// What one BGPPeer asks of BFD: everything that identifies the session, and its timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdWant {
    /// The BGP peer's address.
    pub peer: IpAddr,
    /// `sourceAddress`; `None`: the BGP session's local address, once it is known.
    pub source: Option<IpAddr>,
    /// RFC 5883 multihop (`ebgpMultiHop`).
    pub multihop: bool,
    /// The profile with MetalLB's defaults applied.
    pub profile: BfdProfile,
}

/// The BFD session a BGPPeer asks for; `None` without `bfdProfile`.
pub fn want(peer: &BgpPeer) -> Option<BfdWant> {
    let profile = peer.bfd.as_ref()?;
    // An unnumbered peer has no address until its link-local one is discovered; BFD on such a
    // session is not implemented (reported as an ignored field), never aimed at `::`.
    if peer.peer_address.is_unspecified() {
        return None;
    }
    Some(BfdWant {
        peer: peer.peer_address,
        source: peer.source_address,
        multihop: peer.ebgp_multihop,
        profile: profile_of(profile),
    })
}

/// A validated BFDProfile as crates/bfd's values, unset fields at MetalLB's defaults
/// (receive and transmit 300 ms, multiplier 3, echo interval 50 ms, minimum TTL 254, echo and
/// passive off: the BFDProfile CRD's and FRR's). Validation keeps the values in the CRD's
/// ranges; one that still does not fit (it cannot) falls back to the default.
pub fn profile_of(p: &model::BfdProfile) -> BfdProfile {
    let d = BfdProfile::default();
    let ms =
        |v: Option<u32>, default: Duration| v.map_or(default, |v| Duration::from_millis(v.into()));
    let small =
        |v: Option<u32>, default: u8| v.and_then(|v| u8::try_from(v).ok()).unwrap_or(default);
    BfdProfile {
        receive_interval: ms(p.receive_interval_ms, d.receive_interval),
        transmit_interval: ms(p.transmit_interval_ms, d.transmit_interval),
        detect_multiplier: small(p.detect_multiplier, d.detect_multiplier),
        echo_interval: ms(p.echo_interval_ms, d.echo_interval),
        echo_mode: p.echo_mode,
        passive_mode: p.passive_mode,
        minimum_ttl: small(p.minimum_ttl, d.minimum_ttl),
    }
}

/// What to do with a peer's BFD session when its configuration changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing changed (or no BFD before and after).
    Keep,
    /// The peer has a `bfdProfile` now.
    Start,
    /// Only the timers or modes changed: renegotiate on the running session (Poll Sequence).
    SetProfile(BfdProfile),
    /// The address, source or hop mode changed: a new session.
    Restart,
    /// The peer is gone or has no `bfdProfile` any more.
    Stop,
}

/// The change from the running session's settings to the desired ones.
pub fn plan(running: Option<&BfdWant>, desired: Option<&BfdWant>) -> Plan {
    match (running, desired) {
        (None, None) => Plan::Keep,
        (None, Some(_)) => Plan::Start,
        (Some(_), None) => Plan::Stop,
        (Some(a), Some(b)) if a == b => Plan::Keep,
        (Some(a), Some(b))
            if BfdWant {
                profile: b.profile,
                ..*a
            } == *b =>
        {
            Plan::SetProfile(b.profile)
        }
        (Some(_), Some(_)) => Plan::Restart,
    }
}

/// The session to run: `None` while the source is not known yet (no `sourceAddress`, and the
/// BGP session has not been Established).
pub fn session_config(want: &BfdWant, learnt_source: Option<IpAddr>) -> Option<SessionConfig> {
    let local = want.source.or(learnt_source)?;
    Some(SessionConfig {
        peer: want.peer,
        local,
        device: None,
        multihop: want.multihop,
        profile: want.profile,
    })
}

/// Whether a status change must close the BGP session: the session left Up (the down count
/// grew) for a path failure. A Down → Up flap between two looks at the status counts as a
/// failure too (we cannot tell its reason any more; FRR would have closed BGP).
pub fn closes_bgp(before: &SessionStatus, now: &SessionStatus) -> bool {
    now.down_events > before.down_events
        && (now.is_path_failure() || now.state == ferrolb_bfd::State::UP)
}

/// Per session, the counters `/metrics` renders, by `peer` label.
type Registry = Arc<Mutex<BTreeMap<String, CountersReader>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a coupling task works from; replaced whole by [`BfdCoupling::converge`].
#[derive(Debug, Clone)]
struct Inputs {
    want: BfdWant,
    /// The BGP speaker of this peer, to close its session on BFD Down.
    speaker: Speaker,
    /// The BGP session's local address, once Established.
    learnt: Option<IpAddr>,
}

#[derive(Debug)]
struct Coupled {
    inputs: watch::Sender<Inputs>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Inner {
    peers: BTreeMap<String, Coupled>,
    /// Local addresses of Established BGP sessions, by peer name, whether or not the peer
    /// has BFD (yet): the event task may report one before `converge` sees the peer.
    learnt: BTreeMap<String, IpAddr>,
}

/// The BFD side of the BGP backend. Cheap to clone: the BGP event tasks hold one to report
/// the local address of each Established session.
#[derive(Debug, Clone)]
pub struct BfdCoupling {
    bfd: Bfd,
    inner: Arc<Mutex<Inner>>,
    registry: Registry,
}

impl BfdCoupling {
    /// A coupling with no sessions; exports `metallb_bfd_*` on `metrics`.
    pub fn new(metrics: &Metrics) -> BfdCoupling {
        let bfd = Bfd::new();
        let registry: Registry = Arc::default();
        let (r, b) = (Arc::clone(&registry), bfd.clone());
        metrics.set_bfd_counters(Box::new(move || {
            let sessions = lock(&r)
                .iter()
                .map(|(peer, c)| (peer.clone(), c.read()))
                .collect();
            (sessions, b.drops())
        }));
        BfdCoupling {
            bfd,
            inner: Arc::default(),
            registry,
        }
    }

    /// Brings the BFD sessions in line with `peers` (name, BGPPeer, its running BGP speaker):
    /// starts, renegotiates, restarts or stops each as [`plan`] says. Must run inside a tokio
    /// runtime.
    pub fn converge<'a>(
        &self,
        peers: impl IntoIterator<Item = (&'a str, &'a BgpPeer, &'a Speaker)>,
    ) {
        let mut inner = lock(&self.inner);
        let mut desired: BTreeMap<&str, (BfdWant, &Speaker)> = BTreeMap::new();
        let mut configured = std::collections::BTreeSet::new();
        for (name, peer, speaker) in peers {
            configured.insert(name);
            if let Some(w) = want(peer) {
                desired.insert(name, (w, speaker));
            }
        }
        // A peer that is gone takes what was learnt about its session along.
        inner
            .learnt
            .retain(|name, _| configured.contains(name.as_str()));
        let names: Vec<String> = inner.peers.keys().cloned().collect();
        for name in names {
            if !desired.contains_key(name.as_str()) {
                if let Some(c) = inner.peers.remove(&name) {
                    c.cancel.cancel();
                    tracing::info!(peer = %name, "BFD session removed");
                }
            }
        }
        for (name, (w, speaker)) in desired {
            let learnt = inner.learnt.get(name).copied();
            let running = inner.peers.get(name).map(|c| c.inputs.borrow().want);
            match plan(running.as_ref(), Some(&w)) {
                Plan::Start => {
                    let c = self.spawn(name, w, speaker.clone(), learnt);
                    inner.peers.insert(name.to_owned(), c);
                }
                plan => {
                    if let Some(c) = inner.peers.get(name) {
                        // The task tells a profile change from a new session itself (it
                        // compares with the session it runs); Keep only refreshes the speaker
                        // handle, which changes when the BGP speaker is restarted.
                        c.inputs.send_if_modified(|i| {
                            i.speaker = speaker.clone();
                            if plan == Plan::Keep {
                                return false;
                            }
                            i.want = w;
                            true
                        });
                    }
                }
            }
        }
    }

    /// The BGP session with `peer` (a BGPPeer name) is Established from `local`: a BFD session
    /// without `sourceAddress` starts (or moves) there.
    pub fn bgp_up(&self, peer: &str, local: Option<IpAddr>) {
        let Some(local) = local else { return };
        let mut inner = lock(&self.inner);
        inner.learnt.insert(peer.to_owned(), local);
        if let Some(c) = inner.peers.get(peer) {
            c.inputs.send_if_modified(|i| {
                let changed = i.learnt != Some(local);
                i.learnt = Some(local);
                changed
            });
        }
    }

    /// Takes every session down (one AdminDown each, RFC 5880 §6.8.16, so peers see an
    /// administrative action, not a path failure) and waits for the tasks to end.
    pub async fn shutdown(&self) {
        let tasks: Vec<Coupled> = std::mem::take(&mut lock(&self.inner).peers)
            .into_values()
            .collect();
        for c in &tasks {
            c.cancel.cancel();
        }
        for c in tasks {
            let _ = c.task.await;
        }
    }

    fn spawn(
        &self,
        name: &str,
        want: BfdWant,
        speaker: Speaker,
        learnt: Option<IpAddr>,
    ) -> Coupled {
        let (tx, rx) = watch::channel(Inputs {
            want,
            speaker,
            learnt,
        });
        let cancel = CancellationToken::new();
        let span = tracing::info_span!("peer", name = %name, addr = %want.peer);
        let task = tokio::spawn(
            run(
                self.bfd.clone(),
                rx,
                Arc::clone(&self.registry),
                want.peer.to_string(),
                cancel.clone(),
            )
            .instrument(span),
        );
        Coupled {
            inputs: tx,
            cancel,
            task,
        }
    }
}

/// Why a running session ends.
enum End {
    /// Removed, or the coupling is shutting down.
    Stop,
    /// Its address, source or hop mode changed (or its task died): start again.
    Restart,
}

/// One peer's coupling: waits for a source, runs the session, follows configuration and
/// closes the BGP session on BFD Down. Every wait is a channel, a watch or the cancel token.
async fn run(
    bfd: Bfd,
    mut inputs: watch::Receiver<Inputs>,
    registry: Registry,
    label: String,
    cancel: CancellationToken,
) {
    loop {
        let config = loop {
            let config = {
                let i = inputs.borrow_and_update();
                session_config(&i.want, i.learnt)
            };
            if let Some(c) = config {
                break c;
            }
            tracing::debug!("BFD session waits for the BGP session's source address");
            tokio::select! {
                () = cancel.cancelled() => return,
                r = inputs.changed() => if r.is_err() { return },
            }
        };
        let session = match bfd.add_session(config.clone()).await {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, local = %config.local, multihop = config.multihop,
                    "BFD session not started; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    r = inputs.changed() => if r.is_err() { return },
                    () = tokio::time::sleep(START_RETRY) => {}
                }
                continue;
            }
        };
        let p = config.profile;
        tracing::info!(local = %config.local, multihop = config.multihop,
            receive_ms = p.receive_interval.as_millis() as u64,
            transmit_ms = p.transmit_interval.as_millis() as u64,
            detect_multiplier = p.detect_multiplier, passive = p.passive_mode,
            "BFD session started");
        lock(&registry).insert(label.clone(), session.counters_reader());
        let end = follow(session, &mut inputs, &cancel).await;
        lock(&registry).remove(&label);
        if matches!(end, End::Stop) {
            return;
        }
    }
}

/// Runs one session until it must stop or be replaced; shuts it down (AdminDown) on the way
/// out.
async fn follow(
    mut session: BfdSession,
    inputs: &mut watch::Receiver<Inputs>,
    cancel: &CancellationToken,
) -> End {
    let mut status = session.watch();
    let mut last = *status.borrow_and_update();
    let end = loop {
        tokio::select! {
            () = cancel.cancelled() => break End::Stop,
            r = inputs.changed() => {
                if r.is_err() {
                    break End::Stop;
                }
                let i = inputs.borrow_and_update().clone();
                let Some(want) = session_config(&i.want, i.learnt) else {
                    break End::Restart;
                };
                let running = session.config().clone();
                let same_session = SessionConfig {
                    profile: want.profile,
                    ..running.clone()
                } == want;
                if !same_session {
                    tracing::info!(local = %want.local, multihop = want.multihop,
                        "BFD session address or hop mode changed; starting a new one");
                    break End::Restart;
                }
                if want.profile != running.profile {
                    let p = want.profile;
                    tracing::info!(receive_ms = p.receive_interval.as_millis() as u64,
                        transmit_ms = p.transmit_interval.as_millis() as u64,
                        detect_multiplier = p.detect_multiplier,
                        "BFD profile changed; renegotiating with a Poll Sequence");
                    if let Err(error) = session.set_profile(p).await {
                        tracing::error!(%error, "BFD profile refused; the session keeps its timers");
                    }
                }
            }
            r = status.changed() => {
                if r.is_err() {
                    tracing::warn!("BFD session task ended; starting a new one");
                    break End::Restart;
                }
                let now = *status.borrow_and_update();
                react(&last, &now, &inputs.borrow());
                last = now;
            }
        }
    };
    session.shutdown().await;
    end
}

/// Logs a state change and closes the BGP session when BFD says the path failed.
fn react(before: &SessionStatus, now: &SessionStatus, inputs: &Inputs) {
    if before.state != now.state {
        tracing::info!(from = %before.state, to = %now.state, diag = %now.local_diag,
            remote_diag = %now.remote_diag, remote_state = %now.remote_state,
            detection_ms = now.detection_time.map(|d| d.as_millis() as u64),
            "BFD session state changed");
    }
    if closes_bgp(before, now) {
        let sent = inputs.speaker.reset_peer(
            inputs.want.peer,
            Notification::cease(cease_subcode::BFD_DOWN),
        );
        tracing::warn!(diag = %now.local_diag, remote_diag = %now.remote_diag, reset = sent,
            "BFD session down: closing the BGP session (Cease 6/10 BFD Down, RFC 9384)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_bfd::{Diag, State};

    fn peer(yaml_spec: &str) -> BgpPeer {
        let text = format!(
            "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: fast, namespace: m}}\n\
             spec: {{receiveInterval: 50, transmitInterval: 60, detectMultiplier: 4, minimumTtl: 250}}\n\
             ---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: plain, namespace: m}}\n\
             ---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p, namespace: m}}\n\
             spec: {{myASN: 64500, peerASN: 64512, peerAddress: 192.0.2.1, {yaml_spec}}}\n"
        );
        let res =
            ferrolb_api::source::files::load_str(&text, std::path::Path::new("t")).expect("yaml");
        let config = ferrolb_api::validate::validate(&res).expect("valid");
        config.bgp_peers.get("p").cloned().expect("peer p")
    }

    #[test]
    fn only_peers_with_a_bfd_profile_get_a_session() {
        assert_eq!(want(&peer("holdTime: 90s")), None);
        let w = want(&peer("bfdProfile: fast")).expect("bfd");
        assert_eq!(w.peer, "192.0.2.1".parse::<IpAddr>().expect("ip"));
        assert_eq!(w.source, None);
        assert!(!w.multihop);
    }

    #[test]
    fn an_unnumbered_peer_gets_no_bfd_session() {
        let mut p = peer("bfdProfile: fast");
        p.peer_address = "::".parse().expect("ip");
        p.interface = Some("eth0".into());
        assert_eq!(want(&p), None);
    }

    #[test]
    fn source_address_and_ebgp_multihop_choose_the_source_and_rfc_5883() {
        let w = want(&peer(
            "bfdProfile: fast, sourceAddress: 192.0.2.9, ebgpMultiHop: true",
        ))
        .expect("bfd");
        assert_eq!(w.source, Some("192.0.2.9".parse().expect("ip")));
        assert!(w.multihop);
        let c = session_config(&w, Some("192.0.2.7".parse().expect("ip"))).expect("config");
        // sourceAddress wins over what the BGP session used.
        assert_eq!(c.local, "192.0.2.9".parse::<IpAddr>().expect("ip"));
        assert!(c.multihop);
    }

    #[test]
    fn without_source_address_the_session_waits_for_the_bgp_sessions_source() {
        let w = want(&peer("bfdProfile: fast")).expect("bfd");
        assert_eq!(session_config(&w, None), None);
        let local: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(
            session_config(&w, Some(local)).map(|c| c.local),
            Some(local)
        );
    }

    #[test]
    fn profile_fields_map_and_unset_ones_take_metallbs_defaults() {
        let w = want(&peer("bfdProfile: fast")).expect("bfd");
        assert_eq!(w.profile.receive_interval, Duration::from_millis(50));
        assert_eq!(w.profile.transmit_interval, Duration::from_millis(60));
        assert_eq!(w.profile.detect_multiplier, 4);
        assert_eq!(w.profile.minimum_ttl, 250);
        assert_eq!(w.profile.echo_interval, Duration::from_millis(50));
        assert!(!w.profile.passive_mode && !w.profile.echo_mode);
        let plain = want(&peer("bfdProfile: plain")).expect("bfd");
        assert_eq!(plain.profile, BfdProfile::default());
        assert_eq!(plain.profile.receive_interval, Duration::from_millis(300));
        assert_eq!(plain.profile.transmit_interval, Duration::from_millis(300));
        assert_eq!(plain.profile.detect_multiplier, 3);
        assert_eq!(plain.profile.minimum_ttl, 254);
        let modes = profile_of(&model::BfdProfile {
            name: "m".into(),
            receive_interval_ms: None,
            transmit_interval_ms: None,
            detect_multiplier: None,
            echo_interval_ms: Some(70),
            echo_mode: true,
            passive_mode: true,
            minimum_ttl: None,
        });
        assert!(modes.echo_mode && modes.passive_mode);
        assert_eq!(modes.echo_interval, Duration::from_millis(70));
    }

    #[test]
    fn a_profile_change_renegotiates_and_an_address_change_restarts() {
        let w = want(&peer("bfdProfile: fast")).expect("bfd");
        assert_eq!(plan(None, None), Plan::Keep);
        assert_eq!(plan(None, Some(&w)), Plan::Start);
        assert_eq!(plan(Some(&w), None), Plan::Stop);
        assert_eq!(plan(Some(&w), Some(&w)), Plan::Keep);
        let plain = want(&peer("bfdProfile: plain")).expect("bfd");
        assert_eq!(
            plan(Some(&w), Some(&plain)),
            Plan::SetProfile(BfdProfile::default())
        );
        let multihop = BfdWant {
            multihop: true,
            ..w
        };
        assert_eq!(plan(Some(&w), Some(&multihop)), Plan::Restart);
        let moved = BfdWant {
            source: Some("192.0.2.9".parse().expect("ip")),
            ..w
        };
        assert_eq!(plan(Some(&w), Some(&moved)), Plan::Restart);
        let other = BfdWant {
            peer: "192.0.2.2".parse().expect("ip"),
            ..w
        };
        assert_eq!(plan(Some(&w), Some(&other)), Plan::Restart);
    }

    fn status(state: State, remote_state: State, down_events: u64) -> SessionStatus {
        SessionStatus {
            state,
            local_diag: Diag::NONE,
            remote_state,
            remote_diag: Diag::NONE,
            local_discr: 1,
            remote_discr: 2,
            tx_interval: Duration::from_millis(50),
            detection_time: Some(Duration::from_millis(150)),
            up_events: 1,
            down_events,
        }
    }

    #[test]
    fn only_a_path_failure_closes_bgp() {
        let up = status(State::UP, State::UP, 0);
        // Detection time expired / the peer said Down: close.
        assert!(closes_bgp(&up, &status(State::DOWN, State::UP, 1)));
        assert!(closes_bgp(&up, &status(State::DOWN, State::DOWN, 1)));
        // The peer's AdminDown is an administrative action (RFC 5882 §3.2): keep BGP.
        assert!(!closes_bgp(&up, &status(State::DOWN, State::ADMIN_DOWN, 1)));
        // Coming up, or timers changing, is not a failure.
        let down = status(State::DOWN, State::DOWN, 1);
        assert!(!closes_bgp(&down, &status(State::INIT, State::DOWN, 1)));
        assert!(!closes_bgp(&up, &status(State::UP, State::UP, 0)));
        // A flap seen only as its result (down count grew, Up again) still closes.
        assert!(closes_bgp(&up, &status(State::UP, State::UP, 1)));
    }
}
