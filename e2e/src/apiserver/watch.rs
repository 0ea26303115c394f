//! Watch streams: one task per stream feeds a bounded channel that the
//! response body drains. The task wakes on the store's resourceVersion
//! channel, on its BOOKMARK timer, on its deadline (`timeoutSeconds`), on the
//! epoch channel ([`ApiServer::drop_watches`](super::ApiServer::drop_watches))
//! and when the client goes away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::http::{Body, Query};
use super::resources::Resource;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{present, Change, EventType};
use super::Shared;

/// Longest watch when the client sets no `timeoutSeconds` (the real server
/// picks 30–60 minutes).
const MAX_WATCH: Duration = Duration::from_secs(30 * 60);
/// Lines buffered per watch stream before the task waits for the client.
const WATCH_BUFFER: usize = 64;

/// Where a watch starts.
#[derive(Debug)]
enum Start {
    /// Synthetic ADDED events for the current state first (resourceVersion
    /// unset or "0", or `sendInitialEvents=true`).
    Current,
    /// Changes after this resourceVersion.
    After(u64),
}

/// A parsed watch request.
pub(super) struct Watch {
    res: &'static Resource,
    version: String,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    start: Start,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Duration,
}

impl Watch {
    pub(super) fn new(
        res: &'static Resource,
        version: String,
        ns: Option<String>,
        query: &Query,
    ) -> Result<Self, ApiError> {
        let (labels, fields) = query.selectors()?;
        let send_initial = query.flag("sendInitialEvents");
        let start =
            match query.get("resourceVersion") {
                _ if send_initial => Start::Current,
                None | Some("" | "0") => Start::Current,
                Some(rv) => Start::After(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion `{rv}`"))
                })?),
            };
        let timeout = query
            .number("timeoutSeconds")?
            .map(Duration::from_secs)
            .filter(|t| !t.is_zero())
            .map_or(MAX_WATCH, |t| t.min(MAX_WATCH));
        let bookmarks = query.flag("allowWatchBookmarks");
        Ok(Self {
            res,
            version,
            ns,
            labels,
            fields,
            start,
            bookmarks,
            initial_events_end: send_initial && bookmarks,
            timeout,
        })
    }

    /// Spawns the stream's task and returns the streaming response.
    pub(super) fn start(self, shared: Arc<Shared>) -> Response<Body> {
        let (tx, rx) = mpsc::channel::<Bytes>(WATCH_BUFFER);
        tokio::spawn(self.run(shared, tx));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
        });
        let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        resp
    }

    fn visible(&self, obj: &Value) -> bool {
        let ns_ok = match (&self.ns, self.res.namespaced) {
            (Some(ns), true) => {
                obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str())
            }
            _ => true,
        };
        ns_ok && self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event this watch reports for a change, if any. With selectors, an
    /// object that starts or stops matching appears as ADDED or DELETED, as
    /// the API server's watch cache does.
    fn event_for(&self, change: &Change) -> Option<(EventType, Value)> {
        let now = self.visible(&change.object);
        let kind = match change.kind {
            EventType::Added | EventType::Deleted if now => change.kind,
            EventType::Modified => {
                match (change.old.as_ref().is_some_and(|o| self.visible(o)), now) {
                    (true, true) => EventType::Modified,
                    (false, true) => EventType::Added,
                    (true, false) => EventType::Deleted,
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        Some((kind, change.object.clone()))
    }

    fn line(&self, kind: &str, object: Value) -> Bytes {
        let object = if kind == "ERROR" {
            object
        } else {
            present(object, self.res, &self.version)
        };
        let mut text = json!({"type": kind, "object": object}).to_string();
        text.push('\n');
        Bytes::from(text)
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            if let Some(m) = meta.as_object_mut() {
                m.insert(
                    "annotations".into(),
                    json!({"k8s.io/initial-events-end": "true"}),
                );
            }
        }
        self.line("BOOKMARK", json!({"metadata": meta}))
    }

    async fn run(self, shared: Arc<Shared>, tx: mpsc::Sender<Bytes>) {
        // Subscribe before reading the store so no write slips between.
        let mut rv_rx = shared.rv.subscribe();
        let mut epoch_rx = shared.epoch.subscribe();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let interval = shared.control().bookmark_interval;
        let mut bookmark_timer =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);

        // Sends one line unless the stream is being ended.
        macro_rules! send {
            ($line:expr) => {{
                let line = $line;
                let sent = tokio::select! {
                    sent = tx.send(line) => sent.is_ok(),
                    _ = epoch_rx.changed() => false,
                    () = tokio::time::sleep_until(deadline) => false,
                };
                if !sent {
                    return;
                }
            }};
        }

        let mut last = match self.start {
            Start::After(rv) => rv,
            Start::Current => {
                let page = shared.store().list(
                    self.res,
                    self.ns.as_deref(),
                    &self.labels,
                    &self.fields,
                    None,
                    None,
                );
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        send!(self.line("ERROR", e.to_status()));
                        return;
                    }
                };
                for obj in page.items {
                    send!(self.line(EventType::Added.as_str(), obj));
                }
                if self.initial_events_end {
                    send!(self.bookmark(page.rv, true));
                }
                page.rv
            }
        };
        // Bounded by `deadline`: every wait below also ends there.
        loop {
            let drained = {
                let store = shared.store();
                store.changes_since(self.res, last).map(|c| (c, store.rv()))
            };
            let (changes, now) = match drained {
                Ok(drained) => drained,
                Err(gone) => {
                    // Kubernetes API concepts, "Efficient detection of
                    // changes": an expired resourceVersion ends the watch
                    // with an ERROR event carrying Status 410 Gone, and the
                    // client must re-list.
                    send!(self.line("ERROR", gone.to_status()));
                    return;
                }
            };
            for change in &changes {
                if let Some((kind, obj)) = self.event_for(change) {
                    send!(self.line(kind.as_str(), obj));
                }
            }
            last = last.max(now);
            tokio::select! {
                changed = rv_rx.changed() => if changed.is_err() { return },
                _ = bookmark_timer.tick(), if self.bookmarks => send!(self.bookmark(last, false)),
                () = tokio::time::sleep_until(deadline) => return,
                _ = epoch_rx.changed() => return,
                () = tx.closed() => return,
            }
        }
    }
}
