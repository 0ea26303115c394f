//! The harness behind the gossip fuzz targets and the seed generator: one speaker ("a") runs
//! the gossip receive path on fuzzed datagrams, built from `ferrolb_gossip` alone.
//!
//! The receive path mirrors the memberlist task's `Driver` (`ferrolb_speaker::l2::memberlist`,
//! which is not a dependency here: it pulls in Kubernetes): `auth::open` strips and checks the
//! envelope, `ferrolb_gossip::Swim` (the speaker's foca: `PostcardCodec`, `MemberId`,
//! `tuning::foca_config`) decodes in `handle_data`, and a flush queues foca's timers, drains its
//! notifications and seals what it sends.
//! Time is virtual (a `Duration` clock), so due timers fire without sleeping and every run is
//! deterministic.
//!
//! Input of [`run_datagrams`]:
//!
//! ```text
//!  +------+-----------+-----------+----------+-----------+----------+-- ...
//!  | mode | len (u16) | datagram  | len (u16)| datagram  | ...      |   at most MAX_DATAGRAMS
//!  +------+-----------+-----------+----------+-----------+----------+-- ...
//!  mode bit 0 (MODE_KEYED): the speaker has the secret KEY (else none)
//!  mode bit 1 (MODE_SEAL):  seal each datagram with the speaker's key before it is received,
//!                           so fuzzed foca payloads get past the HMAC
//!  a length past the end takes what remains
//! ```

// Fuzzed bytes: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use ferrolb_gossip::auth::{self, SecretKey, HEADER_LEN, TAG_LEN};
use ferrolb_gossip::foca::{AccumulatingRuntime, Member, Timer};
use ferrolb_gossip::identity::{live_nodes, MemberId};
use ferrolb_gossip::timers::TimerQueue;
use ferrolb_gossip::{new_swim, tuning, Swim};

/// The shared secret of the keyed modes.
pub const KEY: &[u8] = b"fuzz-memberlist-secret";
/// Mode bit: the speaker has [`KEY`].
pub const MODE_KEYED: u8 = 0x01;
/// Mode bit: seal each datagram with the speaker's key before receiving it.
pub const MODE_SEAL: u8 = 0x02;
/// Datagrams per input: enough for a join, a probe round and an indirect probe.
pub const MAX_DATAGRAMS: usize = 16;
/// Timer events fired after the datagrams; foca's timers re-arm forever, so this bounds a run.
pub const MAX_TIMER_EVENTS: usize = 64;
/// Virtual time between two datagrams (timers due by then fire in between).
pub const DATAGRAM_SPACING: Duration = Duration::from_millis(10);
/// Nodes in the cluster the speaker believes in (sizes foca's config as the task does).
pub const CLUSTER_SIZE: usize = 3;

/// The secret as the speaker holds it.
pub fn key() -> SecretKey {
    SecretKey::from_bytes(KEY, "fuzz").unwrap_or_else(|_| unreachable!("KEY is not empty"))
}

/// A member named `node` at 192.0.2.`host`:7946 (RFC 5737 documentation addresses).
pub fn member(node: &str, host: u8, generation: u64) -> MemberId {
    MemberId {
        node: node.to_string(),
        addr: SocketAddr::from(([192, 0, 2, host], 7946)),
        generation,
    }
}

/// The speaker under test.
pub fn us() -> MemberId {
    member("a", 1, 1)
}

/// A member the speaker already knows when the run starts.
pub fn known_peer() -> MemberId {
    member("b", 2, 1)
}

/// A member it has not heard of.
pub fn stranger() -> MemberId {
    member("c", 3, 1)
}

/// `open` never panics, and what it accepts is exactly what `seal` writes for the payload it
/// returns: nothing else slips through, with or without the key.
pub fn check_open(datagram: &[u8]) {
    let key = key();
    for key in [None, Some(&key)] {
        if let Ok(payload) = auth::open(key, datagram) {
            assert_eq!(
                auth::seal(key, payload),
                datagram,
                "open accepted a datagram seal would not write (keyed: {})",
                key.is_some()
            );
        }
    }
}

/// One gossip node on a virtual clock: the state of the memberlist task's `Driver` minus the
/// socket.
pub struct Node {
    /// Who this node is.
    pub id: MemberId,
    /// foca.
    pub swim: Swim,
    runtime: AccumulatingRuntime<MemberId>,
    timers: TimerQueue<Duration, Timer<MemberId>>,
    /// The virtual clock.
    pub now: Duration,
    /// The node's secret, if any.
    pub key: Option<SecretKey>,
    /// Sealed datagrams foca asked to send, with their destination.
    pub outbox: Vec<(MemberId, Vec<u8>)>,
}

impl Node {
    /// A node configured as the memberlist task configures foca for `CLUSTER_SIZE` nodes.
    pub fn new(id: MemberId, key: Option<SecretKey>, rng_seed: u64) -> Self {
        Node {
            swim: new_swim(id.clone(), CLUSTER_SIZE, rng_seed),
            id,
            runtime: AccumulatingRuntime::new(),
            timers: TimerQueue::default(),
            now: Duration::ZERO,
            key,
            outbox: Vec::new(),
        }
    }

