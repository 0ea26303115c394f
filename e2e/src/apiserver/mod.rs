//! Test double: a Kubernetes API server stand-in for FerroLB's tests.
//!
//! No real API server can run in CI, so this module serves the
//! real HTTP API for the resources FerroLB uses, well enough for the real
//! `kube` client, `kube_runtime::watcher` and the real controller and
//! speaker binaries (pointed at it with [`ApiServer::write_kubeconfig`]).
//! It is a test double, not an API server: see `docs/apiserver-double.md`.
//!
//! # What it models
//! - Routing of `/api/v1/...` and `/apis/{group}/{version}/...`, namespaced,
//!   cluster-scoped and all-namespaces paths, for the resources in
//!   [`resources::RESOURCES`]; minimal `/version`, `/api`, `/apis` discovery.
//! - One global resourceVersion (as etcd's revision); LIST with label and
//!   field selectors and `limit`/`continue`; WATCH from a resourceVersion
//!   with a bounded history (410 Expired when too old), BOOKMARKs,
//!   `sendInitialEvents`, `timeoutSeconds`.
//! - Create (409 AlreadyExists, generateName), replace with optimistic
//!   concurrency (409 Conflict), delete (finalizers delay it), the status
//!   subresource, merge / strategic-merge / JSON / apply patches.
//! - Faults: injected error responses, dropped watches, an outage.
//!
//! # What it does not
//! No authentication or authorization, no admission or schema validation,
//! no field ownership for server-side apply (an apply is a merge patch that
//! also removes what the same manager applied before and now leaves out),
//! no strategic-merge list semantics (a strategic merge patch is a merge
//! patch), no OpenAPI, no garbage collection or namespace cascading, no
//! `dryRun`, lists always read the latest state.
//!
//! # Threads
//! ```text
//!  test thread(s)                       "apiserver-double" thread
//!  ApiServer::{apply,get,..} --lock--> Shared.store <--lock-- HTTP handlers
//!        |                               |  rv watch ---> watch tasks (1 per stream)
//!        +-- Condvar <- notify on write -+  epoch watch -> ends every stream
//! ```

mod discovery;
mod http;
pub mod patch;
pub mod resources;
pub mod selector;
pub mod status;
pub mod store;
mod watch;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::Error as E2eError;
use resources::Resource;
use status::ApiError;
use store::Store;

/// Default interval between BOOKMARK events on watches that ask for them.
/// The real API server sends one about every minute; tests want them sooner.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);

/// One injected failure (see [`ApiServer::fail_next`]).
#[derive(Debug, Clone)]
struct Fault {
    method: String,
    path_contains: String,
    status: u16,
    remaining: usize,
}

/// Request log, faults and settings, under one lock.
#[derive(Debug)]
struct Control {
    requests: Vec<String>,
    faults: Vec<Fault>,
    bookmark_interval: Duration,
}

/// State shared by the handle, the HTTP handlers and the watch tasks.
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    /// Notified on every store change, for [`ApiServer::wait_for_object`].
    changed: Condvar,
    /// The latest resourceVersion; watch tasks wake when it changes.
    rv: tokio::sync::watch::Sender<u64>,
    /// Bumped to end every open watch stream.
    epoch: tokio::sync::watch::Sender<u64>,
    /// Whether the double is reachable; false closes the listener and
    /// every connection (see [`ApiServer::set_available`]).
    available: tokio::sync::watch::Sender<bool>,
    /// Open client connections, so going down can wait for them to close.
    connections: tokio::sync::watch::Sender<usize>,
    control: Mutex<Control>,
}

impl Shared {
    /// Locks the store; a poisoned lock (a panicking test thread) is still
    /// usable because every store operation leaves it consistent.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a write under the lock, then wakes waiters and watch tasks.
    fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let (out, rv) = {
            let mut store = self.store();
            let out = f(&mut store);
            (out, store.rv())
        };
        self.changed.notify_all();
        self.rv.send_if_modified(|cur| {
            let changed = *cur != rv;
            *cur = rv;
            changed
        });
        out
    }

    fn end_watches(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// A running API-server double; dropping it shuts it down.
#[derive(Debug)]
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    commands: tokio::sync::mpsc::UnboundedSender<http::Command>,
    thread: Option<JoinHandle<()>>,
}

