//! ferrolb-arp: Layer 2 mode's wire formats and responder, with no Kubernetes in sight.
//!
//! - [`wire`]: pure parsers and encoders for Ethernet, ARP and NDP (NS/NA) frames.
//! - [`respond`]: the pure reply decision and the gratuitous announcements.
//! - [`filter`]: the classic BPF program that keeps everything but ARP requests and NS in the
//!   kernel.
//! - [`iface`]: which interfaces answer for a VIP (pure) and the interface list.
//! - [`sys`]: raw AF_PACKET sockets (the only `unsafe` code).
//! - [`link`]: the socket seam the responder drives ([`link::PacketLink`] in production).
//! - [`Responder`]: the tokio shell: one socket per interface, desired VIPs in, replies and
//!   announcements out, counters.
//!
//! See `docs/l2.md` for the design.

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod filter;
pub mod iface;
pub mod link;
pub mod respond;
mod responder;
pub mod sys;
pub mod wire;

pub use responder::{
    CounterSnapshot, InterfaceState, Responder, ResponderConfig, VipCounts, VipCountsReader,
    VipsByInterface,
};
