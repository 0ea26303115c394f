//! Kubernetes mode: watch Services, Namespaces and the config CRs; while leading, allocate and
//! write the results.
//!
//! ```text
//!  config CRs (namespace) ─ api::source::kube::snapshots ─┐
//!  Services (all) ───────── reflector ─────────────────────┼─▶ select_all ─▶ Reconciler (one task)
//!  Namespaces ───────────── reflector ─────────────────────┘        ▲          │ PoolAllocator (pure)
//!  Lease driver ── watch<bool> leader ──────────────────────────────┘          │ writes::plan (pure)
//!                                                                              ▼
//!                               PATCH services/status, PATCH services, POST events (leader only)
//! ```
//!
//! One task owns the allocator, so Services are allocated one at a time in event order, as
//! MetalLB's single allocator does; per-object concurrent reconcilers would have to lock it.
//!
//! *Expected flow*: once every watch has finished its initial list and a valid configuration is
//! in force, a leader builds a fresh [`PoolAllocator`] and resyncs it with every Service from the
//! cache (oldest first): valid status IPs are adopted before anything new is allocated, so a
//! restart or a change of leader moves no IP. Afterwards each watch event is one `upsert` or
//! `remove`, each new valid configuration one `set_config`, each re-list (a watch restart) one
//! `resync`. Every Decision goes through [`writes::plan`], which writes only differences.
//!
//! *Guarantees*
//! - Only the leader writes. A write in flight is abandoned as soon as leadership is lost, and
//!   the allocator is dropped: a new term starts from the API server's state, not ours.
//! - A 409 on a patch re-reads the Service and re-plans against it (at most
//!   [`MAX_CONFLICT_RETRIES`] times); other failures are retried with exponential backoff up to
//!   [`MAX_BACKOFF`], until a newer Decision for the Service replaces the pending one.
//! - A rejected configuration keeps the last good one: logged and reported as Events by
//!   [`ferrolb_runtime`] exactly as the speaker does (reason `ConfigurationRejected`, one
//!   Warning Event per error on the offending object, once per distinct error list, only by the
//!   leader), `ferrolb_config_stale 1`.
//!
//! *Caveats*: a new leader trusts its cache; a status write of the previous leader that the
//! watch has not delivered yet (within the lease duration) is not seen. Writes are sequential,
//! so the first resync of N Services that all need a write takes N round trips. The rejection
//! Events are posted by their own task ([`events::run_publisher`]), so a round already being
//! posted when leadership is lost is finished (at most [`events::MAX_EVENTS`] posts) rather
//! than abandoned like the Service writes.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::crd::ConfigurationStateStatus;
use ferrolb_api::source::Resources;
use ferrolb_api::state::Applied;
use ferrolb_runtime::events::{self, Rejection};
use ferrolb_runtime::ops_http::OpsLimits;
use ferrolb_runtime::{sleep_until, Backoff, ConfigApplier};
use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease_driver::{self, LeaseConfig};
use super::metrics::Metrics;
use super::writes::{self, EventNote, ServiceWrites, Severity};
use ferrolb_allocator::from_k8s::{key_of, service_from_k8s};
use ferrolb_allocator::{
    AllocError, Decision, Event, PoolAllocator, ServiceKey, ServiceState, SkipReason,
};

/// Re-reads and re-plans after a 409 at most this many times per write.
pub const MAX_CONFLICT_RETRIES: u32 = 5;
/// Ceiling of the retry backoff for failed writes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Retries of failed writes: doubling from 100 ms up to [`MAX_BACKOFF`], with jitter.
const RETRY: Backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
/// Limit on one API call; a hung API server must not stall the loop.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Field manager and Event reporter name.
pub const MANAGER: &str = "ferrolb-controller";