fn resource(api_version: &str, kind: &str) -> Result<&'static Resource, E2eError> {
    resources::by_kind(api_version, kind).ok_or_else(|| E2eError::BadValue {
        field: "apiVersion/kind",
        value: format!("{api_version}/{kind}"),
        reason: "not a resource the API-server double serves (see apiserver::resources::RESOURCES)"
            .into(),
    })
}

impl ApiServer {
    /// Binds 127.0.0.1:0 (plain HTTP) and serves on its own thread with its
    /// own tokio runtime, so it works from sync and async tests alike.
    pub fn start() -> Result<ApiServer, E2eError> {
        let bind_err = |source| E2eError::Io {
            op: "bind API-server double on",
            path: "127.0.0.1:0".into(),
            source,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| E2eError::Io {
                op: "build tokio runtime for",
                path: "the API-server double".into(),
                source,
            })?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            changed: Condvar::new(),
            rv: tokio::sync::watch::Sender::new(0),
            epoch: tokio::sync::watch::Sender::new(0),
            available: tokio::sync::watch::Sender::new(true),
            connections: tokio::sync::watch::Sender::new(0),
            control: Mutex::new(Control {
                requests: Vec::new(),
                faults: Vec::new(),
                bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
            }),
        });
        let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
        let served = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("apiserver-double".into())
            .spawn(move || runtime.block_on(http::serve(listener, served, command_rx)))
            .map_err(|source| E2eError::Spawn {
                command: "apiserver-double thread".into(),
                source,
            })?;
        Ok(ApiServer {
            shared,
            addr,
            commands,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig (cluster server = [`url`](Self::url), no auth,
    /// namespace `default`) to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), E2eError> {
        let config = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: ferrolb-double\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: ferrolb-double\n  user: {{}}\n\
             contexts:\n\
             - name: ferrolb-double\n  context:\n    cluster: ferrolb-double\n    user: ferrolb-double\n    namespace: default\n\
             current-context: ferrolb-double\n",
            url = self.url()
        );
        std::fs::write(path, config).map_err(|source| E2eError::Io {
            op: "write kubeconfig",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Create-or-replace from a full object (apiVersion, kind,
    /// metadata.name, \[namespace\]); assigns uid, creationTimestamp,
    /// resourceVersion and generation and emits ADDED/MODIFIED to watchers.
    /// Returns the stored object. Status is written too (a fixture, not a
    /// client write).
    ///
    /// # Panics
    /// On an object the double cannot store (unknown apiVersion/kind,
    /// missing name): a broken fixture should fail the test at once. Use
    /// [`try_apply`](Self::try_apply) to get the error instead.
    pub fn apply(&self, obj: Value) -> Value {
        self.try_apply(obj)
            .unwrap_or_else(|e| panic!("ApiServer::apply: {e}"))
    }

    /// [`apply`](Self::apply) returning the error instead of panicking.
    pub fn try_apply(&self, obj: Value) -> Result<Value, E2eError> {
        let field = |f: &str| {
            obj.get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        let res = resource(&api_version, &kind)?;
        let (_, version) = resources::split_api_version(&api_version);
        let version = version.to_string();
        let stored = self
            .shared
            .write(|s| s.put_whole(res, obj))
            .map_err(|e: ApiError| E2eError::BadValue {
                field: "object",
                value: format!("{api_version}/{kind}"),
                reason: e.to_string(),
            })?;
        Ok(store::present(stored, res, &version))
    }

    /// Parses multi-document YAML and applies each document (for fixtures).
    /// Empty documents are skipped. Nothing is applied if any document
    /// fails to parse or names an unknown kind.
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<Value>, E2eError> {
        use serde::Deserialize;
        let mut docs = Vec::new();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
            let value = Value::deserialize(doc).map_err(|e| E2eError::BadValue {
                field: "YAML document",
                value: format!("#{i}"),
                reason: e.to_string(),
            })?;
            if value.is_null() {
                continue;
            }
            let api_version = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            resource(api_version, kind)?;
            docs.push(value);
        }
        docs.into_iter().map(|d| self.try_apply(d)).collect()
    }

    /// One object, as served in `api_version`.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let res = resource(api_version, kind).ok()?;
        let (_, version) = resources::split_api_version(api_version);
        let obj = self.shared.store().get(res, namespace, name).cloned()?;
        Some(store::present(obj, res, version))
    }

    /// Every object of the kind, in all namespaces, sorted by namespace and name.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let Ok(res) = resource(api_version, kind) else {
            return Vec::new();
        };
        let (_, version) = resources::split_api_version(api_version);
        let page = self.shared.store().list(
            res,
            None,
            &selector::LabelSelector::default(),
            &selector::FieldSelector::default(),
            None,
            None,
        );
        page.map(|p| {
            p.items
                .into_iter()
                .map(|o| store::present(o, res, version))
                .collect()
        })
        .unwrap_or_default()
    }

    /// Deletes an object (finalizers delay it, as in Kubernetes); true if it existed.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let Ok(res) = resource(api_version, kind) else {
            return false;
        };
        self.shared
            .write(|s| s.delete(res, namespace, name))
            .is_ok()
    }

    /// Every request seen: `"METHOD path?query"` (no `?` without a query), in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.control().requests.clone()
    }

    /// The request lines of [`ApiServer::requests`] with method `method`
    /// whose `path?query` contains `path_contains`.
    pub fn requests_matching(&self, method: &str, path_contains: &str) -> Vec<String> {
        let prefix = format!("{method} ");
        self.requests()
            .into_iter()
            .filter(|r| r.starts_with(&prefix) && r.contains(path_contains))
            .collect()
    }

    /// Fault injection: the next `count` requests whose method equals
    /// `method` (case-insensitive) and whose `path?query` contains
    /// `path_contains` get `status` (e.g. 409, 500) with a `metav1.Status`
    /// body. Rules are checked in the order they were added.
    ///
    /// The kube client retries 429, 503 and 504 by itself (up to 15 times
    /// with exponential backoff, `Config::default_retry`), so inject 500 or
    /// 409 to make a caller see an error at once.
    pub fn fail_next(&self, method: &str, path_contains: &str, status: u16, count: usize) {
        if count == 0 {
            return;
        }
        self.shared.control().faults.push(Fault {
            method: method.to_ascii_uppercase(),
            path_contains: path_contains.to_string(),
            status,
            remaining: count,
        });
    }

    /// Ends every open watch stream (as an API server restart would);
    /// clients must re-watch.
    pub fn drop_watches(&self) {
        self.shared.end_watches();
    }

    /// Takes the double down or brings it back, to simulate an outage.
    ///
    /// Down: the listening socket is closed (new connections are refused)
    /// and every open connection, watch streams included, is closed; a
    /// request that slips in meanwhile gets 503. Up: the same address is
    /// bound again. Returns once the change is in effect (the listener is
    /// closed and the connections are gone, or the listener is back).
    /// Connection errors, unlike 503, are not retried inside the kube
    /// client, so callers see the outage at once.
    pub fn set_available(&self, up: bool) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self
            .commands
            .send(http::Command::Available(up, done))
            .is_ok()
        {
            // Bounded: the serving loop answers after at most CLOSE_WAIT
            // (down) or its bounded rebind (up).
            let _ = wait.recv_timeout(Duration::from_secs(30));
        }
    }

    /// Drops the change history (as an etcd compaction) after advancing the
    /// resourceVersion by one: every watch, open or resuming later, from a
    /// resourceVersion issued before this call gets an ERROR event with
    /// Status 410 Expired and must re-list. Open streams get it at once.
    pub fn compact_history(&self) {
        self.shared.write(Store::compact);
    }

    /// Interval of BOOKMARK events on watches that set `allowWatchBookmarks`
    /// (applies to watches started afterwards).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        self.shared.control().bookmark_interval = interval.max(Duration::from_millis(10));
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv()
    }

    /// Waits (bounded by `timeout`) until `pred` holds for the object;
    /// returns it or `None`. Wakes on every store change (no polling).
    /// `pred` is called with the store locked: keep it a pure check.
    pub fn wait_for_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let res = resource(api_version, kind).ok()?;
        let (_, version) = resources::split_api_version(api_version);
        let deadline = Instant::now() + timeout;
        let mut store = self.shared.store();
        loop {
            if let Some(obj) = store.get(res, namespace, name) {
                let obj = store::present(obj.clone(), res, version);
                if pred(&obj) {
                    return Some(obj);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            store = self
                .shared
                .changed
                .wait_timeout(store, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.commands.send(http::Command::Stop);
        self.shared.end_watches();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
