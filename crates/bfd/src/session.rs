//! The BFD session state machine (RFC 5880 §6.2, §6.8), asynchronous mode, as a pure
//! function: [`step`]`(Session, Event) -> (Session, Vec<Action>)`. No sockets, no clock, no
//! tokio: timers are [`Action`]s the driver arms, their expiry comes back as an [`Event`],
//! and the transmit jitter draws from a seed the driver passes to [`Session::new`].
//!
//! RFC 5880 §6.2, the state diagram (events are the received State field, or TIMER for the
//! Detection Time expiring):
//!
//! ```text
//!                              +--+
//!                              |  | UP, ADMIN DOWN, TIMER
//!                              |  V
//!                      DOWN  +------+  INIT
//!               +------------|      |------------+
//!               |            | DOWN |            |
//!               |  +-------->|      |<--------+  |
//!               |  |         +------+         |  |
//!               |  |                          |  |
//!               |  |               ADMIN DOWN,|  |
//!               |  |ADMIN DOWN,          DOWN,|  |
//!               |  |TIMER                TIMER|  |
//!               V  |                          |  V
//!             +------+                      +------+
//!        +----|      |                      |      |----+
//!    DOWN|    | INIT |--------------------->|  UP  |    |INIT, UP
//!        +--->|      | INIT, UP             |      |<---+
//!             +------+                      +------+
//! ```
//!
//! What is implemented: the §6.8.6 reception rules after demultiplexing, §6.8.2 timer
//! negotiation, §6.8.3 (1 s DesiredMinTx while not Up; a change of timers while Up runs a
//! Poll Sequence, §6.5, so the session does not flap), §6.8.4 detection, §6.8.7 transmission
//! (jitter, Passive role §6.1, Poll answered with Final at once) and §6.8.16 administrative
//! control.
//!
//! Not implemented: Demand mode (§6.6; we never set D, but honour a peer's D bit as §6.8.6
//! and §6.8.7 require), the Echo function (we advertise Required Min Echo RX Interval 0, so
//! the peer sends none; MetalLB's `echoMode` is accepted and ignored) and authentication
//! (packets with the A bit are discarded when decoding).
//!
//! Beyond the RFC: a packet goes out at once on every state change and at the start of a
//! Poll Sequence instead of waiting for the next periodic one, as FRR does; this shortens
//! the three-way handshake and the renegotiation.

use std::time::Duration;

use crate::packet::{ControlPacket, Diag, State};
use crate::profile::BfdProfile;

/// RFC 5880 §6.8.3: "When bfd.SessionState is not Up, the system MUST set
/// bfd.DesiredMinTxInterval to a value of not less than one second".
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// The timers and role the local system asks for (from a [`BfdProfile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionParams {
    /// bfd.DesiredMinTxInterval once the session is Up.
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult.
    pub detect_mult: u8,
    /// RFC 5880 §6.1 Passive role.
    pub passive: bool,
}

impl From<&BfdProfile> for SessionParams {
    fn from(p: &BfdProfile) -> Self {
        SessionParams {
            desired_min_tx: p.transmit_interval,
            required_min_rx: p.receive_interval,
            detect_mult: p.detect_multiplier,
            passive: p.passive_mode,
        }
    }
}

