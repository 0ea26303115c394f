//! FerroLB controller: gives LoadBalancer Services an IP from the configured pools.
//!
//! - [`cmd`]: the offline subcommands of `ferrolb-controller`.

pub mod cmd;
