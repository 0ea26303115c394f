//! One test per RFC 5880 rule, named as the behaviour, citing the section.

use super::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn params() -> SessionParams {
    SessionParams {
        desired_min_tx: MS(300),
        required_min_rx: MS(300),
        detect_mult: 3,
        passive: false,
    }
}

fn session() -> Session {
    Session::new(0x1111, params(), 7)
}

/// A packet from the peer (discriminator 0x2222) in `state`, addressed to us.
fn from_peer(state: State) -> ControlPacket {
    ControlPacket {
        diag: Diag::NONE,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 4,
        my_discr: 0x2222,
        your_discr: 0x1111,
        desired_min_tx_us: 200_000,
        required_min_rx_us: 500_000,
        required_min_echo_rx_us: 0,
    }
}

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn in_state(state: State) -> Session {
    let mut s = session();
    s.state = state;
    s
}

fn receive(s: Session, p: ControlPacket) -> (Session, Vec<Action>) {
    step(s, Event::Received(p))
}

/// Brings a session Up through Down -> Init -> Up and acknowledges the Up Poll.
fn up_session() -> Session {
    let (s, _) = step(session(), Event::Start);
    let (s, _) = receive(s, from_peer(State::DOWN));
    let (s, _) = receive(s, from_peer(State::UP));
    let (s, _) = receive(
        s,
        ControlPacket {
            final_: true,
            ..from_peer(State::UP)
        },
    );
    assert_eq!(s.state, State::UP);
    assert!(!s.polling);
    s
}

// ---- RFC 5880 §6.8.6: the state transitions on reception ----

#[test]
fn down_receiving_down_goes_init() {
    let (s, a) = receive(in_state(State::DOWN), from_peer(State::DOWN));
    assert_eq!(s.state, State::INIT);
    assert!(a.contains(&Action::StateChanged {
        from: State::DOWN,
        to: State::INIT,
        diag: Diag::NONE
    }));
    assert_eq!(
        sent(&a).first().map(|p| p.state),
        Some(State::INIT),
        "Init goes out at once"
    );
}

#[test]
fn down_receiving_init_goes_up() {
    let (s, _) = receive(in_state(State::DOWN), from_peer(State::INIT));
    assert_eq!(s.state, State::UP);
}

#[test]
fn down_receiving_up_stays_down() {
    let (s, a) = receive(in_state(State::DOWN), from_peer(State::UP));
    assert_eq!(s.state, State::DOWN);
    assert!(!a.iter().any(|a| matches!(a, Action::StateChanged { .. })));
}

#[test]
fn init_receiving_init_or_up_goes_up() {
    for st in [State::INIT, State::UP] {
        let (s, _) = receive(in_state(State::INIT), from_peer(st));
        assert_eq!(s.state, State::UP, "received {st:?}");
    }
}

#[test]
fn init_receiving_down_stays_init() {
    let (s, _) = receive(in_state(State::INIT), from_peer(State::DOWN));
    assert_eq!(s.state, State::INIT);
}

#[test]
fn up_receiving_down_goes_down_with_diag_3() {
    let (s, a) = receive(up_session(), from_peer(State::DOWN));
    assert_eq!(s.state, State::DOWN);
    assert_eq!(s.local_diag, Diag::NEIGHBOR_SIGNALED_SESSION_DOWN);
    assert!(a.contains(&Action::StateChanged {
        from: State::UP,
        to: State::DOWN,
        diag: Diag::NEIGHBOR_SIGNALED_SESSION_DOWN
    }));
}

#[test]
fn up_or_init_receiving_admin_down_goes_down_with_diag_3() {
    for from in [State::UP, State::INIT] {
        let (s, _) = receive(in_state(from), from_peer(State::ADMIN_DOWN));
        assert_eq!(s.state, State::DOWN, "from {from:?}");
        assert_eq!(s.local_diag, Diag::NEIGHBOR_SIGNALED_SESSION_DOWN);
    }
}

