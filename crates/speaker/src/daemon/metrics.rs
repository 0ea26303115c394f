//! The metrics live in the neutral [`crate::metrics`]; this path stays for `kube_events`, which
//! still names `super::metrics` (it is being moved to a shared crate).

pub use crate::metrics::*;