/// What Kubernetes mode needs besides the client.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// The namespace of the config CRs and the Lease.
    pub namespace: String,
    /// Handle Services of this class (`None`: Services without a class).
    pub load_balancer_class: Option<String>,
    /// Lease name, identity and duration.
    pub lease: LeaseConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: SocketAddr,
    /// The ops server's connection cap and timeouts.
    pub ops_limits: OpsLimits,
    /// The speakers' memberlist Secret, created by the leader when missing
    /// ([`super::memberlist`]).
    pub ml_secret_name: String,
    /// The admission webhook, served by every replica ([`crate::webhook`]).
    pub webhook: Option<crate::webhook::WebhookOptions>,
}

/// Why Kubernetes mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeModeError {
    /// The metrics address cannot be bound.
    #[error("binding the metrics address {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The `--webhook-addr` given cannot be bound.
    #[error("binding the webhook address {addr}: {source}")]
    BindWebhook {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs Kubernetes mode until `cancel`.
pub async fn run(
    client: Client,
    opts: KubeOptions,
    cancel: CancellationToken,
) -> Result<(), KubeModeError> {
    let metrics = Arc::new(Metrics::default());
    let (addr, http) = super::http::serve(
        opts.metrics_addr,
        Arc::clone(&metrics),
        opts.ops_limits,
        cancel.clone(),
    )
    .await
    .map_err(|source| KubeModeError::Bind {
        addr: opts.metrics_addr,
        source,
    })?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");

    let (snapshot, snapshot_rx) = crate::webhook::snapshot_channel();
    let mut webhook_tasks = Vec::new();
    if let Some(w) = opts.webhook.clone() {
        let addr = w.addr;
        if let Some((_, tasks)) =
            crate::webhook::start(w, Some(client.clone()), snapshot_rx, cancel.clone())
                .await
                .map_err(|source| KubeModeError::BindWebhook { addr, source })?
        {
            webhook_tasks = tasks;
        }
    }

    let (leader_tx, leader_rx) = watch::channel(false);
    // The reconciler stops on `cancel`, then the driver releases the Lease.
    let lease_cancel = CancellationToken::new();
    let lease = tokio::spawn(lease_driver::run(
        Api::<Lease>::namespaced(client.clone(), &opts.namespace),
        opts.lease.clone(),
        leader_tx,
        lease_cancel.clone(),
    ));

    let ml_secret = tokio::spawn(super::memberlist::run(
        Api::namespaced(client.clone(), &opts.namespace),
        opts.namespace.clone(),
        opts.ml_secret_name.clone(),
        leader_rx.clone(),
        cancel.clone(),
    ));

    let config = ferrolb_api::source::kube::snapshots(client.clone(), &opts.namespace)
        .map(|r| Tick::Config(r.map(Box::new)))
        .boxed();
    let (services, service_ticks) = reflect(Api::<Service>::all(client.clone()), |r| {
        Tick::Services(Box::new(r))
    });
    let (namespaces, namespace_ticks) = reflect(Api::<Namespace>::all(client.clone()), |r| {
        Tick::Namespaces(Box::new(r))
    });
    let ticks = stream::select_all([config, service_ticks, namespace_ticks]);

    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: Some(opts.lease.identity.clone()),
    };
    let (rejections, rejections_rx) = watch::channel(Rejection::default());
    let publisher = tokio::spawn(events::run_publisher(
        client.clone(),
        reporter.clone(),
        opts.namespace.clone(),
        rejections_rx,
        // The publisher logs each failure; the controller has no Event-failure metric.
        |_: &kube::Error| {},
        cancel.clone(),
    ));
    // Ignored configuration fields as Warning Events on their objects, once per configuration
    // change (the ConfigApplier decides when), beside the log line.
    let (warnings, warnings_rx) = tokio::sync::mpsc::unbounded_channel();
    let warning_publisher = tokio::spawn(events::run_warning_publisher(
        client.clone(),
        reporter.clone(),
        opts.namespace.clone(),
        warnings_rx,
        |_: &kube::Error| {},
        cancel.clone(),
    ));
    let (config_state, config_state_rx) = watch::channel(None);
    let config_state_writer = tokio::spawn(ferrolb_runtime::config_state::run_writer(
        client.clone(),
        opts.namespace.clone(),
        ferrolb_runtime::config_state::Reporter::controller(),
        MANAGER.into(),
        config_state_rx,
        cancel.clone(),
    ));
    let (pool_status, pool_status_rx) = watch::channel(None);
    let pool_status_writer = tokio::spawn(super::pool_status::run_writer(
        Api::namespaced(client.clone(), &opts.namespace),
        MANAGER.into(),
        pool_status_rx,
        cancel.clone(),
    ));
    let mut reconciler = Reconciler {
        client,
        class: opts.load_balancer_class,
        services,
        namespaces,
        config: ConfigApplier::new(),
        rejections,
        warnings,
        ignored_in_force: Vec::new(),
        synced: Synced::default(),
        allocator: None,
        leader: leader_rx,
        metrics,
        reporter,
        pending: BTreeMap::new(),
        failed: BTreeMap::new(),
        snapshot,
        config_state,
        pool_status,
    };
    reconciler.run(ticks, cancel.clone()).await;
    lease_cancel.cancel();
    let _ = config_state_writer.await;
    let _ = pool_status_writer.await;
    for task in webhook_tasks {
        let _ = task.await;
    }
    let _ = publisher.await;
    let _ = warning_publisher.await;
    let _ = ml_secret.await;
    let _ = lease.await;
    let _ = http.await;
    Ok(())
}

