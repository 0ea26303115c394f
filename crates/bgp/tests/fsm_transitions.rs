//! One test per RFC 4271 §8.2.2 transition that matters, plus hold time negotiation, RFC 6608
//! subcodes and §6.8 collision resolution.

use std::net::Ipv4Addr;
use std::time::Duration;

use ferrolb_bgp::fsm::{
    check_open, graceful_notification, hard_reset, resolve_collision, restart_close, step, Action,
    CollisionWinner, Config, DownReason, Event, RestartClose, State, Timer, OPEN_SENT_HOLD_TIME,
};
use ferrolb_bgp::wire::error::{cease_subcode, fsm_subcode, open_subcode};
use ferrolb_bgp::wire::{
    Capability, ErrorCode, Family, GracefulRestart, GracefulRestartFamily, HoldTime, Message,
    MessageType, Notification, Open, RouteRefresh, Update,
};

fn open(asn: u32, hold: u16, id: [u8; 4]) -> Open {
    Open::new(
        asn,
        HoldTime::new(hold).expect("valid hold time"),
        Ipv4Addr::from(id),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
        ],
    )
}

fn cfg(hold: u16, keepalive: Option<u16>) -> Config {
    Config {
        local_open: open(65001, hold, [10, 0, 0, 1]),
        peer_as: Some(65002),
        keepalive,
    }
}

fn established(cfg: &Config, remote_hold: u16) -> State {
    let (s, _) = step(
        cfg,
        State::OpenSent,
        Event::BgpOpen(open(65002, remote_hold, [10, 0, 0, 2])),
    );
    let (s, _) = step(cfg, s, Event::KeepAliveMsg);
    assert!(matches!(s, State::Established(_)), "got {s:?}");
    s
}

fn sent_notification(actions: &[Action]) -> Option<&Notification> {
    actions.iter().find_map(|a| match a {
        Action::Send(Message::Notification(n)) => Some(n),
        _ => None,
    })
}

#[test]
fn idle_manual_start_connects_at_once_and_arms_connect_retry() {
    let (s, a) = step(&cfg(90, None), State::Idle, Event::ManualStart);
    assert_eq!(s, State::Connect);
    assert_eq!(a, vec![Action::ArmConnectRetry, Action::Connect]);
}

#[test]
fn idle_ignores_messages_and_timers() {
    for e in [
        Event::KeepAliveMsg,
        Event::HoldTimerExpired,
        Event::TcpConnectionFails,
    ] {
        let (s, a) = step(&cfg(90, None), State::Idle, e);
        assert_eq!(s, State::Idle);
        assert!(a.is_empty());
    }
}

#[test]
fn connect_tcp_confirmed_sends_open_and_sets_the_large_hold_timer() {
    let c = cfg(90, None);
    let (s, a) = step(&c, State::Connect, Event::TcpConnectionConfirmed);
    assert_eq!(s, State::OpenSent);
    assert!(a.contains(&Action::Send(Message::Open(c.local_open.clone()))));
    assert!(a.contains(&Action::ArmTimer(Timer::Hold, OPEN_SENT_HOLD_TIME)));
    assert!(a.contains(&Action::CancelTimer(Timer::ConnectRetry)));
}

#[test]
fn active_tcp_confirmed_also_sends_open() {
    let (s, _) = step(&cfg(90, None), State::Active, Event::TcpConnectionConfirmed);
    assert_eq!(s, State::OpenSent);
}

#[test]
fn connect_tcp_failure_goes_active_and_rearms_connect_retry() {
    let (s, a) = step(&cfg(90, None), State::Connect, Event::TcpConnectionFails);
    assert_eq!(s, State::Active);
    assert!(a.contains(&Action::ArmConnectRetry));
}

#[test]
fn active_connect_retry_expiry_connects_again() {
    let (s, a) = step(
        &cfg(90, None),
        State::Active,
        Event::ConnectRetryTimerExpired,
    );
    assert_eq!(s, State::Connect);
    assert!(a.contains(&Action::Connect));
}

