//! ferrolb-gossip: the pure pieces of the speakers' Layer 2 gossip (SWIM via foca), with no
//! Kubernetes, no sockets and no tokio in sight.
//!
//! - [`auth`]: the datagram envelope: header, foca's payload, optional HMAC-SHA256 tag.
//! - [`identity`]: who a member is ([`identity::MemberId`]) and the live set the election reads.
//! - [`tuning`]: foca's configuration for sub-second failure detection on a LAN.
//! - [`timers`]: foca's timer requests, kept until due on a caller-supplied clock.
//! - [`Swim`] and [`new_swim`]: the foca instance exactly as the speaker runs it (codec, RNG,
//!   identity, tuning), so tests and fuzzers drive the same state machine.
//!
//! The speaker's memberlist task (`ferrolb_speaker::l2::memberlist`, which re-exports these
//! modules under their old paths) is the I/O shell around them: the UDP socket, the tokio clock,
//! the Node addresses from Kubernetes and the live-set `watch`.
//!
//! Why a crate of its own: everything a datagram from the LAN reaches before the speaker's
//! state changes lives here, and fuzzing it must not instrument the whole speaker (kube,
//! k8s-openapi, rustls). `crates/gossip/fuzz` depends on this crate only; see `docs/gossip.md`
//! for its targets and how to run them.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod identity;
pub mod timers;
pub mod tuning;

/// The foca this crate is built against, so dependents name its types at the same version.
pub use foca;

use foca::{Foca, NoCustomBroadcast, PostcardCodec};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use identity::MemberId;

/// The gossip state machine of a speaker: foca keyed by [`MemberId`], postcard on the wire (the
/// payload [`auth::seal`] wraps), a small seeded RNG, no custom broadcasts.
pub type Swim = Foca<MemberId, PostcardCodec, SmallRng, NoCustomBroadcast>;

/// A [`Swim`] for `id` in a cluster of `cluster_size` speakers ([`tuning::foca_config`]), its
/// random choices (probe order, gossip targets) drawn from `seed`.
pub fn new_swim(id: MemberId, cluster_size: usize, seed: u64) -> Swim {
    Foca::new(
        id,
        tuning::foca_config(cluster_size),
        SmallRng::seed_from_u64(seed),
        PostcardCodec,
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use foca::AccumulatingRuntime;

    use super::*;

    fn id(node: &str, host: u8) -> MemberId {
        MemberId {
            node: node.into(),
            addr: SocketAddr::from(([192, 0, 2, host], 7946)),
            generation: 1,
        }
    }

    #[test]
    fn a_new_swim_is_alone_under_its_identity() {
        let swim = new_swim(id("a", 1), 3, 7);
        assert_eq!(swim.identity(), &id("a", 1));
        assert_eq!(swim.num_members(), 0);
    }

    #[test]
    fn two_swims_join_through_the_sealed_envelope() {
        let key = auth::SecretKey::from_bytes(b"k", "test").expect("non-empty");
        let (mut a, mut b) = (new_swim(id("a", 1), 2, 1), new_swim(id("b", 2), 2, 2));
        let (mut ra, mut rb) = (AccumulatingRuntime::new(), AccumulatingRuntime::new());
        a.announce(id("b", 2), &mut ra).expect("announce");
        let (to, data) = ra.to_send().expect("an Announce to send");
        assert_eq!(to, id("b", 2));
        let datagram = auth::seal(Some(&key), &data);
        let payload = auth::open(Some(&key), &datagram).expect("opens with the same key");
        b.handle_data(payload, &mut rb)
            .expect("b decodes a's Announce");
        assert!(b.iter_members().any(|m| m.id() == &id("a", 1)));
        // b answers with a Feed, which makes b a member of a in turn.
        let (to, data) = rb.to_send().expect("a Feed back");
        assert_eq!(to, id("a", 1));
        a.handle_data(&data, &mut ra).expect("a decodes b's Feed");
        assert!(a.iter_members().any(|m| m.id() == &id("b", 2)));
    }
}
