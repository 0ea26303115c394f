//! The long-running controller: Kubernetes mode and standalone mode, and their pure cores.
//!
//! - [`kube`]: watches Services, Namespaces and the config CRs; the Lease holder allocates and
//!   writes statuses, the pool annotation and Events.
//! - [`standalone`]: watches a directory and writes `ferrolb-allocations.yaml`;
//!   [`standalone_inputs`] is what it keeps of the directory's files.
//! - [`writes`] (pure): allocator Decision + the Service as seen -> patches and Events.
//! - [`lease`] (pure) and [`lease_driver`]: leader election over a coordination.k8s.io/v1 Lease.
//! - [`memberlist`]: the leader creates the speakers' memberlist Secret when it is missing.
//! - [`pool_status`]: the leader's IPAddressPool status counters.
//! - [`metrics`], [`http`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`client`]: the TLS crypto provider and the kubeconfig.

pub mod client;
pub mod http;
pub mod kube;
pub mod lease;
pub mod lease_driver;
pub mod memberlist;
pub mod metrics;
pub mod pool_status;
pub mod standalone;
pub mod standalone_inputs;
pub mod writes;
