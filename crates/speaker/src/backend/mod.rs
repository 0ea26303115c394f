//! [`crate::advertiser::Advertiser`] implementations: [`bgp`] on crates/bgp's desired-state
//! speaker. The Layer 2 backend (`L2Desired` over crates/arp) will sit next to it with the same
//! shape: a cheap handle that publishes the whole state on a `watch`, and a task that converges.

pub mod bgp;
