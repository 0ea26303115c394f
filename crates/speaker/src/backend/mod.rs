//! [`crate::advertiser::Advertiser`] implementations: [`bgp`] on crates/bgp's desired-state
//! speaker, [`l2`] on crates/arp's ARP/NDP responder. Both have the same shape: a cheap handle
//! that publishes the whole state on a `watch`, and a task that converges. [`bfd`] couples BFD
//! sessions to the BGP backend's sessions.

pub mod bfd;
pub mod bgp;
pub mod l2;
pub mod peering;
pub mod unnumbered;
