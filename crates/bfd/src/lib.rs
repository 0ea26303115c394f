//! FerroLB's BFD (Bidirectional Forwarding Detection): RFC 5880 asynchronous mode over UDP,
//! single hop (RFC 5881) and multihop (RFC 5883). No Kubernetes: the speaker hands in plain
//! values ([`BfdProfile`]) and watches [`BfdSession`]s.
//!
//! - [`packet`]: the Control packet, pure `decode`/`encode` (RFC 5880 §4.1, §6.8.6).
//! - [`session`]: the state machine, a pure `step` (RFC 5880 §6.2, §6.8).
//! - [`demux`]: which session a packet belongs to (RFC 5880 §6.3, §6.8.6), pure.
//! - [`profile`]: MetalLB's BFDProfile values and defaults.
//! - [`driver`]: the tokio shell: sockets, one task per session, counters.
//!
//! See `docs/bfd.md`.
#![warn(missing_docs)]

pub mod demux;
pub mod driver;
pub mod packet;
pub mod profile;
pub mod session;
mod sys;

pub use driver::{
    Bfd, BfdSession, Counters, CountersReader, DriverError, SessionConfig, SessionStatus,
};
pub use packet::{ControlPacket, DecodeError, Diag, State};
pub use profile::BfdProfile;
pub use session::{step, Action, Event, Session, SessionParams};