#[test]
fn open_sent_valid_open_sends_keepalive_and_negotiates_the_smaller_hold_time() {
    let c = cfg(90, None);
    let (s, a) = step(
        &c,
        State::OpenSent,
        Event::BgpOpen(open(65002, 30, [10, 0, 0, 2])),
    );
    let State::OpenConfirm(n) = s else {
        panic!("expected OpenConfirm, got {s:?}")
    };
    assert_eq!((n.hold_time, n.keepalive), (30, 10));
    assert!(a.contains(&Action::Send(Message::Keepalive)));
    assert!(a.contains(&Action::ArmTimer(Timer::Hold, Duration::from_secs(30))));
    assert!(a.contains(&Action::ArmTimer(Timer::Keepalive, Duration::from_secs(10))));
    assert!(a.iter().any(|x| matches!(x, Action::Negotiated(_))));
}

#[test]
fn configured_keepalive_is_used_but_never_above_a_third_of_hold() {
    let remote = open(65002, 90, [10, 0, 0, 2]);
    assert_eq!(
        check_open(&cfg(90, Some(5)), &remote).map(|n| n.keepalive),
        Ok(5)
    );
    assert_eq!(
        check_open(&cfg(90, Some(60)), &remote).map(|n| n.keepalive),
        Ok(30)
    );
}

#[test]
fn hold_time_zero_runs_without_hold_and_keepalive_timers() {
    let c = cfg(0, None);
    let (s, a) = step(
        &c,
        State::OpenSent,
        Event::BgpOpen(open(65002, 90, [10, 0, 0, 2])),
    );
    let State::OpenConfirm(n) = &s else {
        panic!("expected OpenConfirm")
    };
    assert_eq!((n.hold_time, n.keepalive), (0, 0));
    assert!(a.contains(&Action::CancelTimer(Timer::Hold)));
    assert!(a.contains(&Action::CancelTimer(Timer::Keepalive)));
    assert!(!a.iter().any(|x| matches!(x, Action::ArmTimer(_, _))));
    let (s, a) = step(&c, s, Event::KeepAliveMsg);
    assert!(matches!(s, State::Established(_)));
    assert_eq!(a, vec![Action::Up]);
    let (_, a) = step(&c, s, Event::KeepaliveTimerExpired);
    assert!(a.is_empty(), "no KEEPALIVE with hold time 0: {a:?}");
}

#[test]
fn open_sent_wrong_peer_as_sends_2_2() {
    let (s, a) = step(
        &cfg(90, None),
        State::OpenSent,
        Event::BgpOpen(open(65099, 90, [10, 0, 0, 2])),
    );
    assert_eq!(s, State::Idle);
    let n = sent_notification(&a).expect("a NOTIFICATION");
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::OPEN_MESSAGE, open_subcode::BAD_PEER_AS)
    );
    assert!(a.contains(&Action::Close));
}

#[test]
fn ibgp_open_with_our_own_router_id_sends_2_3() {
    let mut c = cfg(90, None);
    c.peer_as = Some(65001);
    let (_, a) = step(
        &c,
        State::OpenSent,
        Event::BgpOpen(open(65001, 90, [10, 0, 0, 1])),
    );
    let n = sent_notification(&a).expect("a NOTIFICATION");
    assert_eq!(n.subcode, open_subcode::BAD_BGP_IDENTIFIER);
}

#[test]
fn open_sent_hold_timer_expiry_sends_4_0() {
    let (s, a) = step(&cfg(90, None), State::OpenSent, Event::HoldTimerExpired);
    assert_eq!(s, State::Idle);
    assert_eq!(
        sent_notification(&a),
        Some(&Notification::hold_timer_expired())
    );
    assert!(a.contains(&Action::Down(DownReason::HoldTimerExpired)));
}

#[test]
fn established_hold_timer_expiry_sends_4_0_and_reports_down() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let (s, a) = step(&c, s, Event::HoldTimerExpired);
    assert_eq!(s, State::Idle);
    assert_eq!(
        sent_notification(&a),
        Some(&Notification::hold_timer_expired())
    );
    assert!(a.contains(&Action::Down(DownReason::HoldTimerExpired)));
}

