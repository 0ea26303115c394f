//! FerroLB daemon runtime: what the controller and the speaker share once they run.
//!
//! - [`config`]: config apply-and-report. One call when a configuration snapshot arrives:
//!   validate ([`ferrolb_api::validate`]), put it in force or keep the last good one
//!   ([`ferrolb_api::ConfigState`]), and log the outcome with the same level, message and
//!   fields from both daemons (accepted / unchanged / rejected with each error, and the
//!   accepted-but-ignored fields). Pure core ([`config::plan`], [`config::log_lines`]), thin
//!   logging shell ([`config::emit`]).
//! - [`events`]: the Kubernetes Events of a rejected configuration. One reason
//!   (`ConfigurationRejected`), `regarding` the offending object with its UID, the same note
//!   text, at most [`events::MAX_EVENTS`] per distinct error list; pure
//!   ([`events::rejection_events`]) plus one publisher task ([`events::run_publisher`]).
//! - [`config_state`]: the daemon's `ConfigurationState` object (MetalLB v0.15): its name and
//!   labels, the status of an applier (pure), and one writer task.
//! - [`backoff`]: [`Backoff`] (exponential, ceiling, jitter) and [`sleep_until`] (a timer that
//!   may be disarmed, for `select!` loops).
//! - [`ops_http`]: the `/metrics`, `/healthz`, `/readyz` server, with a connection cap tied to
//!   the open-files limit, eviction of idle connections at the cap, and header/write timeouts.
//! - [`config_metrics`]: MetalLB's `metallb_k8s_client_*` configuration metrics, one renderer
//!   for both daemons.
//! - [`process`]: raising the soft open-files limit at start, handing freed heap back to the OS.
//!
//! Both daemons call [`process::raise_nofile_limit_logged`] first, then serve the ops port with
//! [`ops_http::serve_with`] and [`ops_http::OpsLimits::from_env`] (the controller also takes
//! flags). `docs/operations.md` describes the Events and the ops port's limits for operators.
#![warn(missing_docs)]

pub mod backoff;
pub mod config;
pub mod config_metrics;
pub mod config_state;
pub mod events;
pub mod ops_http;
pub mod process;

pub use backoff::{sleep_until, Backoff};
pub use config::ConfigApplier;
