//! FerroLB configuration layer, shared by the controller and the speaker.
//!
//! - [`crd`]: the MetalLB-compatible custom resource types and their CRD manifests.
//! - [`source`]: where resources come from: YAML files ([`source::files`]) or the Kubernetes
//!   API ([`source::kube`]), both yielding a [`Resources`] snapshot.
//! - [`validate`]: the one pure function from [`Resources`] to a [`model::Config`] or a list of
//!   [`ConfigError`]s (all-or-nothing).
//! - [`state`]: [`ConfigState`], the last good `Config` plus the current errors.
//! - [`model`]: the validated, in-memory [`model::Config`] both daemons compute from. Pure data.
//! - [`selector`]: Kubernetes label selectors, implemented once.
//! - [`annotations`]: the Service-facing annotations (`metallb.io/...`).
//! - [`legacy`]: conversion of MetalLB v0.12 ConfigMaps to CRs.
//! - [`parse`]: pure parsers for addresses, communities and durations.
//! - [`service_key`]: [`ServiceKey`], the `namespace/name` every per-Service map is keyed by.
//! - [`ops_http`]: the Prometheus label escaper of both daemons' metrics (the ops HTTP server
//!   itself is in `ferrolb_runtime::ops_http`).
#![warn(missing_docs)]

pub mod annotations;
pub mod crd;
pub mod error;
pub mod legacy;
pub mod model;
pub mod ops_http;
pub mod parse;
pub mod selector;
pub mod service_key;
pub mod source;
pub mod state;
pub mod validate;

pub use error::{ConfigError, Reason};
pub use service_key::ServiceKey;
pub use source::Resources;
pub use state::ConfigState;
