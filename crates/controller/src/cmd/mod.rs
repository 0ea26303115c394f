//! Offline subcommands of `ferrolb-controller`, one file each. Each returns the process exit code.

pub mod allocate;
pub mod convert;
pub mod crds;
pub mod manifests;
pub mod validate;
