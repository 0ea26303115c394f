//! `ferrolb-allocator`, the pure IP allocator: pools in, per-Service assignments and Events out.
//! No Kubernetes I/O, no client, no clock (k8s-openapi types are read as plain data by
//! [`from_k8s`] only): the controller's reconciler, the offline `ferrolb-controller allocate`
//! command and the speaker's demo drive the same [`PoolAllocator`].
//!
//! - [`service`]: the allocator's plain view of a Service ([`Service`], [`ServiceKey`], ...).
//! - [`allocator`]: [`PoolAllocator`] and its results ([`Decision`], [`Event`], ...).
//! - [`error`]: why allocation failed or an IP was released, as enums.
//! - [`from_k8s`]: a k8s-openapi `Service` (+ its Namespace's labels) to a [`Service`].
//! - `pool`, `free_set`: per-pool free-address interval sets (the cost model).
//!
//! Lifecycle, as used by the controller:
//! 1. [`PoolAllocator::new`] with the controller's loadBalancerClass, then
//!    [`PoolAllocator::set_config`] with the first valid `Config`.
//! 2. [`PoolAllocator::resync`] with every Service from the initial list: status IPs still
//!    valid are adopted before anything new is allocated, so a restart moves nothing.
//! 3. [`PoolAllocator::upsert`] / [`PoolAllocator::remove`] per watch event, and `set_config`
//!    again on each new valid `Config`.
//!
//! Each call returns [`Decision`]s: the state to write to `status.loadBalancer.ingress` and the
//! Events (`IPAllocated`, `AllocationFailed`, `IPReleased`) to record.
//! See `docs/allocator.md` for the rules, their MetalLB sources and the benchmark.

pub mod allocator;
pub mod decision;
pub mod error;
mod free_set;
pub mod from_k8s;
mod pool;
pub mod service;

pub use allocator::{
    AllocatedHow, Assignment, Decision, Event, PoolAllocator, PoolUsage, ServiceState, SkipReason,
};
pub use error::{
    AllocError, FamilyMismatch, IpRejection, PoolRejection, ReleaseReason, SharingConflict,
};
pub use service::{
    IpFamilyPolicy, Protocol, Service, ServiceKey, ServicePort, ServiceType, TrafficPolicy,
};