#[test]
fn open_confirm_keepalive_establishes_and_restarts_hold() {
    let c = cfg(90, None);
    let (s, _) = step(
        &c,
        State::OpenSent,
        Event::BgpOpen(open(65002, 60, [10, 0, 0, 2])),
    );
    let (s, a) = step(&c, s, Event::KeepAliveMsg);
    assert!(matches!(s, State::Established(_)));
    assert_eq!(
        a,
        vec![
            Action::ArmTimer(Timer::Hold, Duration::from_secs(60)),
            Action::Up
        ]
    );
}

#[test]
fn unexpected_messages_get_the_rfc_6608_subcode_of_the_state() {
    let c = cfg(90, None);
    // OpenSent + KEEPALIVE -> 5/1.
    let (_, a) = step(&c, State::OpenSent, Event::KeepAliveMsg);
    assert_eq!(
        sent_notification(&a),
        Some(&Notification::fsm_unexpected(
            fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_SENT,
            MessageType::KEEPALIVE
        ))
    );
    // OpenConfirm + UPDATE -> 5/2.
    let (s, _) = step(
        &c,
        State::OpenSent,
        Event::BgpOpen(open(65002, 90, [10, 0, 0, 2])),
    );
    let (_, a) = step(&c, s, Event::UpdateMsg(Update::default()));
    assert_eq!(
        sent_notification(&a),
        Some(&Notification::fsm_unexpected(
            fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM,
            MessageType::UPDATE
        ))
    );
    // Established + OPEN -> 5/3.
    let s = established(&c, 90);
    let (s, a) = step(&c, s, Event::BgpOpen(open(65002, 90, [10, 0, 0, 2])));
    assert_eq!(s, State::Idle);
    assert_eq!(
        sent_notification(&a),
        Some(&Notification::fsm_unexpected(
            fsm_subcode::UNEXPECTED_MESSAGE_IN_ESTABLISHED,
            MessageType::OPEN
        ))
    );
}

#[test]
fn established_update_is_handed_over_and_restarts_hold() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let (s, a) = step(&c, s, Event::UpdateMsg(Update::default()));
    assert!(matches!(s, State::Established(_)));
    assert_eq!(
        a,
        vec![
            Action::ArmTimer(Timer::Hold, Duration::from_secs(90)),
            Action::Received(Update::default())
        ]
    );
}

#[test]
fn established_route_refresh_asks_to_resend_adj_rib_out() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let rr = RouteRefresh::request(
        ferrolb_bgp::wire::Afi::IPV4,
        ferrolb_bgp::wire::Safi::UNICAST,
    );
    let (_, a) = step(&c, s, Event::RouteRefreshMsg(rr));
    assert!(a.contains(&Action::RefreshRequested(rr)));
}

#[test]
fn established_keepalive_timer_sends_keepalive_and_rearms() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let (_, a) = step(&c, s, Event::KeepaliveTimerExpired);
    assert_eq!(
        a,
        vec![
            Action::Send(Message::Keepalive),
            Action::ArmTimer(Timer::Keepalive, Duration::from_secs(30))
        ]
    );
}

#[test]
fn established_notification_received_goes_idle_without_answering() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let n = Notification::cease(cease_subcode::ADMINISTRATIVE_RESET);
    let (s, a) = step(&c, s, Event::NotifMsg(n.clone()));
    assert_eq!(s, State::Idle);
    assert!(sent_notification(&a).is_none());
    assert!(a.contains(&Action::Down(DownReason::NotificationReceived(n))));
}

#[test]
fn manual_stop_in_established_sends_the_given_cease() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let cease =
        Notification::cease_with_communication(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "bye")
            .expect("short text");
    let (s, a) = step(&c, s, Event::ManualStop(cease.clone()));
    assert_eq!(s, State::Idle);
    assert_eq!(sent_notification(&a), Some(&cease));
    assert!(a.contains(&Action::Close));
}

