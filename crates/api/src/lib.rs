//! FerroLB configuration layer, shared by the controller and the speaker.
//!
//! - [`model`]: the validated, in-memory [`model::Config`] both daemons compute from. Pure data.
//! - [`selector`]: Kubernetes label selectors, implemented once.

pub mod model;
pub mod selector;