#[test]
fn down_receiving_admin_down_stays_down_keeping_its_diag() {
    let mut s = in_state(State::DOWN);
    s.local_diag = Diag::CONTROL_DETECTION_TIME_EXPIRED;
    let (s, _) = receive(s, from_peer(State::ADMIN_DOWN));
    assert_eq!(s.state, State::DOWN);
    assert_eq!(s.local_diag, Diag::CONTROL_DETECTION_TIME_EXPIRED);
}

#[test]
fn admin_down_discards_received_packets_after_recording_the_remote_fields() {
    let (s, a) = receive(
        in_state(State::ADMIN_DOWN),
        ControlPacket {
            poll: true,
            ..from_peer(State::INIT)
        },
    );
    assert_eq!(s.state, State::ADMIN_DOWN);
    assert_eq!(s.remote_discr, 0x2222);
    assert!(
        sent(&a).is_empty(),
        "no Final: the packet is discarded before the P-bit rule"
    );
    assert!(!a.iter().any(|a| matches!(a, Action::ArmDetection(_))));
}

#[test]
fn reception_records_the_remote_variables() {
    let (s, _) = receive(
        session(),
        ControlPacket {
            demand: true,
            ..from_peer(State::DOWN)
        },
    );
    assert_eq!(s.remote_discr, 0x2222);
    assert_eq!(s.remote_state, State::DOWN);
    assert!(s.remote_demand_mode);
    assert_eq!(s.remote_min_rx, MS(500));
    assert_eq!(s.remote_desired_min_tx, MS(200));
    assert_eq!(s.remote_detect_mult, 4);
}

#[test]
fn every_accepted_packet_rearms_detection() {
    let (_, a) = receive(session(), from_peer(State::DOWN));
    // §6.8.4: RemoteDetectMult 4 × max(our RequiredMinRx 300 ms, their DesiredMinTx 200 ms).
    assert!(a.contains(&Action::ArmDetection(MS(1200))));
}

#[test]
fn poll_is_answered_with_final_at_once_and_no_poll_bit() {
    let s = up_session();
    let (_, a) = receive(
        s,
        ControlPacket {
            poll: true,
            ..from_peer(State::UP)
        },
    );
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert!(p[0].final_ && !p[0].poll, "§6.8.7: P clear, F set");
}

#[test]
fn final_answer_carries_the_state_just_entered() {
    let (_, a) = receive(
        session(),
        ControlPacket {
            poll: true,
            ..from_peer(State::DOWN)
        },
    );
    let p = sent(&a);
    assert_eq!(
        p.len(),
        1,
        "the Final doubles as the state-change packet: {p:?}"
    );
    assert_eq!(p[0].state, State::INIT);
    assert!(p[0].final_);
}

// ---- §6.8.4 and §6.8.1: detection ----

#[test]
fn detection_expiry_in_up_goes_down_with_diag_1() {
    let (s, a) = step(up_session(), Event::DetectionTimerExpired);
    assert_eq!(s.state, State::DOWN);
    assert_eq!(s.local_diag, Diag::CONTROL_DETECTION_TIME_EXPIRED);
    assert!(a.contains(&Action::StateChanged {
        from: State::UP,
        to: State::DOWN,
        diag: Diag::CONTROL_DETECTION_TIME_EXPIRED
    }));
}

#[test]
fn detection_expiry_in_init_goes_down_with_diag_1() {
    let (s, _) = step(in_state(State::INIT), Event::DetectionTimerExpired);
    assert_eq!(s.state, State::DOWN);
    assert_eq!(s.local_diag, Diag::CONTROL_DETECTION_TIME_EXPIRED);
}

#[test]
fn detection_expiry_zeroes_the_remote_discriminator() {
    let (s, _) = receive(session(), from_peer(State::UP));
    assert_eq!(s.remote_discr, 0x2222);
    let (s, _) = step(s, Event::DetectionTimerExpired);
    assert_eq!(s.remote_discr, 0, "§6.8.1");
    assert_eq!(s.packet(false).your_discr, 0);
}

