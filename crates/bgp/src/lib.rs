//! FerroLB's BGP-4 implementation.
//!
//! - [`wire`]: the message model and its pure decoder/encoder (no tokio).
//! - [`codec`]: the `tokio_util` framing adapter over [`wire`].
//! - [`rib`]: the desired [`rib::Route`]s and the per-peer Adj-RIB-Out.
//! - [`packer`]: turns desired routes into the fewest UPDATE messages.
//! - [`counters`]: per-peer message counts by type and direction, read while the peer runs.

#![warn(missing_docs)]

pub mod codec;
pub mod counters;
pub mod enh;
pub mod packer;
pub mod wire;

pub use codec::{BgpCodec, CodecError};
pub use packer::Packer;
pub use wire::{decode_message, DecodeCtx, EncodeCtx, Message, MessageError, Notification};
pub mod event;
pub mod fsm;
pub mod md5;
pub mod net;
pub mod peer;
pub mod rib;
pub mod speaker;