    /// Makes `peer` a known, alive member without a datagram.
    pub fn know(&mut self, peer: MemberId) {
        // A member apply on a fresh foca cannot fail; if it did, the run just starts alone.
        let _ = self.swim.apply_many(
            std::iter::once(Member::alive(peer)),
            true,
            &mut self.runtime,
        );
        self.flush();
    }

    /// Sends an Announce to `dst` (how speakers join).
    pub fn announce(&mut self, dst: MemberId) {
        let _ = self.swim.announce(dst, &mut self.runtime);
        self.flush();
    }

    /// Leaves the cluster (a graceful speaker stop).
    pub fn leave(&mut self) {
        let _ = self.swim.leave_cluster(&mut self.runtime);
        self.flush();
    }

    /// The memberlist task's `on_datagram`: envelope, then foca. Both may refuse (counted as
    /// drops by the task); neither may panic.
    pub fn receive(&mut self, datagram: &[u8]) {
        if let Ok(payload) = auth::open(self.key.as_ref(), datagram) {
            let _ = self.swim.handle_data(payload, &mut self.runtime);
        }
        self.flush();
    }

    /// Advances the clock to `until`, firing due timers, at most `budget` of them; returns how
    /// many fired.
    pub fn advance(&mut self, until: Duration, budget: usize) -> usize {
        // Timers foca asks for while these fire are due relative to `until` (late is fine).
        self.now = self.now.max(until);
        let mut fired = 0;
        while fired < budget {
            let Some(timer) = self.timers.pop_due(until) else {
                break;
            };
            let _ = self.swim.handle_timer(timer, &mut self.runtime);
            self.flush();
            fired += 1;
        }
        fired
    }

    /// When the next timer is due.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.timers.next_deadline()
    }

    /// The memberlist task's `flush`, with invariants the task relies on checked.
    fn flush(&mut self) {
        while let Some((after, timer)) = self.runtime.to_schedule() {
            // MAX_PENDING is far above what a bounded run can queue.
            assert!(
                self.timers.push(self.now, after, timer).is_ok(),
                "timer queue full"
            );
        }
        while self.runtime.to_notify().is_some() {}
        let max_datagram =
            tuning::foca_config(CLUSTER_SIZE).max_packet_size.get() + HEADER_LEN + TAG_LEN;
        while let Some((to, data)) = self.runtime.to_send() {
            let datagram = auth::seal(self.key.as_ref(), &data);
            // The task's receive buffer (2048 octets) must hold everything a speaker sends.
            assert!(
                datagram.len() <= max_datagram,
                "foca sent {} octets",
                datagram.len()
            );
            assert_eq!(
                auth::open(self.key.as_ref(), &datagram),
                Ok(&data[..]),
                "a sealed datagram does not open"
            );
            self.outbox.push((to, datagram));
        }
        // The live set the election reads: this node, and no member claiming our address
        // (foca declares such identities down, so a forged datagram cannot alias us).
        assert!(
            self.swim
                .iter_members()
                .all(|m| m.id().addr != self.id.addr),
            "an active member has our address"
        );
        let live = live_nodes(&self.id.node, self.swim.iter_members().map(|m| m.id()));
        assert!(live.contains(&self.id.node), "live set without this node");
    }
}

/// Splits the datagram part of a [`run_datagrams`] input into its length-prefixed datagrams.
pub fn frames(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (datagram, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        Some(datagram)
    })
    .take(MAX_DATAGRAMS)
}

/// Writes a [`run_datagrams`] input (the seed generator's inverse of [`frames`]).
pub fn encode_input(mode: u8, datagrams: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![mode];
    for d in datagrams.iter().take(MAX_DATAGRAMS) {
        let len = u16::try_from(d.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(d.get(..usize::from(len)).unwrap_or(d));
    }
    out
}

/// The speaker's receive path on a sequence of datagrams from the LAN (see the module doc).
pub fn run_datagrams(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = (mode & MODE_KEYED != 0).then(key);
    let mut node = Node::new(us(), key.clone(), 0);
    node.know(known_peer());
    let mut budget = MAX_TIMER_EVENTS;
    for datagram in frames(rest) {
        let datagram = if mode & MODE_SEAL != 0 {
            auth::seal(key.as_ref(), datagram)
        } else {
            datagram.to_vec()
        };
        node.receive(&datagram);
        let next = node.now + DATAGRAM_SPACING;
        budget = budget.saturating_sub(node.advance(next, budget));
    }
    // Let time run on so what the datagrams set in motion (suspicion, indirect probes, down
    // declarations) happens too.
    while budget > 0 {
        let Some(due) = node.next_deadline() else {
            break;
        };
        let fired = node.advance(due, budget);
        if fired == 0 {
            break;
        }
        budget -= fired;
    }
}