#[test]
fn manual_stop_in_connect_closes_without_notification() {
    let (s, a) = step(
        &cfg(90, None),
        State::Connect,
        Event::ManualStop(Notification::cease(2)),
    );
    assert_eq!(s, State::Idle);
    assert!(sent_notification(&a).is_none());
}

#[test]
fn automatic_stop_in_established_sends_cease_bfd_down_and_goes_idle() {
    // RFC 4271 §8.2.2 Event 8 (the BFD coupling: RFC 9384 Cease 6/10): NOTIFICATION, close,
    // every timer stopped, Down reported; the driver restarts after its backoff.
    let c = cfg(90, None);
    let s = established(&c, 90);
    let cease = Notification::cease(cease_subcode::BFD_DOWN);
    let (s, a) = step(&c, s, Event::AutomaticStop(cease.clone()));
    assert_eq!(s, State::Idle);
    assert_eq!(sent_notification(&a), Some(&cease));
    assert!(a.contains(&Action::Close));
    assert!(a.contains(&Action::CancelTimer(Timer::Hold)));
    assert!(a.contains(&Action::CancelTimer(Timer::Keepalive)));
    assert!(a.contains(&Action::Down(DownReason::NotificationSent(cease))));
}

#[test]
fn automatic_stop_before_open_sent_drops_the_attempt_and_in_idle_does_nothing() {
    let c = cfg(90, None);
    let cease = Notification::cease(cease_subcode::BFD_DOWN);
    let (s, a) = step(&c, State::Active, Event::AutomaticStop(cease.clone()));
    assert_eq!(s, State::Idle);
    assert!(sent_notification(&a).is_none());
    assert!(a.contains(&Action::Close));
    let (s, a) = step(&c, State::Idle, Event::AutomaticStop(cease));
    assert_eq!(s, State::Idle);
    assert!(a.is_empty());
}

#[test]
fn tcp_failure_in_established_reports_connection_lost() {
    let c = cfg(90, None);
    let s = established(&c, 90);
    let (s, a) = step(&c, s, Event::TcpConnectionFails);
    assert_eq!(s, State::Idle);
    assert!(a.contains(&Action::Down(DownReason::ConnectionLost)));
}

#[test]
fn collision_keeps_the_connection_of_the_higher_router_id() {
    let low = Ipv4Addr::new(10, 0, 0, 1);
    let high = Ipv4Addr::new(10, 0, 0, 2);
    assert_eq!(resolve_collision(low, high), CollisionWinner::Theirs);
    assert_eq!(resolve_collision(high, low), CollisionWinner::Ours);
    // Compared as unsigned integers, not bytewise on a signed type.
    assert_eq!(
        resolve_collision(Ipv4Addr::new(200, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 1)),
        CollisionWinner::Ours
    );
}

#[test]
fn down_reason_shows_the_rfc_9003_text() {
    let n = Notification::cease_with_communication(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "maint")
        .expect("short text");
    let shown = DownReason::NotificationReceived(n).to_string();
    assert!(shown.contains("\"maint\""), "{shown}");
}

#[test]
fn established_update_sent_restarts_the_keepalive_timer() {
    // RFC 4271 §8.2.2 Established: "Each time the local system sends a KEEPALIVE or UPDATE
    // message, it restarts its KeepaliveTimer, unless the negotiated HoldTime value is zero."
    let c = cfg(90, None);
    let s = established(&c, 90);
    let (s, a) = step(&c, s, Event::UpdateSent);
    assert!(matches!(s, State::Established(_)), "got {s:?}");
    assert_eq!(
        a,
        vec![Action::ArmTimer(Timer::Keepalive, Duration::from_secs(30))]
    );
}

#[test]
fn update_sent_with_hold_time_zero_arms_nothing() {
    let c = cfg(0, None);
    let s = established(&c, 90);
    let (s, a) = step(&c, s, Event::UpdateSent);
    assert!(matches!(s, State::Established(_)), "got {s:?}");
    assert!(a.is_empty(), "hold time 0 runs no KeepaliveTimer: {a:?}");
}