/// What woke the loop.
enum Tick {
    Config(Result<Box<Resources>, watcher::Error>),
    Services(Box<Result<watcher::Event<Service>, watcher::Error>>),
    Namespaces(Box<Result<watcher::Event<Namespace>, watcher::Error>>),
}

fn reflect<K>(
    api: Api<K>,
    wrap: fn(Result<watcher::Event<K>, watcher::Error>) -> Tick,
) -> (Store<K>, BoxStream<'static, Tick>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let ticks = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .map(wrap)
        .boxed();
    (reader, ticks)
}

/// Which initial lists are complete.
#[derive(Debug, Default, Clone, Copy)]
struct Synced {
    config: bool,
    services: bool,
    namespaces: bool,
}

impl Synced {
    fn all(self) -> bool {
        self.config && self.services && self.namespaces
    }
}

/// A write that failed and waits for its retry.
struct Pending {
    decision: Decision,
    attempts: u32,
    due: Instant,
}

/// How a write ended.
enum Outcome {
    Done,
    Retry,
    LostLeadership,
}

struct Reconciler {
    client: Client,
    class: Option<String>,
    services: Store<Service>,
    namespaces: Store<Namespace>,
    /// The configuration in force and what was logged about it (shared with the speaker).
    config: ConfigApplier,
    /// The rejection to report as Events ([`events::run_publisher`]): the newest one while
    /// leading with synced caches, else empty.
    rejections: watch::Sender<Rejection>,
    /// Ignored configuration fields for [`events::run_warning_publisher`].
    warnings: tokio::sync::mpsc::UnboundedSender<Vec<events::Warning>>,
    /// The ignored fields of the configuration in force, posted again when this replica
    /// becomes the leader (it may have put the configuration in force as a standby).
    ignored_in_force: Vec<events::Warning>,
    synced: Synced,
    /// `Some` only while leading with synced caches and a valid configuration.
    allocator: Option<PoolAllocator>,
    leader: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    /// A fresh [`Recorder`] per publish: a shared one would turn a second Event of the same
    /// reason on the same Service into a series of the first, keeping the first one's note.
    reporter: Reporter,
    pending: BTreeMap<ServiceKey, Pending>,
    /// The failure last reported per Service, so a repeat is not reported again.
    failed: BTreeMap<ServiceKey, AllocError>,
    /// The newest configuration objects, for the admission webhook (every replica serves it).
    snapshot: watch::Sender<Option<Arc<Resources>>>,
    /// The controller's ConfigurationState status to write: the leader's, once synced.
    config_state: watch::Sender<Option<ConfigurationStateStatus>>,
    /// The IPAddressPool statuses to write: the leader's allocator counts.
    pool_status: watch::Sender<Option<super::pool_status::Statuses>>,
}

