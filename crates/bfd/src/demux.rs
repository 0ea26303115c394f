//! Which session a received Control packet belongs to (RFC 5880 §6.3, §6.8.6; RFC 5881 §5,
//! RFC 5883 §2), and why a packet is dropped. Pure: a table and lookups, no sockets.
//!
//! One [`Demux`] serves one receive socket (a local address and port, optionally a device),
//! so the destination address of RFC 5883's "source and destination address pair" is
//! implied by the socket.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::packet::{ControlPacket, DecodeError, State};

/// Why a received datagram was dropped; [`DropReason::metric_label`] names its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Not a Control packet we accept (RFC 5880 §6.8.6 checks made while decoding).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// RFC 5881 §5: "the received TTL/Hop Limit ... MUST be discarded if it is not 255", or
    /// RFC 5883 §2 below the configured minimum (MetalLB's `minimumTtl`).
    #[error("TTL/hop limit {ttl} below the required {min}")]
    BadTtl {
        /// The received TTL / hop limit.
        ttl: u8,
        /// The smallest accepted.
        min: u8,
    },
    /// The kernel did not report the TTL, so the RFC 5881/5883 check cannot be made.
    #[error("no TTL/hop limit reported for the datagram")]
    MissingTtl,
    /// RFC 5880 §6.8.6: "If the Your Discriminator field is nonzero ... If no session is
    /// found, the packet MUST be discarded."
    #[error("no session with discriminator {0}")]
    UnknownDiscriminator(u32),
    /// RFC 5880 §6.8.6: "If the Your Discriminator field is zero and the State field is not
    /// Down or AdminDown, the packet MUST be discarded."
    #[error("Your Discriminator 0 with state {0:?}")]
    ZeroDiscriminatorNotDown(State),
    /// Your Discriminator 0 and no session for the source (and interface): "the packet MAY be
    /// discarded" (§6.8.6); we create sessions only from configuration.
    #[error("no session for source {0}")]
    UnknownPeer(IpAddr),
    /// The discriminator names a session with another peer (a spoofed or misrouted packet).
    #[error("discriminator {discr} belongs to another peer than {src}")]
    WrongPeer {
        /// Your Discriminator.
        discr: u32,
        /// The datagram's source.
        src: IpAddr,
    },
    /// The session's queue is full (its task is not keeping up).
    #[error("session queue full")]
    QueueFull,
}

impl DropReason {
    /// Every label [`DropReason::metric_label`] returns, for pre-registering counters.
    pub const LABELS: [&'static str; 16] = [
        "truncated",
        "bad_version",
        "length_too_small",
        "length_exceeds_payload",
        "zero_detect_mult",
        "multipoint",
        "zero_my_discriminator",
        "authentication_not_configured",
        "bad_ttl",
        "missing_ttl",
        "unknown_discriminator",
        "zero_discriminator_not_down",
        "unknown_peer",
        "wrong_peer",
        "queue_full",
        "socket_error",
    ];

    /// A short, stable label for the per-reason drop counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DropReason::Decode(e) => e.metric_label(),
            DropReason::BadTtl { .. } => "bad_ttl",
            DropReason::MissingTtl => "missing_ttl",
            DropReason::UnknownDiscriminator(_) => "unknown_discriminator",
            DropReason::ZeroDiscriminatorNotDown(_) => "zero_discriminator_not_down",
            DropReason::UnknownPeer(_) => "unknown_peer",
            DropReason::WrongPeer { .. } => "wrong_peer",
            DropReason::QueueFull => "queue_full",
        }
    }
}

/// How a session is found when Your Discriminator is 0: its peer address and, for a
/// session bound to a device, the interface index (RFC 5880 §6.3 "source address and
/// interface"; RFC 5881 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// The peer's address.
    pub peer: IpAddr,
    /// The interface, or `None` for any.
    pub ifindex: Option<u32>,
}

/// One session's entry: where its packets go and its receive TTL rule.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// Delivered with each accepted packet (the driver's session queue).
    pub target: T,
    /// The session's peer and interface.
    pub key: PeerKey,
    /// The smallest received TTL accepted: 255 for single hop (RFC 5881 §5), MetalLB's
    /// `minimumTtl` for multihop (RFC 5883 §2).
    pub min_ttl: u8,
}

/// The session table of one receive socket.
#[derive(Debug, Clone)]
pub struct Demux<T> {
    by_discr: HashMap<u32, Entry<T>>,
    by_peer: HashMap<PeerKey, u32>,
}