/// One session: the RFC 5880 §6.8.1 state variables, the configuration, and what the
/// Poll Sequence and the jitter need. Fields are public for inspection; change them only
/// through [`step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// bfd.SessionState.
    pub state: State,
    /// bfd.RemoteSessionState.
    pub remote_state: State,
    /// bfd.LocalDiscr (non-zero, unique on this system).
    pub local_discr: u32,
    /// bfd.RemoteDiscr (0 until the peer's first packet, and after a Detection Time without one).
    pub remote_discr: u32,
    /// bfd.LocalDiag.
    pub local_diag: Diag,
    /// bfd.DesiredMinTxInterval as advertised now (at least [`SLOW_TX`] while not Up).
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval as advertised now.
    pub required_min_rx: Duration,
    /// bfd.RemoteMinRxInterval (initially 1 µs, RFC 5880 §6.8.1).
    pub remote_min_rx: Duration,
    /// bfd.RemoteDemandMode.
    pub remote_demand_mode: bool,
    /// bfd.DetectMult.
    pub detect_mult: u8,
    /// The last Desired Min TX Interval received (for the Detection Time, §6.8.4).
    pub remote_desired_min_tx: Duration,
    /// The last Detect Mult received (for the Detection Time, §6.8.4).
    pub remote_detect_mult: u8,
    /// The last Diag received (for status only).
    pub remote_diag: Diag,
    /// The configured timers and role.
    pub params: SessionParams,
    /// A Poll Sequence is being transmitted (RFC 5880 §6.5).
    pub polling: bool,
    /// The DesiredMinTx that paces our transmissions: an increase waits for the Final
    /// (§6.8.3: "the actual transmission interval used MUST NOT change until the Poll
    /// Sequence described above has terminated").
    pub tx_desired_in_effect: Duration,
    /// The RequiredMinRx used for the Detection Time: a reduction waits for the Final
    /// (§6.8.3: "the previous value of bfd.RequiredMinRxInterval MUST be used when
    /// calculating the Detection Time for the remote system until the Poll Sequence ...
    /// has terminated").
    pub rx_required_in_effect: Duration,
    /// The transmit interval the periodic timer was last armed with.
    pub armed_tx_interval: Option<Duration>,
    /// Timers (DesiredMinTx, RequiredMinRx, DetectMult) changed during an outstanding Poll
    /// Sequence, advertised once it ends.
    pub queued: Option<(Duration, Duration, u8)>,
    rng: u64,
}

/// An input to [`step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The driver starts the session: the first transmission timer (and, unless Passive, the
    /// first packet).
    Start,
    /// A Control packet for this session, decoded and demultiplexed (RFC 5880 §6.8.6 up to
    /// "If the A bit is set ...").
    Received(ControlPacket),
    /// The periodic transmission timer fired (RFC 5880 §6.8.7).
    TxTimerExpired,
    /// A Detection Time passed without a packet (RFC 5880 §6.8.4).
    DetectionTimerExpired,
    /// New timers or role (a profile change): renegotiated with a Poll Sequence while Up.
    SetParams(SessionParams),
    /// Administratively disable the session with this diagnostic (RFC 5880 §6.8.16).
    AdminDown(Diag),
    /// Administratively enable the session (RFC 5880 §6.8.16: "Set bfd.SessionState to Down").
    AdminUp,
}

/// What the driver does after a [`step`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Transmit this packet now.
    Send(ControlPacket),
    /// (Re)arm the periodic transmission timer to fire after this (jittered) delay.
    ArmTx(Duration),
    /// (Re)arm the detection timer to fire after the Detection Time.
    ArmDetection(Duration),
    /// Disarm the detection timer.
    CancelDetection,
    /// bfd.SessionState changed.
    StateChanged {
        /// The state before.
        from: State,
        /// The state now.
        to: State,
        /// bfd.LocalDiag at the change (why).
        diag: Diag,
    },
}

