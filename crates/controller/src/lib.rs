//! FerroLB controller: gives LoadBalancer Services an IP from the configured pools.
//!
//! The pure IP allocator is the `ferrolb-allocator` crate.
//!
//! - [`cmd`]: the offline subcommands of `ferrolb-controller`.
//! - [`daemon`]: Kubernetes mode and standalone mode.
//! - [`webhook`]: the validating admission webhook.

pub mod cmd;
pub mod daemon;
pub mod webhook;
