//! FerroLB controller: gives LoadBalancer Services an IP from the configured pools.
//!
//! - [`alloc`]: the pure IP allocator.
//! - [`cmd`]: the offline subcommands of `ferrolb-controller`.
//! - [`daemon`]: Kubernetes mode and standalone mode.
//! - [`webhook`]: the validating admission webhook.

pub mod alloc;
pub mod cmd;
pub mod daemon;
pub mod webhook;
