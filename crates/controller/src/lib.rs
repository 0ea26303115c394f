//! FerroLB controller: gives LoadBalancer Services an IP from the configured pools.
//!
//! - [`alloc`]: the pure IP allocator.
//! - [`cmd`]: the offline subcommands of `ferrolb-controller`.

pub mod alloc;
pub mod cmd;