#[test]
fn detection_time_is_remote_mult_times_max_of_our_rx_and_their_tx() {
    let mut s = session();
    s.remote_detect_mult = 3;
    s.remote_desired_min_tx = MS(50);
    assert_eq!(
        s.detection_time(),
        Some(MS(900)),
        "our RequiredMinRx 300 ms wins"
    );
    s.remote_desired_min_tx = MS(400);
    assert_eq!(
        s.detection_time(),
        Some(MS(1200)),
        "their DesiredMinTx 400 ms wins"
    );
    s.remote_detect_mult = 0;
    assert_eq!(s.detection_time(), None, "no packet yet");
}

// ---- §6.8.2 and §6.8.3: timers ----

#[test]
fn transmit_interval_is_max_of_our_desired_tx_and_their_required_rx() {
    let s = up_session();
    // Ours 300 ms, theirs 500 ms (from_peer).
    assert_eq!(s.tx_interval(), MS(500));
    let (s, _) = receive(
        s,
        ControlPacket {
            required_min_rx_us: 10_000,
            ..from_peer(State::UP)
        },
    );
    assert_eq!(s.tx_interval(), MS(300));
}

#[test]
fn desired_min_tx_is_one_second_while_not_up() {
    let s = session();
    assert_eq!(s.packet(false).desired_min_tx_us, 1_000_000);
    let (s, _) = receive(s, from_peer(State::DOWN));
    assert_eq!(s.state, State::INIT);
    assert_eq!(s.packet(false).desired_min_tx_us, 1_000_000);
    assert_eq!(
        s.packet(false).required_min_rx_us,
        300_000,
        "RequiredMinRx has no floor"
    );
}

#[test]
fn going_up_starts_a_poll_carrying_the_configured_tx() {
    let (s, _) = receive(session(), from_peer(State::DOWN));
    let (s, a) = receive(s, from_peer(State::UP));
    assert_eq!(s.state, State::UP);
    assert!(s.polling, "§6.8.3: DesiredMinTx changed while Up");
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert!(p[0].poll);
    assert_eq!(p[0].desired_min_tx_us, 300_000);
    // A decrease applies at once (only an increase must wait for the Final).
    assert_eq!(s.tx_desired_in_effect, MS(300));
}

#[test]
fn periodic_packets_carry_the_poll_bit_until_the_final() {
    let (s, _) = receive(session(), from_peer(State::INIT));
    assert!(s.polling);
    let (s, a) = step(s, Event::TxTimerExpired);
    assert!(sent(&a)[0].poll);
    let (s, _) = receive(
        s,
        ControlPacket {
            final_: true,
            ..from_peer(State::UP)
        },
    );
    assert!(!s.polling, "§6.5: Final ends the Poll Sequence");
    let (_, a) = step(s, Event::TxTimerExpired);
    assert!(!sent(&a)[0].poll);
}

#[test]
fn an_increased_tx_interval_takes_effect_only_after_the_final() {
    let s = receive(
        up_session(),
        ControlPacket {
            required_min_rx_us: 1,
            ..from_peer(State::UP)
        },
    )
    .0;
    assert_eq!(s.tx_interval(), MS(300));
    let slower = SessionParams {
        desired_min_tx: MS(800),
        ..params()
    };
    let (s, a) = step(s, Event::SetParams(slower));
    assert_eq!(s.state, State::UP, "no flap");
    assert!(s.polling);
    assert_eq!(
        sent(&a)[0].desired_min_tx_us,
        800_000,
        "advertised at once, with P"
    );
    assert!(sent(&a)[0].poll);
    assert_eq!(
        s.tx_interval(),
        MS(300),
        "§6.8.3: MUST NOT change until the Poll terminates"
    );
    let (s, a) = receive(
        s,
        ControlPacket {
            final_: true,
            required_min_rx_us: 1,
            ..from_peer(State::UP)
        },
    );
    assert_eq!(s.tx_interval(), MS(800));
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ArmTx(d) if *d <= MS(800) && *d >= MS(600))));
}

