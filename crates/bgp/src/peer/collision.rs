//! Connection collisions (RFC 4271 §6.8): an incoming connection while ours is in OpenSent or
//! OpenConfirm waits for its OPEN in a future of its own, the higher BGP Identifier keeps its
//! connection, and the loser gets Cease 6/7 (RFC 4486 §4).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tracing::Instrument;

use super::connection::{log_notification, log_notification_unsent, Conn, NOTIFICATION_SEND_LIMIT};
use super::Driver;
use crate::codec::BgpCodec;
use crate::counters::MessageType;
use crate::fsm::{self, resolve_collision, CollisionWinner, Event, State};
use crate::wire::{Message, Open};

/// The incoming connection of a collision (RFC 4271 §6.8), waiting for its OPEN in a future of
/// its own while the existing connection keeps being served.
pub(super) type PendingOpen = Pin<Box<dyn Future<Output = Option<(Conn, Open)>> + Send>>;
/// How long an incoming connection has to show its OPEN during collision detection.
const COLLISION_OPEN_LIMIT: Duration = Duration::from_secs(5);

pub(super) async fn pending_open(c: &mut Option<PendingOpen>) -> Option<(Conn, Open)> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Closes a connection that lost collision detection, or met an Established session (§6.8),
/// with Cease 6/7 (RFC 4486 §4). In a task of its own under [`NOTIFICATION_SEND_LIMIT`], so a
/// peer that does not read cannot hold up the peer task.
fn refuse(mut conn: Conn) {
    let n = fsm::collision_cease();
    let task = async move {
        let sent = tokio::time::timeout(
            NOTIFICATION_SEND_LIMIT,
            conn.send(Message::Notification(n.clone())),
        )
        .await;
        match sent {
            Ok(Ok(())) => log_notification("sent", &n),
            Ok(Err(_)) => log_notification_unsent(&n, "write failed"),
            Err(_) => log_notification_unsent(&n, "timed out"),
        }
    };
    tokio::spawn(task.in_current_span());
}

impl Driver {
    /// An incoming connection from this peer (RFC 4271 §6.8 for collisions).
    pub(super) async fn on_inbound(&mut self, stream: TcpStream) {
        if self.stopping {
            return;
        }
        match self.state {
            State::Idle | State::Connect | State::Active => {
                self.take_connection(Framed::new(stream, BgpCodec::default()), None)
                    .await;
            }
            State::OpenSent | State::OpenConfirm(_) => {
                if self.collision.is_some() {
                    // One collision at a time; the peer retries this one.
                    return;
                }
                // The peer sends its OPEN right after connecting: wait for it (its BGP
                // Identifier decides) in a future of its own, so the existing connection keeps
                // being served meanwhile.
                self.collision = Some(Box::pin(async move {
                    let mut incoming = Framed::new(stream, BgpCodec::default());
                    match tokio::time::timeout(COLLISION_OPEN_LIMIT, incoming.next()).await {
                        Ok(Some(Ok(Ok(Message::Open(o))))) => Some((incoming, o)),
                        _ => None,
                    }
                }));
            }
            State::Established(_) => {
                // §6.8: "collision with existing BGP connection that is in the Established
                // state causes closing of the newly created connection".
                refuse(Framed::new(stream, BgpCodec::default()));
            }
        }
    }

    /// The OPEN of a colliding connection arrived: keep the connection of the higher BGP
    /// Identifier (RFC 4271 §6.8), through the FSM (Event 23 for our losing connection).
    pub(super) async fn on_collision_open(&mut self, conn: Conn, open: Open) {
        if self.stopping {
            return;
        }
        match self.state {
            // Our connection went away meanwhile: no collision left, take this one.
            State::Idle | State::Connect | State::Active => {
                self.take_connection(conn, Some(open)).await;
            }
            State::OpenSent | State::OpenConfirm(_) => {
                match resolve_collision(self.fsm.local_open.bgp_id, open.bgp_id) {
                    CollisionWinner::Ours => refuse(conn),
                    CollisionWinner::Theirs => {
                        self.feed(Event::OpenCollisionDump).await;
                        self.take_connection(conn, Some(open)).await;
                    }
                }
            }
            State::Established(_) => refuse(conn),
        }
    }

    /// Takes an accepted connection as the session, through the FSM: Event 5 out of Idle, then
    /// Event 17 (our OPEN goes out), then the peer's OPEN if collision detection read it.
    pub(super) async fn take_connection(&mut self, conn: Conn, open: Option<Open>) {
        self.restart_at = None;
        if self.state == State::Idle {
            self.feed(Event::AutomaticStartPassive).await;
        }
        self.adopt(conn);
        self.feed(Event::TcpConnectionConfirmed).await;
        if let Some(open) = open {
            self.received += 1;
            self.counters.count_received(Some(MessageType::Open));
            self.feed(Event::BgpOpen(open)).await;
        }
    }
}