impl<T> Default for Demux<T> {
    fn default() -> Self {
        Demux {
            by_discr: HashMap::new(),
            by_peer: HashMap::new(),
        }
    }
}

impl<T> Demux<T> {
    /// Adds the session with local discriminator `discr`; `false` (and no change) if the
    /// discriminator or the peer key is taken.
    pub fn insert(&mut self, discr: u32, entry: Entry<T>) -> bool {
        if self.by_discr.contains_key(&discr) || self.by_peer.contains_key(&entry.key) {
            return false;
        }
        self.by_peer.insert(entry.key, discr);
        self.by_discr.insert(discr, entry);
        true
    }

    /// Removes the session; returns whether it was there.
    pub fn remove(&mut self, discr: u32) -> bool {
        match self.by_discr.remove(&discr) {
            Some(e) => {
                self.by_peer.remove(&e.key);
                true
            }
            None => false,
        }
    }

    /// Sets a session's minimum received TTL (a profile change).
    pub fn set_min_ttl(&mut self, discr: u32, min_ttl: u8) {
        if let Some(e) = self.by_discr.get_mut(&discr) {
            e.min_ttl = min_ttl;
        }
    }

    /// True if no session is left.
    pub fn is_empty(&self) -> bool {
        self.by_discr.is_empty()
    }