#[test]
fn a_reduced_required_rx_shortens_detection_only_after_the_final() {
    let s = up_session();
    // Peer sends at 200 ms (from_peer): detection 4 × max(300, 200) = 1200 ms.
    assert_eq!(s.detection_time(), Some(MS(1200)));
    let faster = SessionParams {
        required_min_rx: MS(50),
        ..params()
    };
    let (s, _) = step(s, Event::SetParams(faster));
    assert_eq!(s.packet(false).required_min_rx_us, 50_000);
    assert_eq!(
        s.detection_time(),
        Some(MS(1200)),
        "§6.8.3: the previous value until the Final"
    );
    let (s, _) = receive(
        s,
        ControlPacket {
            final_: true,
            ..from_peer(State::UP)
        },
    );
    assert_eq!(s.detection_time(), Some(MS(800)), "4 × max(50, 200)");
}

#[test]
fn a_change_during_a_poll_waits_for_its_final_then_polls_again() {
    // Up, with the Up Poll still outstanding.
    let (s, _) = step(session(), Event::Start);
    let (s, _) = receive(s, from_peer(State::INIT));
    assert!(s.polling);
    let slower = SessionParams {
        desired_min_tx: MS(800),
        ..params()
    };
    let (s, a) = step(s, Event::SetParams(slower));
    assert!(
        sent(&a).is_empty(),
        "no second Poll while one is outstanding"
    );
    assert_eq!(
        s.packet(false).desired_min_tx_us,
        300_000,
        "old values until the Final"
    );
    // The Final may answer a Poll with the old values: it ends that Poll only.
    let (s, a) = receive(
        s,
        ControlPacket {
            final_: true,
            ..from_peer(State::UP)
        },
    );
    assert!(s.polling, "a new Poll Sequence for the queued change");
    let p = sent(&a);
    assert_eq!((p[0].poll, p[0].desired_min_tx_us), (true, 800_000));
    assert_eq!(
        s.tx_desired_in_effect,
        MS(300),
        "the increase waits for its own Final"
    );
    let (s, _) = receive(
        s,
        ControlPacket {
            final_: true,
            ..from_peer(State::UP)
        },
    );
    assert!(!s.polling);
    assert_eq!(s.tx_desired_in_effect, MS(800));
}

#[test]
fn an_increased_required_rx_lengthens_detection_at_once() {
    let (s, a) = step(
        up_session(),
        Event::SetParams(SessionParams {
            required_min_rx: MS(2000),
            ..params()
        }),
    );
    assert_eq!(s.detection_time(), Some(MS(8000)));
    assert!(a.contains(&Action::ArmDetection(MS(8000))));
}

#[test]
fn a_profile_change_while_down_applies_at_once_without_poll() {
    let (s, a) = step(
        session(),
        Event::SetParams(SessionParams {
            required_min_rx: MS(50),
            detect_mult: 5,
            ..params()
        }),
    );
    assert!(!s.polling);
    assert!(sent(&a).is_empty());
    assert_eq!(s.rx_required_in_effect, MS(50));
    assert_eq!(s.packet(false).detect_mult, 5);
}

#[test]
fn going_down_restores_the_one_second_tx() {
    let (s, _) = receive(up_session(), from_peer(State::DOWN));
    assert_eq!(s.packet(false).desired_min_tx_us, 1_000_000);
    assert_eq!(s.tx_interval(), SLOW_TX);
    assert!(!s.polling);
}

// ---- §6.8.7: transmission ----

