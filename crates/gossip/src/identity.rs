//! Who a gossip member is (pure): the Node name, the address its speaker gossips on, and a
//! generation that lets a restarted or wrongly-declared-dead speaker rejoin at once.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A speaker in the gossip.
///
/// foca keys members by [`foca::Identity::addr`] (the socket address), so one Node has one
/// member; a newer `generation` at the same address replaces the older one (SWIM refutation by
/// a new identity instead of waiting for the dead one to be forgotten).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberId {
    /// The Node's `metadata.name`.
    pub node: String,
    /// Where its speaker receives gossip: the Node's InternalIP and `--memberlist-port`.
    pub addr: SocketAddr,
    /// Start time of the speaker in milliseconds since the Unix epoch, bumped by each renewal.
    pub generation: u64,
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    /// Declared down while alive (a lost probe, a partition): come back as a newer identity
    /// that wins the address conflict below.
    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            generation: self.generation.saturating_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The newer generation wins; the node name breaks a (clock-skew) tie so the rule is total
    /// and every member picks the same survivor.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.generation, &self.node) > (adversary.generation, &adversary.node)
    }
}

/// The nodes whose speakers are alive: this node plus every active (alive or suspect) member.
/// A suspect still counts: SWIM declares it down only after the suspicion timeout, so a single
/// lost probe does not move VIPs.
pub fn live_nodes<'a>(
    own: &str,
    active: impl IntoIterator<Item = &'a MemberId>,
) -> BTreeSet<String> {
    let mut live: BTreeSet<String> = active.into_iter().map(|m| m.node.clone()).collect();
    live.insert(own.to_string());
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity as _;

    fn id(node: &str, port: u16, generation: u64) -> MemberId {
        MemberId {
            node: node.into(),
            addr: SocketAddr::from(([192, 0, 2, 1], port)),
            generation,
        }
    }

    #[test]
    fn a_renewed_identity_wins_against_the_one_it_replaces() {
        let old = id("a", 7946, 10);
        let new = old.renew().expect("renews");
        assert_eq!(new.addr(), old.addr());
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
    }

    #[test]
    fn equal_generations_resolve_the_same_way_from_both_sides() {
        let a = id("a", 1, 5);
        let b = id("b", 1, 5);
        assert_ne!(a.win_addr_conflict(&b), b.win_addr_conflict(&a));
    }

    #[test]
    fn the_live_set_always_holds_this_node() {
        let members = [id("b", 1, 1), id("c", 2, 1)];
        let live = live_nodes("a", &members);
        assert_eq!(live, BTreeSet::from(["a".into(), "b".into(), "c".into()]));
        assert_eq!(live_nodes("a", []), BTreeSet::from(["a".into()]));
    }
}
