//! Per-peer message counters: how many messages of each type (RFC 4271 §4.1 header `Type`)
//! one peer task sent and received, read at any time without asking the task.
//!
//! ```text
//!  peer task ── count_sent / count_received (relaxed atomic adds) ──▶ Arc<MessageCounters>
//!  Speaker::message_counts(addr) ── snapshot() ──▶ MessageCounts (plain data) ──▶ metrics
//! ```
//!
//! *Guarantees*: a message is counted sent once the framing accepted it (as the task's own
//! `sent` total counts it; a NOTIFICATION only when it went out), received once it was framed
//! and decoded. The counts only grow while the peer is configured: the task that replaces it
//! after a configuration change counts on (`Speaker::set_peers`); a peer removed and added again
//! starts from zero (a counter reset to Prometheus). *Caveats*: a
//! snapshot reads each counter on its own, so it may be mid-way through one message's
//! counting (its type counted, the total not yet); the next snapshot is consistent again.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::Message;

/// The message types of RFC 4271 §4.1 (and ROUTE-REFRESH, RFC 2918 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// OPEN (type 1).
    Open,
    /// UPDATE (type 2).
    Update,
    /// NOTIFICATION (type 3).
    Notification,
    /// KEEPALIVE (type 4).
    Keepalive,
    /// ROUTE-REFRESH (type 5).
    RouteRefresh,
}

impl MessageType {
    /// The type of `m`.
    pub fn of(m: &Message) -> Self {
        match m {
            Message::Open(_) => Self::Open,
            Message::Update(_) => Self::Update,
            Message::Notification(_) => Self::Notification,
            Message::Keepalive => Self::Keepalive,
            Message::RouteRefresh(_) => Self::RouteRefresh,
        }
    }
}

/// The counts of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    /// OPENs.
    pub opens: u64,
    /// UPDATEs.
    pub updates: u64,
    /// NOTIFICATIONs.
    pub notifications: u64,
    /// KEEPALIVEs.
    pub keepalives: u64,
    /// ROUTE-REFRESHes.
    pub route_refreshes: u64,
    /// Every message, whatever its type (a received message that framed but failed to decode
    /// counts here only).
    pub total: u64,
}

/// A snapshot of [`MessageCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Messages we sent.
    pub sent: DirectionCounts,
    /// Messages the peer sent us.
    pub received: DirectionCounts,
}

#[derive(Debug, Default)]
struct Direction {
    opens: AtomicU64,
    updates: AtomicU64,
    notifications: AtomicU64,
    keepalives: AtomicU64,
    route_refreshes: AtomicU64,
    total: AtomicU64,
}

impl Direction {
    fn count(&self, t: Option<MessageType>, n: u64) {
        let by_type = match t {
            Some(MessageType::Open) => Some(&self.opens),
            Some(MessageType::Update) => Some(&self.updates),
            Some(MessageType::Notification) => Some(&self.notifications),
            Some(MessageType::Keepalive) => Some(&self.keepalives),
            Some(MessageType::RouteRefresh) => Some(&self.route_refreshes),
            None => None,
        };
        // Relaxed: each counter is read on its own, nothing is ordered by them.
        if let Some(c) = by_type {
            c.fetch_add(n, Ordering::Relaxed);
        }
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DirectionCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionCounts {
            opens: get(&self.opens),
            updates: get(&self.updates),
            notifications: get(&self.notifications),
            keepalives: get(&self.keepalives),
            route_refreshes: get(&self.route_refreshes),
            total: get(&self.total),
        }
    }
}

/// The live counters of one peer task, shared with whoever reads them.
#[derive(Debug, Default)]
pub struct MessageCounters {
    sent: Direction,
    received: Direction,
}

impl MessageCounters {
    /// Counts `n` messages of type `t` sent.
    pub fn count_sent(&self, t: MessageType, n: u64) {
        self.sent.count(Some(t), n);
    }

    /// Counts one message received: of type `t`, or `None` when it framed but did not decode.
    pub fn count_received(&self, t: Option<MessageType>) {
        self.received.count(t, 1);
    }

    /// The counts now.
    pub fn snapshot(&self) -> MessageCounts {
        MessageCounts {
            sent: self.sent.snapshot(),
            received: self.received.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_type_and_direction_with_totals() {
        let c = MessageCounters::default();
        c.count_sent(MessageType::Open, 1);
        c.count_sent(MessageType::Update, 3);
        c.count_sent(MessageType::Keepalive, 2);
        c.count_received(Some(MessageType::Open));
        c.count_received(Some(MessageType::Notification));
        c.count_received(Some(MessageType::RouteRefresh));
        c.count_received(None);
        let s = c.snapshot();
        assert_eq!(
            s.sent,
            DirectionCounts {
                opens: 1,
                updates: 3,
                keepalives: 2,
                total: 6,
                ..DirectionCounts::default()
            }
        );
        assert_eq!(
            s.received,
            DirectionCounts {
                opens: 1,
                notifications: 1,
                route_refreshes: 1,
                total: 4,
                ..DirectionCounts::default()
            }
        );
    }

    #[test]
    fn the_type_of_each_message() {
        assert_eq!(MessageType::of(&Message::Keepalive), MessageType::Keepalive);
        assert_eq!(
            MessageType::of(&Message::Notification(crate::wire::Notification::cease(2))),
            MessageType::Notification
        );
    }
}