impl Session {
    /// A new session in Down (RFC 5880 §6.8.1 initial values). `local_discr` must be non-zero
    /// and unique on this system (0 becomes 1); `jitter_seed` seeds the transmit jitter.
    pub fn new(local_discr: u32, params: SessionParams, jitter_seed: u64) -> Session {
        let desired_min_tx = params.desired_min_tx.max(SLOW_TX);
        Session {
            state: State::DOWN,
            remote_state: State::DOWN,
            local_discr: local_discr.max(1),
            remote_discr: 0,
            local_diag: Diag::NONE,
            desired_min_tx,
            required_min_rx: params.required_min_rx,
            remote_min_rx: Duration::from_micros(1),
            remote_demand_mode: false,
            detect_mult: params.detect_mult.max(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_diag: Diag::NONE,
            params,
            polling: false,
            tx_desired_in_effect: desired_min_tx,
            rx_required_in_effect: params.required_min_rx,
            armed_tx_interval: None,
            queued: None,
            rng: jitter_seed,
        }
    }

    /// RFC 5880 §6.8.2: the interval we transmit at (before jitter), "the greater of
    /// bfd.DesiredMinTxInterval and bfd.RemoteMinRxInterval".
    pub fn tx_interval(&self) -> Duration {
        self.tx_desired_in_effect.max(self.remote_min_rx)
    }

    /// RFC 5880 §6.8.4: the Detection Time, "the value of Detect Mult received from the
    /// remote system, multiplied by the agreed transmit interval of the remote system (the
    /// greater of bfd.RequiredMinRxInterval and the last received Desired Min TX
    /// Interval)". `None` before the first packet.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote_detect_mult > 0).then(|| {
            self.rx_required_in_effect.max(self.remote_desired_min_tx)
                * u32::from(self.remote_detect_mult)
        })
    }

    /// RFC 5880 §6.8.7, the conditions under which periodic transmission stops.
    pub fn may_transmit_periodic(&self) -> bool {
        // "A system MUST NOT transmit BFD Control packets if bfd.RemoteDiscr is zero and the
        // system is taking the Passive role."
        let passive_silent = self.params.passive && self.remote_discr == 0;
        // "MUST NOT periodically transmit ... if bfd.RemoteMinRxInterval is zero."
        let remote_refuses = self.remote_min_rx.is_zero();
        // "MUST NOT periodically transmit ... if Demand mode is active on the remote system
        // ... and a Poll Sequence is not being transmitted."
        let remote_demand = self.remote_demand_mode
            && self.state == State::UP
            && self.remote_state == State::UP
            && !self.polling;
        !(passive_silent || remote_refuses || remote_demand)
    }

    /// The Control packet we send now (RFC 5880 §6.8.7, "the contents of transmitted BFD
    /// Control packets"); `final_` answers a Poll and clears P.
    pub fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.polling && !final_,
            final_,
            // We share fate with the control plane (a userspace daemon).
            control_plane_independent: false,
            // Demand mode is not supported: "bfd.DemandMode" stays 0.
            demand: false,
            detect_mult: self.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: micros(self.desired_min_tx),
            required_min_rx_us: micros(self.required_min_rx),
            // "Required Min Echo RX Interval ... zero if the local system does not support
            // Echo": the Echo function is not implemented.
            required_min_echo_rx_us: 0,
        }
    }

    fn next_random(&mut self) -> u32 {
        // splitmix64: cheap, deterministic for tests, good enough for spreading packets.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    fn arm_tx(&mut self, out: &mut Vec<Action>) {
        let interval = self.tx_interval();
        self.armed_tx_interval = Some(interval);
        let r = self.next_random();
        out.push(Action::ArmTx(jittered(interval, self.detect_mult, r)));
    }

    /// Re-arms the transmit timer if the negotiated interval changed since it was armed.
    fn rearm_tx_if_changed(&mut self, out: &mut Vec<Action>) {
        if self
            .armed_tx_interval
            .is_some_and(|i| i != self.tx_interval())
        {
            self.arm_tx(out);
        }
    }

    fn send_now(&self, out: &mut Vec<Action>) {
        if !(self.params.passive && self.remote_discr == 0) {
            out.push(Action::Send(self.packet(false)));
        }
    }

    /// Ends a Poll Sequence: the advertised values take effect for pacing and detection.
    fn end_poll(&mut self) {
        self.polling = false;
        self.tx_desired_in_effect = self.desired_min_tx;
        self.rx_required_in_effect = self.required_min_rx;
    }

    /// Advertises `desired`/`required`/`mult`; returns true if that starts a Poll Sequence
    /// (a change while Up, RFC 5880 §6.8.3: "If either bfd.DesiredMinTxInterval is changed
    /// or bfd.RequiredMinRxInterval is changed, a Poll Sequence MUST be initiated"), and
    /// applies at once what needs no acknowledgement.
    ///
    /// A change while a Poll Sequence is outstanding waits for its Final and then starts
    /// its own: packets carry no sequence number, so a Final arriving after the change may
    /// answer a Poll that carried the old values, and taking it as acknowledging the new
    /// ones could let the peer's Detection Time run out.
    fn advertise(&mut self, desired: Duration, required: Duration, mult: u8) -> bool {
        let current = (self.desired_min_tx, self.required_min_rx, self.detect_mult);
        if self.state == State::UP && self.polling {
            self.queued =
                ((desired, required, mult) != current).then_some((desired, required, mult));
            return false;
        }
        self.queued = None;
        let changed = (desired, required, mult) != current;
        self.desired_min_tx = desired;
        self.required_min_rx = required;
        self.detect_mult = mult;
        if self.state == State::UP && changed {
            self.polling = true;
            // Sending faster and detecting later are safe before the peer acknowledges.
            self.tx_desired_in_effect = self.tx_desired_in_effect.min(desired);
            self.rx_required_in_effect = self.rx_required_in_effect.max(required);
            true
        } else {
            self.end_poll();
            false
        }
    }

    fn receive(&mut self, p: ControlPacket, out: &mut Vec<Action>) {
        // RFC 5880 §6.8.6, after the checks made by decode and demux:
        // "Set bfd.RemoteDiscr to the value of My Discriminator."
        self.remote_discr = p.my_discr;
        // "Set bfd.RemoteSessionState to the value of the State (Sta) field."
        self.remote_state = p.state;
        // "Set bfd.RemoteDemandMode to the value of the Demand (D) bit."
        self.remote_demand_mode = p.demand;
        // "Set bfd.RemoteMinRxInterval to the value of Required Min RX Interval."
        self.remote_min_rx = Duration::from_micros(u64::from(p.required_min_rx_us));
        self.remote_desired_min_tx = Duration::from_micros(u64::from(p.desired_min_tx_us));
        self.remote_detect_mult = p.detect_mult;
        self.remote_diag = p.diag;
        // "If the Required Min Echo RX Interval field is zero, the transmission of Echo
        // packets, if any, MUST cease." We never send Echo packets.
        // "If a Poll Sequence is being transmitted by the local system and the Final (F) bit
        // in the received packet is set, the Poll Sequence MUST be terminated."
        if self.polling && p.final_ {
            self.end_poll();
            // A change made during that Poll Sequence gets its own, started at once.
            if let Some((d, r, m)) = self.queued.take() {
                if self.advertise(d, r, m) {
                    out.push(Action::Send(self.packet(false)));
                }
            }
        }
        // "Update the transmit interval as described in section 6.8.2."
        self.rearm_tx_if_changed(out);
        // "Update the Detection Time as described in section 6.8.4": computed from the
        // fields just stored, armed below once the packet counts as received.

        // "If bfd.SessionState is AdminDown: Discard the packet"
        if self.state == State::ADMIN_DOWN {
            return;
        }
        if p.state == State::ADMIN_DOWN {
            // "If received state is AdminDown: If bfd.SessionState is not Down, Set
            // bfd.LocalDiag to 3 (Neighbor signaled session down), Set bfd.SessionState to
            // Down"
            if self.state != State::DOWN {
                self.local_diag = Diag::NEIGHBOR_SIGNALED_SESSION_DOWN;
                self.state = State::DOWN;
            }
        } else if self.state == State::DOWN {
            // "If received State is Down: Set bfd.SessionState to Init; Else if received
            // State is Init: Set bfd.SessionState to Up"
            if p.state == State::DOWN {
                self.state = State::INIT;
            } else if p.state == State::INIT {
                self.state = State::UP;
            }
        } else if self.state == State::INIT {
            // "If received State is Init or Up: Set bfd.SessionState to Up"
            if p.state == State::INIT || p.state == State::UP {
                self.state = State::UP;
            }
        } else if p.state == State::DOWN {
            // Up: "If received State is Down: Set bfd.LocalDiag to 3 (Neighbor signaled
            // session down); Set bfd.SessionState to Down"
            self.local_diag = Diag::NEIGHBOR_SIGNALED_SESSION_DOWN;
            self.state = State::DOWN;
        }
        // "If the Poll (P) bit is set, send a BFD Control packet to the remote system with
        // the Poll (P) bit clear, and the Final (F) bit set." (§6.8.7: "as soon as
        // practicable, without respect to the transmission timer"). Sent after the state
        // change so the Final carries the new state.
        if p.poll {
            out.push(Action::Send(self.packet(true)));
        }
        // "If the packet was not discarded, it has been received for purposes of the
        // Detection Time expiration rules in section 6.8.4."
        if let Some(t) = self.detection_time() {
            out.push(Action::ArmDetection(t));
        }
    }

    /// After any event: the consequences of a state change (§6.8.3 timers, an immediate
    /// packet, the notification).
    fn after_state_change(&mut self, from: State, out: &mut Vec<Action>) {
        let to = self.state;
        out.push(Action::StateChanged {
            from,
            to,
            diag: self.local_diag,
        });
        let p = self.params;
        if to == State::UP {
            // §6.8.3: the 1 s floor no longer applies; the configured DesiredMinTx is a
            // change while Up, so a Poll Sequence carries it (§6.5).
            self.advertise(p.desired_min_tx, p.required_min_rx, p.detect_mult);
        } else {
            // §6.8.3: at least 1 s while not Up (no Poll: the session is not Up).
            self.advertise(
                p.desired_min_tx.max(SLOW_TX),
                p.required_min_rx,
                p.detect_mult,
            );
        }
        if to == State::ADMIN_DOWN {
            out.push(Action::CancelDetection);
        }
        // A packet with the new state at once (beyond the RFC, see the module doc), unless
        // an F packet with the new state already went out in this step.
        let final_sent = out
            .iter()
            .any(|a| matches!(a, Action::Send(p) if p.final_ && p.state == to));
        if !final_sent {
            self.send_now(out);
        }
        self.rearm_tx_if_changed(out);
    }
}