#[test]
fn start_sends_at_once_and_arms_the_transmit_timer() {
    let (_, a) = step(session(), Event::Start);
    assert_eq!(sent(&a).len(), 1);
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::ArmTx(d) if *d >= MS(750) && *d <= SLOW_TX)));
}

#[test]
fn passive_session_sends_nothing_before_a_packet_arrives() {
    let mut s = Session::new(
        5,
        SessionParams {
            passive: true,
            ..params()
        },
        1,
    );
    let (s2, a) = step(s.clone(), Event::Start);
    assert!(sent(&a).is_empty(), "§6.1");
    let (_, a) = step(s2, Event::TxTimerExpired);
    assert!(sent(&a).is_empty(), "§6.8.7");
    s = step(s, Event::Received(from_peer(State::DOWN))).0;
    let (_, a) = step(s, Event::TxTimerExpired);
    assert_eq!(sent(&a).len(), 1);
}

#[test]
fn passive_session_falls_silent_when_detection_zeroes_the_remote_discriminator() {
    let s = Session::new(
        5,
        SessionParams {
            passive: true,
            ..params()
        },
        1,
    );
    let (s, _) = receive(s, from_peer(State::DOWN));
    let (s, _) = step(s, Event::DetectionTimerExpired);
    let (_, a) = step(s, Event::TxTimerExpired);
    assert!(sent(&a).is_empty());
}

#[test]
fn remote_required_rx_zero_stops_periodic_transmission() {
    let (s, _) = receive(
        session(),
        ControlPacket {
            required_min_rx_us: 0,
            ..from_peer(State::DOWN)
        },
    );
    let (_, a) = step(s, Event::TxTimerExpired);
    assert!(sent(&a).is_empty());
}

#[test]
fn remote_demand_mode_stops_periodic_transmission_when_both_are_up() {
    let s = up_session();
    let (s, _) = receive(
        s,
        ControlPacket {
            demand: true,
            ..from_peer(State::UP)
        },
    );
    let (s, a) = step(s, Event::TxTimerExpired);
    assert!(sent(&a).is_empty(), "§6.8.7");
    // A poll is still transmitted periodically.
    let (s, _) = step(
        s,
        Event::SetParams(SessionParams {
            desired_min_tx: MS(100),
            ..params()
        }),
    );
    let (_, a) = step(s, Event::TxTimerExpired);
    assert!(sent(&a)[0].poll);
}

#[test]
fn sent_packets_carry_no_demand_no_auth_and_zero_echo_interval() {
    let p = up_session().packet(false);
    assert!(!p.demand, "Demand mode is not supported");
    assert_eq!(p.required_min_echo_rx_us, 0, "Echo is not implemented");
    assert!(!p.control_plane_independent);
    assert_eq!(p.my_discr, 0x1111);
    assert_eq!(p.your_discr, 0x2222);
}

#[test]
fn jitter_stays_between_75_and_100_percent() {
    let i = MS(1000);
    for r in [0, 1, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
        let j = jittered(i, 3, r);
        assert!(j >= MS(750) && j < i, "{r}: {j:?}");
    }
    assert_eq!(jittered(i, 3, 0), MS(750));
}

#[test]
fn jitter_with_detect_mult_1_stays_between_75_and_90_percent() {
    let i = MS(1000);
    for r in [0, 1, u32::MAX / 2, u32::MAX] {
        let j = jittered(i, 1, r);
        assert!(j >= MS(750) && j <= MS(900), "{r}: {j:?}");
    }
}

#[test]
fn successive_transmit_timers_are_jittered_differently() {
    let mut s = session();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (n, a) = step(s, Event::TxTimerExpired);
        s = n;
        for a in a {
            if let Action::ArmTx(d) = a {
                assert!(d >= MS(750) && d <= SLOW_TX);
                seen.insert(d);
            }
        }
    }
    assert!(seen.len() > 10, "{seen:?}");
}

// ---- §6.8.16: administrative control ----

