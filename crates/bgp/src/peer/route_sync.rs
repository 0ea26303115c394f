//! Route sync of an Established session: the difference between the desired routes and the
//! Adj-RIB-Out goes out in chunks of packed UPDATEs, then End-of-RIB (RFC 4724 §2); a
//! ROUTE-REFRESH (RFC 2918 §4) sends the Adj-RIB-Out again.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::SinkExt;
use ipnet::IpNet;
use tokio::time::Instant;
use tracing::warn;

use super::connection::bounded;
use super::Driver;
use crate::counters::MessageType;
use crate::event::EventKind;
use crate::fsm::{self, Action, Event, State, Timer};
use crate::packer::Packer;
use crate::rib::{AdjRibOut, Change, Routes};
use crate::wire::Message;

/// Prefixes packed per round: bounds the UPDATEs built before they are written.
const CHUNK: usize = 2048;

/// What is waiting to be sent, and what went out so far in this pass.
#[derive(Debug, Default)]
struct Outgoing {
    announce: Routes,
    withdraw: BTreeSet<IpNet>,
    announced: usize,
    withdrawn: usize,
    updates: usize,
}

impl Driver {
    /// RFC 4724 §2: End-of-RIB after the initial update, for each negotiated family.
    pub(super) async fn send_end_of_rib(&mut self) -> Option<Event> {
        for u in Packer::end_of_rib(self.ctx().families) {
            if let Some(e) = self.send(Message::Update(u)).await {
                return Some(e);
            }
        }
        self.emit(EventKind::EndOfRibSent).await;
        None
    }

    /// Sends the whole Adj-RIB-Out again (RFC 2918 §4: the peer asked for a ROUTE-REFRESH).
    pub(super) async fn serve_route_refresh(&mut self) -> Option<Event> {
        let view = self.session_view()?;
        let all = Arc::clone(self.rib.sent());
        let empty = AdjRibOut::default();
        let mut packer = Packer::new(self.ctx(), view);
        let mut out = Outgoing::default();
        let mut follow = None;
        for change in empty.diff(&all, view) {
            if let Change::Announce(p, a) = change {
                out.announce.insert(p, a);
            }
            if out.announce.len() >= CHUNK {
                if let Err(e) = self.send_chunk(&mut packer, &mut out, false).await {
                    follow = Some(e);
                    break;
                }
            }
        }
        if follow.is_none() {
            follow = self.send_chunk(&mut packer, &mut out, true).await.err();
        }
        self.emit(EventKind::RouteRefreshServed).await;
        follow
    }

    /// Sends the difference between the desired routes and the Adj-RIB-Out, in chunks, so no
    /// second full copy of a 100k-prefix table is ever built: the diff walks the two snapshots
    /// in order and only a chunk of prefixes is packed at a time.
    pub(super) async fn sync_routes(&mut self) -> Option<Event> {
        let view = self.session_view()?;
        let routes = Arc::clone(&self.routes.borrow_and_update());
        let old = self.rib.clone();
        let mut packer = Packer::new(self.ctx(), view);
        let mut out = Outgoing::default();
        let (total, skipped) = {
            let mut diff = old.diff(&routes, view);
            for change in diff.by_ref() {
                match change {
                    Change::Announce(p, a) => {
                        out.announce.insert(p, a);
                    }
                    Change::Withdraw(p) => {
                        out.withdraw.insert(p);
                    }
                }
                if out.announce.len() + out.withdraw.len() >= CHUNK {
                    if let Err(e) = self.send_chunk(&mut packer, &mut out, false).await {
                        return Some(e);
                    }
                }
            }
            (diff.carried(), diff.skipped())
        };
        if let Err(e) = self.send_chunk(&mut packer, &mut out, true).await {
            return Some(e);
        }
        // Everything went out: the peer now holds what `routes` says for this session.
        self.rib.set(routes);
        if out.announced + out.withdrawn > 0 {
            self.emit(EventKind::PrefixesSent {
                announced: out.announced,
                withdrawn: out.withdrawn,
                updates: out.updates,
                total,
                skipped,
            })
            .await;
        }
        None
    }

    /// Packs and sends what `out` holds. Unless `last`, the final (probably part-filled)
    /// UPDATE is held back and its prefixes stay in `out` for the next chunk, so chunking
    /// costs no extra UPDATEs.
    async fn send_chunk(
        &mut self,
        packer: &mut Packer,
        out: &mut Outgoing,
        last: bool,
    ) -> Result<(), Event> {
        if out.announce.is_empty() && out.withdraw.is_empty() {
            return Ok(());
        }
        let mut updates = match packer.pack(&out.announce, &out.withdraw) {
            Ok(u) => u,
            Err(e) => {
                // Our own attributes failed to encode: drop the chunk, keep the session.
                warn!(error = %e, prefixes = out.announce.len() + out.withdraw.len(),
                    "routes not sent: they cannot be packed into UPDATEs");
                self.emit(EventKind::PackFailed { error: e }).await;
                out.announce.clear();
                out.withdraw.clear();
                return Ok(());
            }
        };
        let mut held_announce = BTreeSet::new();
        let mut held_withdraw = BTreeSet::new();
        if !last && updates.len() > 1 {
            if let Some(tail) = updates.pop() {
                held_announce.extend(tail.announced());
                held_withdraw.extend(tail.withdrawn_prefixes());
            }
        }
        let count = updates.len();
        let deadline = self.write_deadline();
        let Some(conn) = self.conn.as_mut() else {
            return Err(Event::TcpConnectionFails);
        };
        // Counted as they are handed to the framing, so an abandoned write still counts what
        // reached it (at most one buffer's worth of that may never leave).
        let mut fed: u64 = 0;
        let io = async {
            for u in updates {
                // feed() buffers and writes when the buffer fills; one flush at the end.
                conn.feed(Message::Update(u)).await?;
                fed += 1;
            }
            SinkExt::<Message>::flush(conn).await
        };
        let result = bounded(
            io,
            deadline,
            self.hold,
            &mut self.stop,
            &mut self.reset,
            !self.stopping,
        )
        .await;
        self.sent += fed;
        self.counters.count_sent(MessageType::Update, fed);
        if let Err(i) = result {
            return Err(self.interrupted(i));
        }
        out.updates += count;
        if count > 0 {
            self.update_sent();
        }
        let announce = std::mem::take(&mut out.announce);
        for (p, a) in announce {
            if held_announce.contains(&p) {
                out.announce.insert(p, a);
            } else {
                out.announced += 1;
            }
        }
        let withdraw = std::mem::take(&mut out.withdraw);
        for p in withdraw {
            if held_withdraw.contains(&p) {
                out.withdraw.insert(p);
            } else {
                out.withdrawn += 1;
            }
        }
        Ok(())
    }

    /// Tells the FSM that UPDATEs went out, so it restarts the KeepaliveTimer (RFC 4271
    /// §8.2.2 Established). Its only possible action is (re)arming that timer.
    pub(super) fn update_sent(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Idle);
        let (next, actions) = fsm::step(&self.fsm, state, Event::UpdateSent);
        self.state = next;
        for action in actions {
            match action {
                Action::ArmTimer(Timer::Keepalive, d) => self.keepalive = Some(Instant::now() + d),
                other => warn!(bug = true, action = ?other, "unexpected action for UpdateSent"),
            }
        }
    }
}