#[test]
fn update_sent_outside_established_is_ignored_not_an_fsm_error() {
    let c = cfg(90, None);
    for s in [State::Idle, State::Connect, State::Active, State::OpenSent] {
        let (next, a) = step(&c, s.clone(), Event::UpdateSent);
        assert_eq!(next, s);
        assert!(a.is_empty(), "{s:?}: {a:?}");
    }
}

#[test]
fn idle_automatic_start_passive_goes_active_without_connecting() {
    // RFC 4271 §8.2.2 Idle, Event 5: the driver accepted a connection between restarts.
    let (s, a) = step(&cfg(90, None), State::Idle, Event::AutomaticStartPassive);
    assert_eq!(s, State::Active);
    assert!(!a.contains(&Action::Connect), "{a:?}");
    // Event 17 then sends our OPEN, as from Active.
    let (s, a) = step(&cfg(90, None), s, Event::TcpConnectionConfirmed);
    assert_eq!(s, State::OpenSent);
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Send(Message::Open(_)))));
}

#[test]
fn open_collision_dump_in_open_sent_and_open_confirm_sends_cease_6_7_and_goes_idle() {
    // RFC 4271 §8.2.2, Event 23 (OpenCollisionDump) in OpenSent and OpenConfirm.
    let c = cfg(90, None);
    let (open_confirm, _) = step(
        &c,
        State::OpenSent,
        Event::BgpOpen(open(65002, 90, [10, 0, 0, 2])),
    );
    for state in [State::OpenSent, open_confirm] {
        let from = state.name();
        let (s, a) = step(&c, state, Event::OpenCollisionDump);
        assert_eq!(s, State::Idle, "from {from}");
        let n = sent_notification(&a).expect("a NOTIFICATION");
        assert_eq!(
            (n.code, n.subcode),
            (
                ErrorCode::CEASE,
                cease_subcode::CONNECTION_COLLISION_RESOLUTION
            ),
            "from {from}"
        );
        assert!(a.contains(&Action::Close), "from {from}");
        assert!(
            a.iter().any(|a| matches!(a, Action::Down(_))),
            "from {from}"
        );
    }
    // Against Established the driver closes the new connection instead (§6.8).
    let est = established(&c, 90);
    let (s, a) = step(&c, est.clone(), Event::OpenCollisionDump);
    assert_eq!((s, a), (est, vec![]));
}

/// An OPEN with the Graceful Restart capability, restart flags `flags` (R = 0x8, N = 0x4).
fn open_gr(asn: u32, id: [u8; 4], flags: u8) -> Open {
    let mut o = open(asn, 90, id);
    o.capabilities
        .push(Capability::GracefulRestart(GracefulRestart {
            restart_flags: flags,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                flags: 0,
            }],
        }));
    o
}

/// An Established session whose OPENs carried `local_flags` / `remote_flags` (None: no
/// Graceful Restart capability on that side).
fn established_gr(local_flags: Option<u8>, remote_flags: Option<u8>) -> (Config, State) {
    let c = Config {
        local_open: match local_flags {
            Some(f) => open_gr(65001, [10, 0, 0, 1], f),
            None => open(65001, 90, [10, 0, 0, 1]),
        },
        peer_as: Some(65002),
        keepalive: None,
    };
    let remote = match remote_flags {
        Some(f) => open_gr(65002, [10, 0, 0, 2], f),
        None => open(65002, 90, [10, 0, 0, 2]),
    };
    let (s, _) = step(&c, State::OpenSent, Event::BgpOpen(remote));
    let (s, _) = step(&c, s, Event::KeepAliveMsg);
    assert!(matches!(s, State::Established(_)), "got {s:?}");
    (c, s)
}

fn admin_shutdown() -> Notification {
    Notification::cease_with_communication(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "bye")
        .expect("short text")
}

const N: u8 = GracefulRestart::NOTIFICATION;