#[test]
fn admin_down_sends_admin_down_with_the_given_diag_and_keeps_transmitting() {
    let (s, a) = step(up_session(), Event::AdminDown(Diag::ADMINISTRATIVELY_DOWN));
    assert_eq!(s.state, State::ADMIN_DOWN);
    let p = sent(&a);
    assert_eq!(p[0].state, State::ADMIN_DOWN);
    assert_eq!(p[0].diag, Diag::ADMINISTRATIVELY_DOWN);
    assert!(a.contains(&Action::CancelDetection));
    let (_, a) = step(s, Event::TxTimerExpired);
    assert_eq!(sent(&a)[0].state, State::ADMIN_DOWN);
}

#[test]
fn admin_up_returns_to_down_and_the_handshake_restarts() {
    let (s, _) = step(up_session(), Event::AdminDown(Diag::ADMINISTRATIVELY_DOWN));
    let (s, _) = step(s, Event::AdminUp);
    assert_eq!(s.state, State::DOWN);
    let (s, _) = receive(s, from_peer(State::DOWN));
    assert_eq!(s.state, State::INIT);
}

#[test]
fn the_peer_going_admin_down_after_our_admin_down_changes_nothing() {
    let (s, _) = step(up_session(), Event::AdminDown(Diag::ADMINISTRATIVELY_DOWN));
    let (s, a) = receive(s, from_peer(State::ADMIN_DOWN));
    assert_eq!(s.state, State::ADMIN_DOWN);
    assert!(!a.iter().any(|a| matches!(a, Action::StateChanged { .. })));
}

// ---- two sessions back to back ----

/// Delivers every packet each side sends to the other; when quiet, fires both transmit
/// timers (three times at most); returns the pair.
fn exchange(
    mut a: Session,
    mut b: Session,
    mut a_out: Vec<Action>,
    mut b_out: Vec<Action>,
) -> (Session, Session) {
    let mut timer_rounds = 0;
    for _ in 0..40 {
        let mut to_b = sent(&a_out);
        let mut to_a = sent(&b_out);
        if to_a.is_empty() && to_b.is_empty() {
            if timer_rounds == 3 {
                break;
            }
            timer_rounds += 1;
            let (n, o) = step(a, Event::TxTimerExpired);
            a = n;
            to_b = sent(&o);
            let (n, o) = step(b, Event::TxTimerExpired);
            b = n;
            to_a = sent(&o);
        }
        a_out = Vec::new();
        b_out = Vec::new();
        for p in to_b {
            let (n, o) = step(b, Event::Received(p));
            b = n;
            b_out.extend(o);
        }
        for p in to_a {
            let (n, o) = step(a, Event::Received(p));
            a = n;
            a_out.extend(o);
        }
    }
    (a, b)
}

#[test]
fn two_sessions_back_to_back_come_up_and_negotiate_the_slower_side() {
    let a = Session::new(1, params(), 1);
    let b = Session::new(
        2,
        SessionParams {
            desired_min_tx: MS(50),
            required_min_rx: MS(500),
            detect_mult: 5,
            passive: true,
        },
        2,
    );
    let (a, a_out) = step(a, Event::Start);
    let (b, b_out) = step(b, Event::Start);
    assert!(sent(&b_out).is_empty(), "b is passive");
    let (a, b) = exchange(a, b, a_out, b_out);
    assert_eq!((a.state, b.state), (State::UP, State::UP));
    assert!(!a.polling && !b.polling, "both Up polls answered");
    // §6.8.2: a sends at max(300, 500), b at max(50, 300).
    assert_eq!(a.tx_interval(), MS(500));
    assert_eq!(b.tx_interval(), MS(300));
    // §6.8.4: a detects after b's mult 5 × max(300, 50); b after 3 × max(500, 300).
    assert_eq!(a.detection_time(), Some(MS(1500)));
    assert_eq!(b.detection_time(), Some(MS(1500)));
}