/// RFC 5880 §6.8.7 jitter: the interval "MUST be reduced by a random value of 0 to 25%";
/// with bfd.DetectMult 1, "no more than 90% ... and no less than 75%". `random` is uniform
/// over `u32`.
pub fn jittered(interval: Duration, detect_mult: u8, random: u32) -> Duration {
    // Fractions in 1/1_000_000 of the interval.
    let (lo, span): (u128, u128) = if detect_mult == 1 {
        (750_000, 150_000)
    } else {
        (750_000, 250_000)
    };
    let frac = lo + span * u128::from(random) / (u128::from(u32::MAX) + 1);
    let nanos = interval.as_nanos() * frac / 1_000_000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// RFC 5880 §6.8: one event in, the next session and the actions for the driver out.
pub fn step(mut s: Session, event: Event) -> (Session, Vec<Action>) {
    let mut out = Vec::new();
    let before = s.state;
    match event {
        Event::Start => {
            s.send_now(&mut out);
            s.arm_tx(&mut out);
        }
        Event::Received(p) => s.receive(p, &mut out),
        Event::TxTimerExpired => {
            if s.may_transmit_periodic() {
                out.push(Action::Send(s.packet(false)));
            }
            s.arm_tx(&mut out);
        }
        Event::DetectionTimerExpired => {
            // §6.8.4: "if a period of time equal to the Detection Time passes without
            // receiving a BFD Control packet from the remote system, and bfd.SessionState is
            // Init or Up, the session has gone down -- the local system MUST set
            // bfd.SessionState to Down and bfd.LocalDiag to 1 (Control Detection Time
            // Expired)."
            if s.state == State::INIT || s.state == State::UP {
                s.state = State::DOWN;
                s.local_diag = Diag::CONTROL_DETECTION_TIME_EXPIRED;
            }
            // §6.8.1 bfd.RemoteDiscr: "MUST be set to zero if Detection Time passes without
            // the receipt of a valid, authenticated BFD packet from the remote system." The
            // other remote variables return to their initial values with it.
            s.remote_discr = 0;
            s.remote_state = State::DOWN;
            s.remote_demand_mode = false;
            s.remote_min_rx = Duration::from_micros(1);
            s.remote_detect_mult = 0;
            s.rearm_tx_if_changed(&mut out);
        }
        Event::SetParams(p) => {
            s.params = p;
            let desired = if s.state == State::UP {
                p.desired_min_tx
            } else {
                p.desired_min_tx.max(SLOW_TX)
            };
            // Start the Poll Sequence at once (§6.5) rather than at the next periodic packet.
            if s.advertise(desired, p.required_min_rx, p.detect_mult.max(1)) {
                s.send_now(&mut out);
            }
            if let (Some(t), State::INIT | State::UP) = (s.detection_time(), s.state) {
                out.push(Action::ArmDetection(t));
            }
            s.rearm_tx_if_changed(&mut out);
        }
        Event::AdminDown(diag) => {
            // §6.8.16: "Set bfd.SessionState to AdminDown; Set bfd.LocalDiag to an
            // appropriate value". Periodic packets go on ("BFD Control packets SHOULD be
            // transmitted for at least a Detection Time after transitioning to AdminDown").
            if s.state != State::ADMIN_DOWN {
                s.state = State::ADMIN_DOWN;
                s.local_diag = diag;
            }
        }
        Event::AdminUp => {
            // §6.8.16: "If enabling session: Set bfd.SessionState to Down"
            if s.state == State::ADMIN_DOWN {
                s.state = State::DOWN;
            }
        }
    }
    if s.state != before {
        s.after_state_change(before, &mut out);
    }
    (s, out)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