#[test]
fn restart_stop_with_n_on_both_sides_sends_a_cease_that_keeps_graceful_restart() {
    // RFC 8538 §4: with N exchanged, a NOTIFICATION other than Hard Reset keeps GR; 6/2 is a
    // Hard Reset subcode (§5.1), so the restart goes as 6/6.
    let (c, s) = established_gr(Some(N), Some(N));
    let (s, a) = step(&c, s, Event::RestartStop(admin_shutdown()));
    assert_eq!(s, State::Idle);
    let sent = sent_notification(&a).expect("a NOTIFICATION");
    assert_eq!(sent.code, ErrorCode::CEASE);
    assert_eq!(sent.subcode, cease_subcode::OTHER_CONFIGURATION_CHANGE);
    assert!(a.contains(&Action::Close));
}

#[test]
fn restart_stop_towards_a_peer_without_n_closes_tcp_without_notification() {
    // RFC 8538 §4 / RFC 4724 §4.2: without N on the peer's side any NOTIFICATION ends GR;
    // a bare TCP close is what the peer treats as our restart.
    let (c, s) = established_gr(Some(N), Some(0));
    let (s, a) = step(&c, s, Event::RestartStop(admin_shutdown()));
    assert_eq!(s, State::Idle);
    assert!(sent_notification(&a).is_none(), "{a:?}");
    assert!(a.contains(&Action::Close));
    assert!(a.contains(&Action::Down(DownReason::StoppedForRestart)));
}

#[test]
fn restart_stop_without_graceful_restart_sends_the_usual_cease() {
    for (local, remote) in [(None, Some(N)), (Some(N), None), (None, None)] {
        let (c, s) = established_gr(local, remote);
        let (s, a) = step(&c, s, Event::RestartStop(admin_shutdown()));
        assert_eq!(s, State::Idle);
        assert_eq!(
            sent_notification(&a),
            Some(&admin_shutdown()),
            "{local:?} {remote:?}"
        );
    }
}

#[test]
fn manual_stop_with_n_on_both_sides_is_a_hard_reset_carrying_the_cease() {
    // RFC 8538 §3: the session is to be fully terminated, so the routes must go at once.
    let (c, s) = established_gr(Some(N), Some(N));
    let (_, a) = step(&c, s, Event::ManualStop(admin_shutdown()));
    let sent = sent_notification(&a).expect("a NOTIFICATION");
    assert_eq!(sent.code, ErrorCode::CEASE);
    assert_eq!(sent.subcode, cease_subcode::HARD_RESET);
    let inner = admin_shutdown();
    assert_eq!(sent.data.first(), Some(&inner.code.0));
    assert_eq!(sent.data.get(1), Some(&inner.subcode));
    assert_eq!(sent.data.get(2..), Some(inner.data.as_slice()));
}

#[test]
fn manual_stop_without_n_on_the_peer_keeps_the_plain_cease() {
    let (c, s) = established_gr(Some(N), Some(0));
    let (_, a) = step(&c, s, Event::ManualStop(admin_shutdown()));
    assert_eq!(sent_notification(&a), Some(&admin_shutdown()));
}

#[test]
fn restart_close_table() {
    let cease = admin_shutdown();
    let with = |f| open_gr(65001, [10, 0, 0, 1], f);
    let without = open(65001, 90, [10, 0, 0, 1]);
    assert!(matches!(
        restart_close(
            &with(N),
            &with(N | GracefulRestart::RESTART_STATE),
            cease.clone()
        ),
        RestartClose::Notify(_)
    ));
    assert_eq!(
        restart_close(&with(N), &with(0), cease.clone()),
        RestartClose::Silent
    );
    assert_eq!(
        restart_close(&without, &with(N), cease.clone()),
        RestartClose::Withdraw(cease.clone())
    );
    assert!(!graceful_notification(&with(0), &with(N)));
}

#[test]
fn hard_reset_of_a_hard_reset_is_itself() {
    let h = hard_reset(&admin_shutdown());
    assert_eq!(hard_reset(&h), h);
}