impl Reconciler {
    async fn run(
        &mut self,
        mut ticks: stream::SelectAll<BoxStream<'static, Tick>>,
        cancel: CancellationToken,
    ) {
        let mut leader = self.leader.clone();
        loop {
            let next_retry = self.pending.values().map(|p| p.due).min();
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = leader.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.on_leadership().await;
                }
                tick = ticks.next() => match tick {
                    Some(tick) => self.on_tick(tick).await,
                    None => return,
                },
                () = sleep_until(next_retry) => self.retry_due().await,
            }
        }
    }

    fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    async fn on_leadership(&mut self) {
        let lead = self.is_leader();
        self.metrics.set_leader(lead);
        self.report_config_errors();
        if lead && !self.ignored_in_force.is_empty() {
            let _ = self.warnings.send(self.ignored_in_force.clone());
        }
        if lead {
            self.start().await;
        } else {
            self.allocator = None;
            self.pending.clear();
            self.failed.clear();
            self.metrics.set_pools(&[]);
            self.update_pool_metrics();
        }
    }

    async fn on_tick(&mut self, tick: Tick) {
        match tick {
            Tick::Config(Ok(res)) => self.on_config(&res).await,
            Tick::Config(Err(error)) => {
                tracing::warn!(%error, "config watch failed; the last good configuration stays");
                self.metrics.set_config_stale(true);
            }
            Tick::Services(tick) => match *tick {
                Err(error) => tracing::warn!(%error, "Service watch failed; retrying with backoff"),
                Ok(event) => self.on_service_event(event).await,
            },
            Tick::Namespaces(tick) => match *tick {
                Err(error) => {
                    tracing::warn!(%error, "Namespace watch failed; retrying with backoff")
                }
                Ok(event) => self.on_namespace_event(event).await,
            },
        }
    }

    async fn on_service_event(&mut self, event: watcher::Event<Service>) {
        match event {
            watcher::Event::Apply(svc) => self.on_service(&svc).await,
            watcher::Event::Delete(svc) => self.on_service_deleted(&svc).await,
            watcher::Event::InitDone => {
                self.synced.services = true;
                self.start().await;
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    async fn on_namespace_event(&mut self, event: watcher::Event<Namespace>) {
        match event {
            watcher::Event::Apply(ns) => self.on_namespace(&ns).await,
            watcher::Event::InitDone => {
                self.synced.namespaces = true;
                self.start().await;
            }
            watcher::Event::Delete(_) | watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    }

    async fn on_config(&mut self, res: &Resources) {
        self.synced.config = true;
        self.snapshot
            .send_replace(Some(Arc::new(crate::webhook::config_only(res))));
        let report = self.config.plan(res);
        ferrolb_runtime::config::log_report(&report);
        if report.applied != Applied::Rejected {
            let uids = events::config_uids(res);
            self.ignored_in_force = ferrolb_api::validate::ignored_fields(res)
                .iter()
                .map(|f| events::Warning::ignored(f, &uids))
                .collect();
        }
        // Only the leader posts, so replicas do not repeat the Event (every replica logs).
        if !report.ignored.is_empty() && self.is_leader() {
            // Closed only when the publisher is gone at shutdown: nothing left to warn.
            let _ = self.warnings.send(self.ignored_in_force.clone());
        }
        let applied = report.applied;
        self.metrics.set_config_stale(self.config.is_stale());
        self.metrics
            .count_config_update(applied, self.config.config().is_some());
        self.report_config_errors();
        match applied {
            Applied::Rejected | Applied::Unchanged => {}
            Applied::Changed => match (&mut self.allocator, self.config.config()) {
                (Some(allocator), Some(config)) => {
                    let decisions = allocator.set_config(config);
                    self.write_all(decisions).await;
                }
                _ => self.start().await,
            },
        }
    }

    /// Builds the allocator (or resyncs it after a re-list) when leading, synced and
    /// configured: adopt every valid status IP, then allocate the rest.
    async fn start(&mut self) {
        if !self.synced.all() {
            return;
        }
        self.metrics.set_ready();
        // Also when no configuration was ever valid: a leader reports the rejection it synced.
        self.report_config_errors();
        if !self.is_leader() {
            return;
        }
        let Some(config) = self.config.config() else {
            return;
        };
        let mut allocator = match self.allocator.take() {
            Some(a) => a,
            None => {
                let mut a = PoolAllocator::new(self.class.clone());
                a.set_config(config);
                tracing::info!("leading: allocator built from the cache");
                a
            }
        };
        let mut objects: Vec<Arc<Service>> = self.services.state();
        // First come, first served: oldest Service first (name breaks ties).
        objects.sort_by(|a, b| {
            let created = |s: &Service| s.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| key_of(a).cmp(&key_of(b)))
        });
        let mut readable = Vec::with_capacity(objects.len());
        let mut unreadable = Vec::new();
        for obj in &objects {
            match service_from_k8s(obj, &self.namespace_labels(obj)) {
                Ok(svc) => readable.push(svc),
                Err(e) => unreadable.push((Arc::clone(obj), e)),
            }
        }
        let mut decisions = allocator.resync(readable);
        self.allocator = Some(allocator);
        // Unreadable Services were forgotten by the resync; say why instead of "deleted".
        for (obj, error) in unreadable {
            let Some(key) = key_of(&obj) else { continue };
            let released = decisions
                .iter()
                .position(|d| d.service == key)
                .map(|i| decisions.remove(i))
                .map(|d| released_ips(&d))
                .unwrap_or_default();
            self.write_unreadable(&obj, &error, &released).await;
        }
        self.write_all(decisions).await;
    }

    async fn on_service(&mut self, obj: &Service) {
        let labels = self.namespace_labels(obj);
        let Some(allocator) = self.allocator.as_mut() else {
            return;
        };
        let Some(key) = key_of(obj) else { return };
        match service_from_k8s(obj, &labels) {
            Ok(svc) => {
                let decision = allocator.upsert(svc);
                self.write(decision, Some(obj)).await;
            }
            Err(error) => {
                let released = released_ips(&allocator.remove(&key));
                self.write_unreadable(obj, &error, &released).await;
            }
        }
    }

    async fn on_service_deleted(&mut self, obj: &Service) {
        let Some(allocator) = self.allocator.as_mut() else {
            return;
        };
        let Some(key) = key_of(obj) else { return };
        let decision = allocator.remove(&key);
        self.pending.remove(&key);
        self.write(decision, Some(obj)).await;
    }

    /// A Namespace's labels may change which pools its Services may use.
    async fn on_namespace(&mut self, ns: &Namespace) {
        if self.allocator.is_none() {
            return;
        }
        let name = ns.name_any();
        let objects: Vec<Arc<Service>> = self
            .services
            .state()
            .into_iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(name.as_str()))
            .collect();
        for obj in objects {
            self.on_service(&obj).await;
        }
    }

    fn namespace_labels(&self, svc: &Service) -> ferrolb_api::selector::Labels {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        self.namespaces
            .get(&ObjectRef::new(ns))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default()
    }

    fn is_ours(&self, obj: &Service) -> bool {
        let spec = obj.spec.as_ref();
        spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
            && spec.and_then(|s| s.load_balancer_class.clone()) == self.class
    }

    async fn write_unreadable(
        &mut self,
        obj: &Service,
        error: &dyn std::fmt::Display,
        released: &[IpAddr],
    ) {
        let Some(key) = key_of(obj) else { return };
        tracing::warn!(service = %key, %error, "cannot read the Service");
        if self.is_ours(obj) {
            let plan = writes::plan_unreadable(error, released, Some(obj));
            let decision = Decision {
                service: key,
                state: ServiceState::NotHandled(SkipReason::NotLoadBalancer),
                events: Vec::new(),
            };
            self.execute(decision, plan, obj).await;
        }
    }

    async fn write_all(&mut self, decisions: Vec<Decision>) {
        for decision in decisions {
            let current = self.current(&decision.service);
            self.write(decision, current.as_deref()).await;
        }
        self.update_pool_metrics();
    }

    fn current(&self, key: &ServiceKey) -> Option<Arc<Service>> {
        self.services
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    fn update_pool_metrics(&self) {
        let Some(a) = &self.allocator else {
            self.pool_status
                .send_if_modified(|old| old.take().is_some());
            return;
        };
        let usage = a.usage();
        self.metrics.set_pools(&usage);
        let pools = self
            .config
            .config()
            .map(|c| c.pools.keys().map(String::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        let want = Some(super::pool_status::statuses(pools, &usage));
        self.pool_status.send_if_modified(|old| {
            let differs = *old != want;
            if differs {
                old.clone_from(&want);
            }
            differs
        });
    }

    async fn write(&mut self, mut decision: Decision, current: Option<&Service>) {
        // The same failure again (our own status write, an unrelated spec change) is no news.
        let key = decision.service.clone();
        match &decision.state {
            ServiceState::Failed(e) => {
                if self.failed.get(&key) == Some(e) {
                    decision.events.retain(|ev| !matches!(ev, Event::Failed(_)));
                }
                self.failed.insert(key, e.clone());
            }
            _ => {
                self.failed.remove(&key);
            }
        }
        for event in &decision.events {
            if let Event::Failed(e) = event {
                self.metrics.count_error(e.metric_label());
            }
        }
        // The allocator has already changed: the gauges say so before the (slower) writes.
        self.update_pool_metrics();
        let plan = writes::plan(&decision, current);
        match current {
            Some(obj) => self.execute(decision, plan, obj).await,
            None => {
                let reference = ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Service".into()),
                    namespace: Some(decision.service.namespace.to_string()),
                    name: Some(decision.service.name.to_string()),
                    ..ObjectReference::default()
                };
                self.publish(&plan.events, &reference).await;
            }
        }
    }

    /// Publishes the plan's Events, then patches (re-planning on 409), or queues a retry.
    async fn execute(&mut self, decision: Decision, plan: ServiceWrites, obj: &Service) {
        let key = decision.service.clone();
        self.pending.remove(&key);
        self.publish(&plan.events, &obj.object_ref(&())).await;
        match self.patch(&decision, plan).await {
            Outcome::Done | Outcome::LostLeadership => {}
            Outcome::Retry => self.queue_retry(decision, 0),
        }
    }

    fn queue_retry(&mut self, mut decision: Decision, attempts: u32) {
        decision.events.clear();
        let backoff = RETRY.delay(attempts);
        tracing::info!(service = %decision.service, attempts, ?backoff, "write failed; will retry");
        let key = decision.service.clone();
        self.pending.insert(
            key,
            Pending {
                decision,
                attempts: attempts.saturating_add(1),
                due: Instant::now() + backoff,
            },
        );
    }

    async fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<ServiceKey> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(p) = self.pending.remove(&key) else {
                continue;
            };
            let Some(obj) = self.current(&key) else {
                continue;
            };
            let plan = writes::plan(&p.decision, Some(&obj));
            if let Outcome::Retry = self.patch(&p.decision, plan).await {
                self.queue_retry(p.decision, p.attempts);
            }
        }
    }

    /// Runs `call` unless leadership is lost first (then `None`); a timeout is an error.
    async fn guarded<T>(
        &self,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Option<Result<T, CallError>> {
        let mut leader = self.leader.clone();
        tokio::select! {
            biased;
            _ = leader.wait_for(|lead| !*lead) => None,
            out = tokio::time::timeout(CALL_TIMEOUT, call) => Some(match out {
                Ok(r) => r.map_err(CallError::Api),
                Err(_) => Err(CallError::Timeout),
            }),
        }
    }

    async fn publish(&self, events: &[EventNote], reference: &ObjectReference) {
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        for note in events {
            let event = KubeEvent {
                type_: match note.severity {
                    Severity::Normal => EventType::Normal,
                    Severity::Warning => EventType::Warning,
                },
                reason: note.reason.into(),
                note: Some(note.note.clone()),
                action: "Allocate".into(),
                secondary: None,
            };
            tracing::info!(
                object = ?reference.name,
                namespace = ?reference.namespace,
                reason = note.reason,
                note = %note.note,
                "event"
            );
            match self.guarded(recorder.publish(&event, reference)).await {
                None => return,
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, reason = note.reason, "recording an Event failed")
                }
            }
        }
    }

    /// Sends the plan's patches; on 409 re-reads the Service and re-plans.
    async fn patch(&self, decision: &Decision, mut plan: ServiceWrites) -> Outcome {
        let key = &decision.service;
        let api: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        for attempt in 0..=MAX_CONFLICT_RETRIES {
            let mut result = Ok(());
            if let Some(body) = &plan.status {
                match self
                    .guarded(api.patch_status(&key.name, &params, &Patch::Merge(body)))
                    .await
                {
                    None => return Outcome::LostLeadership,
                    Some(r) => result = r.map(|_| ()),
                }
            }
            if result.is_ok() {
                if let Some(body) = &plan.annotations {
                    match self
                        .guarded(api.patch(&key.name, &params, &Patch::Merge(body)))
                        .await
                    {
                        None => return Outcome::LostLeadership,
                        Some(r) => result = r.map(|_| ()),
                    }
                }
            }
            match result {
                Ok(()) => {
                    if !plan.no_patch() {
                        tracing::debug!(service = %key, "status and annotation written");
                    }
                    return Outcome::Done;
                }
                Err(e) if e.code() == Some(404) => return Outcome::Done,
                Err(e) if e.code() == Some(409) && attempt < MAX_CONFLICT_RETRIES => {
                    tracing::info!(service = %key, attempt, "409 conflict; re-reading the Service");
                    match self.guarded(api.get_opt(&key.name)).await {
                        None => return Outcome::LostLeadership,
                        Some(Ok(Some(fresh))) => plan = writes::plan(decision, Some(&fresh)),
                        Some(Ok(None)) => return Outcome::Done,
                        Some(Err(error)) => {
                            tracing::warn!(service = %key, %error, "re-reading the Service failed");
                            return Outcome::Retry;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(service = %key, %error, "writing the Service failed");
                    return Outcome::Retry;
                }
            }
        }
        Outcome::Retry
    }

    /// Hands the rejection to the Event publisher: the newest configuration's errors while
    /// leading with synced caches (only the leader reports, as it alone writes), else nothing.
    /// The publisher posts each distinct error list once; an empty list in between (a valid
    /// configuration, a lost term) makes the next one news again.
    fn report_config_errors(&mut self) {
        let state = (self.is_leader() && self.synced.all())
            .then(|| ferrolb_runtime::config_state::desired(&self.config));
        self.config_state.send_if_modified(|old| {
            let differs = *old != state;
            if differs {
                old.clone_from(&state);
            }
            differs
        });
        let rejection = if self.is_leader() && self.synced.all() {
            self.config.rejection()
        } else {
            Rejection::default()
        };
        self.rejections.send_if_modified(|old| {
            let differs = old.errors != rejection.errors;
            if differs {
                *old = rejection;
            }
            differs
        });
    }
}

/// The IPs a Decision's `IPReleased` Events give back.
fn released_ips(decision: &Decision) -> Vec<IpAddr> {
    decision
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Released { ips, .. } => Some(ips.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// An API call's failure.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Api(kube::Error),
    #[error("no answer within {CALL_TIMEOUT:?}")]
    Timeout,
}

impl CallError {
    fn code(&self) -> Option<u16> {
        match self {
            CallError::Api(kube::Error::Api(s)) => Some(s.code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_allocator::ReleaseReason;

    #[test]
    fn released_ips_are_collected_from_release_events() {
        let d = Decision {
            service: ServiceKey::new("a", "b"),
            state: ServiceState::NotHandled(SkipReason::Deleted),
            events: vec![Event::Released {
                ips: vec!["10.0.0.1".parse().expect("ip")],
                pool: Some("p".into()),
                reason: ReleaseReason::Deleted,
            }],
        };
        assert_eq!(
            released_ips(&d),
            vec!["10.0.0.1".parse::<IpAddr>().expect("ip")]
        );
    }
}
