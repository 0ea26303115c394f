//! ferrolb-arp: Layer 2 mode's wire formats and responder, with no Kubernetes in sight.
//!
//! - [`wire`]: pure parsers and encoders for Ethernet, ARP and NDP (NS/NA) frames.
//!
//! See `docs/l2.md` for the design.

#![warn(missing_docs)]

pub mod respond;
pub mod wire;