    /// The session for a decoded packet from `src` received on `ifindex` with `ttl`
    /// (RFC 5880 §6.8.6 in its order, then the RFC 5881/5883 TTL rule of that session).
    pub fn lookup(
        &self,
        p: &ControlPacket,
        src: IpAddr,
        ifindex: Option<u32>,
        ttl: Option<u8>,
    ) -> Result<&Entry<T>, DropReason> {
        let entry = if p.your_discr != 0 {
            // "If the Your Discriminator field is nonzero, it MUST be used to select the
            // session with which this BFD packet is associated."
            let e = self
                .by_discr
                .get(&p.your_discr)
                .ok_or(DropReason::UnknownDiscriminator(p.your_discr))?;
            if e.key.peer != src {
                return Err(DropReason::WrongPeer {
                    discr: p.your_discr,
                    src,
                });
            }
            e
        } else {
            if p.state != State::DOWN && p.state != State::ADMIN_DOWN {
                return Err(DropReason::ZeroDiscriminatorNotDown(p.state));
            }
            // §6.3: by source address and interface; a session bound to no device matches
            // any interface.
            let exact = ifindex.and_then(|i| {
                self.by_peer.get(&PeerKey {
                    peer: src,
                    ifindex: Some(i),
                })
            });
            let discr = exact
                .or_else(|| {
                    self.by_peer.get(&PeerKey {
                        peer: src,
                        ifindex: None,
                    })
                })
                .ok_or(DropReason::UnknownPeer(src))?;
            self.by_discr
                .get(discr)
                .ok_or(DropReason::UnknownPeer(src))?
        };
        match ttl {
            None => Err(DropReason::MissingTtl),
            Some(t) if t < entry.min_ttl => Err(DropReason::BadTtl {
                ttl: t,
                min: entry.min_ttl,
            }),
            Some(_) => Ok(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Diag;

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

    fn table() -> Demux<&'static str> {
        let mut d = Demux::default();
        assert!(d.insert(
            7,
            Entry {
                target: "s7",
                key: PeerKey {
                    peer: PEER,
                    ifindex: None
                },
                min_ttl: 255,
            }
        ));
        d
    }

    fn pkt(your_discr: u32, state: State) -> ControlPacket {
        ControlPacket {
            diag: Diag::NONE,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discr: 99,
            your_discr,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 1_000_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn nonzero_your_discriminator_selects_the_session() {
        let d = table();
        assert_eq!(
            d.lookup(&pkt(7, State::UP), PEER, Some(3), Some(255))
                .map(|e| e.target),
            Ok("s7")
        );
    }

    #[test]
    fn unknown_your_discriminator_is_discarded() {
        let d = table();
        assert_eq!(
            d.lookup(&pkt(8, State::UP), PEER, None, Some(255))
                .map(|e| e.target),
            Err(DropReason::UnknownDiscriminator(8))
        );
    }

    #[test]
    fn zero_your_discriminator_in_init_or_up_is_discarded() {
        let d = table();
        for st in [State::INIT, State::UP] {
            assert_eq!(
                d.lookup(&pkt(0, st), PEER, None, Some(255))
                    .map(|e| e.target),
                Err(DropReason::ZeroDiscriminatorNotDown(st))
            );
        }
    }

    #[test]
    fn zero_your_discriminator_in_down_or_admin_down_selects_by_source() {
        let d = table();
        for st in [State::DOWN, State::ADMIN_DOWN] {
            assert_eq!(
                d.lookup(&pkt(0, st), PEER, Some(2), Some(255))
                    .map(|e| e.target),
                Ok("s7")
            );
        }
        assert_eq!(
            d.lookup(&pkt(0, State::DOWN), OTHER, None, Some(255))
                .map(|e| e.target),
            Err(DropReason::UnknownPeer(OTHER))
        );
    }

    #[test]
    fn a_device_bound_session_matches_only_its_interface() {
        let mut d = Demux::default();
        d.insert(
            5,
            Entry {
                target: "eth1",
                key: PeerKey {
                    peer: PEER,
                    ifindex: Some(4),
                },
                min_ttl: 255,
            },
        );
        assert_eq!(
            d.lookup(&pkt(0, State::DOWN), PEER, Some(4), Some(255))
                .map(|e| e.target),
            Ok("eth1")
        );
        assert_eq!(
            d.lookup(&pkt(0, State::DOWN), PEER, Some(5), Some(255))
                .map(|e| e.target),
            Err(DropReason::UnknownPeer(PEER))
        );
    }

    #[test]
    fn a_discriminator_from_another_source_is_discarded() {
        let d = table();
        assert_eq!(
            d.lookup(&pkt(7, State::UP), OTHER, None, Some(255))
                .map(|e| e.target),
            Err(DropReason::WrongPeer {
                discr: 7,
                src: OTHER
            })
        );
    }

    #[test]
    fn single_hop_requires_ttl_255() {
        let d = table();
        assert_eq!(
            d.lookup(&pkt(7, State::UP), PEER, None, Some(254))
                .map(|e| e.target),
            Err(DropReason::BadTtl { ttl: 254, min: 255 })
        );
        assert_eq!(
            d.lookup(&pkt(7, State::UP), PEER, None, None)
                .map(|e| e.target),
            Err(DropReason::MissingTtl)
        );
    }

    #[test]
    fn multihop_accepts_ttl_down_to_the_configured_minimum() {
        let mut d = table();
        d.set_min_ttl(7, 250);
        assert!(d.lookup(&pkt(7, State::UP), PEER, None, Some(250)).is_ok());
        assert_eq!(
            d.lookup(&pkt(7, State::UP), PEER, None, Some(249))
                .map(|e| e.target),
            Err(DropReason::BadTtl { ttl: 249, min: 250 })
        );
    }

    #[test]
    fn a_taken_discriminator_or_peer_is_refused_and_removal_frees_both() {
        let mut d = table();
        let e = |k| Entry {
            target: "x",
            key: PeerKey {
                peer: k,
                ifindex: None,
            },
            min_ttl: 255,
        };
        assert!(!d.insert(7, e(OTHER)));
        assert!(!d.insert(8, e(PEER)));
        assert!(d.remove(7));
        assert!(d.is_empty());
        assert!(d.insert(8, e(PEER)));
    }

    #[test]
    fn every_reason_has_a_listed_label() {
        let reasons = [
            DropReason::Decode(DecodeError::Truncated(0)),
            DropReason::Decode(DecodeError::BadVersion(0)),
            DropReason::Decode(DecodeError::LengthTooSmall { length: 0, min: 24 }),
            DropReason::Decode(DecodeError::LengthExceedsPayload {
                length: 0,
                payload: 0,
            }),
            DropReason::Decode(DecodeError::ZeroDetectMult),
            DropReason::Decode(DecodeError::Multipoint),
            DropReason::Decode(DecodeError::ZeroMyDiscriminator),
            DropReason::Decode(DecodeError::AuthenticationNotConfigured),
            DropReason::BadTtl { ttl: 0, min: 0 },
            DropReason::MissingTtl,
            DropReason::UnknownDiscriminator(0),
            DropReason::ZeroDiscriminatorNotDown(State::UP),
            DropReason::UnknownPeer(PEER),
            DropReason::WrongPeer {
                discr: 0,
                src: PEER,
            },
            DropReason::QueueFull,
        ];
        for r in reasons {
            assert!(DropReason::LABELS.contains(&r.metric_label()), "{r:?}");
        }
    }
}
