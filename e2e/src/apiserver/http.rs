//! The HTTP layer: routing, handlers and watch streams, on hyper 1.
//!
//! Every handler takes the store lock once, so each request is atomic with
//! respect to every other (read-modify-write for PATCH included). Watch
//! streams live in `watch.rs`, discovery documents in `discovery.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::discovery::{group_list, no_such_path, resource_list, version_info};
use super::patch::{json_patch, merge_patch, prune_unapplied};
use super::resources::{self, Resource};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{present, Part, Store};
use super::watch::Watch;
use super::Shared;

pub(super) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body accepted (the real server's default is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;
/// Requests kept in the log; older ones are dropped in blocks.
const MAX_REQUEST_LOG: usize = 100_000;

/// What the handle asks of the serving loop.
#[derive(Debug)]
pub(super) enum Command {
    /// Go down (false) or come back (true); the sender is told when done.
    Available(bool, std::sync::mpsc::SyncSender<()>),
    /// Shut down.
    Stop,
}

/// How long going down waits for open connections to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The next connection, or never when there is no listener (outage).
async fn accept(
    listener: Option<&tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Serves connections until [`Command::Stop`] (or the handle is gone).
/// While the double is unavailable it has no listener and no connections.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let addr = listener.local_addr().ok();
    let mut listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("apiserver double: cannot register listener: {e}");
            return;
        }
    };
    // Bounded by the command channel: Stop, or the handle dropped, ends it.
    loop {
        let accepted = tokio::select! {
            command = commands.recv() => {
                match command {
                    None | Some(Command::Stop) => break,
                    Some(Command::Available(false, done)) => {
                        // Outage: refuse new connections, close open ones
                        // (their tasks watch `available`), then report.
                        listener = None;
                        shared.available.send_replace(false);
                        shared.end_watches();
                        let mut open = shared.connections.subscribe();
                        let _ = tokio::time::timeout(CLOSE_WAIT, open.wait_for(|n| *n == 0)).await;
                        let _ = done.send(());
                    }
                    Some(Command::Available(true, done)) => {
                        if listener.is_none() {
                            listener = rebind(addr).await;
                        }
                        shared.available.send_replace(true);
                        let _ = done.send(());
                    }
                }
                continue;
            }
            accepted = accept(listener.as_ref()) => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin; the loop still ends on Stop.
                eprintln!("apiserver double: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Responses are written as they are ready (watch lines one by one);
        // Nagle's algorithm would hold small writes back for an ACK.
        let _ = stream.set_nodelay(true);
        shared.connections.send_modify(|n| *n += 1);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _open = OpenConnection(Arc::clone(&shared));
            let mut up = shared.available.subscribe();
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection on an outage closes its socket. A
            // client hanging up mid-request is not an error worth reporting.
            tokio::select! {
                _ = conn => {}
                _ = up.wait_for(|up| !*up) => {}
            }
        });
    }
}

/// Counts a connection as open until dropped.
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Binds `addr` again after an outage, retrying a bounded number of times
/// (closed connections linger in TIME_WAIT; tokio sets SO_REUSEADDR, but
/// another process could have taken the port meanwhile).
async fn rebind(addr: Option<std::net::SocketAddr>) -> Option<tokio::net::TcpListener> {
    let addr = addr?;
    let mut last_error = None;
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "apiserver double: cannot bind {addr} again after the outage: {}",
        last_error.map(|e| e.to_string()).unwrap_or_default()
    );
    None
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters; the last occurrence of a name wins.
#[derive(Debug, Default)]
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Self {
        Self(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }

    pub(super) fn number(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid {name} `{v}`: not a non-negative integer"))
            }),
        }
    }

    pub(super) fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((labels, fields))
    }
}

/// What a URL path names.
#[derive(Debug)]
enum Route {
    Version,
    CoreVersions,
    Groups,
    Resources {
        group: String,
        version: String,
    },
    Collection {
        res: &'static Resource,
        version: String,
        ns: Option<String>,
    },
    Object {
        res: &'static Resource,
        version: String,
        ns: Option<String>,
        name: String,
        status: bool,
    },
}

fn route(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::Groups),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(no_such_path()),
    };
    let lookup =
        |plural: &str| resources::by_plural(group, version, plural).ok_or_else(no_such_path);
    let owned = |s: &str| s.to_string();
    let route = match rest {
        [] => Route::Resources {
            group: owned(group),
            version: owned(version),
        },
        // `namespaces/{name}/status` is the Namespace status subresource,
        // not a collection called "status".
        ["namespaces", ns, plural, tail @ ..] if !(tail.is_empty() && *plural == "status") => {
            let res = lookup(plural)?;
            if !res.namespaced {
                return Err(no_such_path());
            }
            let ns = Some(owned(ns));
            match tail {
                [] => Route::Collection {
                    res,
                    version: owned(version),
                    ns,
                },
                [name] => Route::Object {
                    res,
                    version: owned(version),
                    ns,
                    name: owned(name),
                    status: false,
                },
                [name, "status"] if res.status_subresource => Route::Object {
                    res,
                    version: owned(version),
                    ns,
                    name: owned(name),
                    status: true,
                },
                _ => return Err(no_such_path()),
            }
        }
        [plural] => Route::Collection {
            res: lookup(plural)?,
            version: owned(version),
            ns: None,
        },
        [plural, name, tail @ ..] => {
            let res = lookup(plural)?;
            let status = match tail {
                [] => false,
                ["status"] if res.status_subresource => true,
                _ => return Err(no_such_path()),
            };
            if res.namespaced {
                return Err(no_such_path());
            }
            Route::Object {
                res,
                version: owned(version),
                ns: None,
                name: owned(name),
                status,
            }
        }
    };
    Ok(route)
}

/// Removes and returns the status of the first matching fault rule.
fn take_fault(shared: &Shared, method: &str, line: &str) -> Option<u16> {
    let mut control = shared.control();
    if control.requests.len() >= MAX_REQUEST_LOG {
        control.requests.drain(..MAX_REQUEST_LOG / 10);
    }
    control.requests.push(line.to_string());
    let fault = control
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && f.method == method && line.contains(&f.path_contains))?;
    fault.remaining -= 1;
    let status = fault.status;
    control.faults.retain(|f| f.remaining > 0);
    Some(status)
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let line = if query.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path}?{query}")
    };
    let fault = take_fault(&shared, method.as_str(), &line);
    if !*shared.available.borrow() {
        return error(&ApiError::new(
            503,
            "the API-server double is unavailable (set_available(false))",
        ));
    }
    if let Some(code) = fault {
        return error(&ApiError::new(
            code,
            format!("injected by fail_next for `{line}`"),
        ));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error(&ApiError::new(
                413,
                format!("request body unreadable or over {MAX_BODY} bytes: {e}"),
            ))
        }
    };
    let query = Query::parse(&query);
    match dispatch(&shared, &method, &path, &query, &content_type, &body) {
        Ok(Reply::Json(code, value)) => json_response(code, &value),
        Ok(Reply::Watch(watch)) => watch.start(shared),
        Err(e) => error(&e),
    }
}

enum Reply {
    Json(u16, Value),
    Watch(Watch),
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &Query,
    content_type: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    if query.get("dryRun").is_some() {
        return Err(ApiError::bad_request(
            "dryRun is not supported by the API-server double",
        ));
    }
    let reply = match (route(path)?, method) {
        (Route::Version, &Method::GET) => Reply::Json(200, version_info()),
        (Route::CoreVersions, &Method::GET) => {
            Reply::Json(200, json!({"kind": "APIVersions", "versions": ["v1"]}))
        }
        (Route::Groups, &Method::GET) => Reply::Json(200, group_list()),
        (Route::Resources { group, version }, &Method::GET) => {
            Reply::Json(200, resource_list(&group, &version)?)
        }
        (Route::Collection { res, version, ns }, &Method::GET) => {
            if query.flag("watch") {
                Reply::Watch(Watch::new(res, version, ns, query)?)
            } else {
                let (labels, fields) = query.selectors()?;
                let limit = query
                    .number("limit")?
                    .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
                let page = shared.store().list(
                    res,
                    ns.as_deref(),
                    &labels,
                    &fields,
                    limit,
                    query.get("continue"),
                )?;
                let mut meta = json!({"resourceVersion": page.rv.to_string()});
                if let (Some(token), Some(m)) = (page.continue_token, meta.as_object_mut()) {
                    m.insert("continue".into(), Value::String(token));
                    m.insert("remainingItemCount".into(), Value::from(page.remaining));
                }
                let items: Vec<Value> = page
                    .items
                    .into_iter()
                    .map(|o| present(o, res, &version))
                    .collect();
                Reply::Json(
                    200,
                    json!({
                        "kind": format!("{}List", res.kind),
                        "apiVersion": res.api_version(&version),
                        "metadata": meta,
                        "items": items,
                    }),
                )
            }
        }
        (Route::Collection { res, version, ns }, &Method::POST) => {
            if res.namespaced && ns.is_none() {
                return Err(ApiError::new(
                    405,
                    format!("create {} needs a namespace in the path", res.plural),
                ));
            }
            let obj = parse_json(body)?;
            let created = shared.write(|s| s.create(res, ns.as_deref(), obj))?;
            Reply::Json(201, present(created, res, &version))
        }
        (Route::Collection { res, version, ns }, &Method::DELETE) => {
            let (labels, fields) = query.selectors()?;
            let deleted = shared.write(|s| -> Result<Vec<Value>, ApiError> {
                let page = s.list(res, ns.as_deref(), &labels, &fields, None, None)?;
                let mut deleted = Vec::new();
                for obj in page.items {
                    let ns = obj
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let name = obj
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    deleted.push(present(s.delete(res, ns.as_deref(), &name)?, res, &version));
                }
                Ok(deleted)
            })?;
            Reply::Json(
                200,
                json!({
                    "kind": format!("{}List", res.kind),
                    "apiVersion": res.api_version(&version),
                    "metadata": {},
                    "items": deleted,
                }),
            )
        }
        (
            Route::Object {
                res,
                version,
                ns,
                name,
                ..
            },
            &Method::GET,
        ) => {
            let obj = shared
                .store()
                .get(res, ns.as_deref(), &name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(res.group, res.plural, &name))?;
            Reply::Json(200, present(obj, res, &version))
        }
        (
            Route::Object {
                res,
                version,
                ns,
                name,
                status,
            },
            method @ (&Method::PUT | &Method::PATCH),
        ) => {
            let part = if status { Part::Status } else { Part::Main };
            let (code, written) = if method == Method::PUT {
                let obj = parse_json(body)?;
                let updated = shared.write(|s| s.update(res, ns.as_deref(), &name, obj, part))?;
                (200, updated)
            } else {
                patch(
                    shared,
                    res,
                    ns.as_deref(),
                    &name,
                    part,
                    content_type,
                    query,
                    body,
                )?
            };
            Reply::Json(code, present(written, res, &version))
        }
        (
            Route::Object {
                res,
                version,
                ns,
                name,
                status: false,
            },
            &Method::DELETE,
        ) => {
            let options = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                parse_json(body)?
            };
            let deleted = shared.write(|s| {
                check_preconditions(s, res, ns.as_deref(), &name, &options)?;
                s.delete(res, ns.as_deref(), &name)
            })?;
            Reply::Json(200, present(deleted, res, &version))
        }
        (_, method) => {
            return Err(ApiError::new(
                405,
                format!("method {method} is not allowed on {path}"),
            ))
        }
    };
    Ok(reply)
}

/// `DeleteOptions.preconditions`: uid and resourceVersion must match, or 409.
fn check_preconditions(
    s: &Store,
    res: &'static Resource,
    ns: Option<&str>,
    name: &str,
    options: &Value,
) -> Result<(), ApiError> {
    let Some(pre) = options.get("preconditions") else {
        return Ok(());
    };
    let current = s
        .get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res.group, res.plural, name))?;
    for field in ["uid", "resourceVersion"] {
        if let Some(want) = pre.get(field).and_then(Value::as_str) {
            let have = current
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if want != have {
                return Err(ApiError::new(
                    409,
                    format!("Precondition failed: {field} in precondition: {want}, {field} in object meta: {have}"),
                ));
            }
        }
    }
    Ok(())
}

/// PATCH in its four content types. Returns the HTTP code (201 when a
/// server-side apply created the object) and the stored object.
#[allow(clippy::too_many_arguments)]
fn patch(
    shared: &Shared,
    res: &'static Resource,
    ns: Option<&str>,
    name: &str,
    part: Part,
    content_type: &str,
    query: &Query,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    enum Kind {
        Merge,
        Json,
        Apply,
    }
    let kind = match content_type {
        "application/merge-patch+json" => Kind::Merge,
        // Simplification: strategic merge patch is served as a JSON merge
        // patch, so lists are replaced, never merged by key.
        "application/strategic-merge-patch+json" => Kind::Merge,
        "application/json-patch+json" => Kind::Json,
        "application/apply-patch+yaml" | "application/apply-patch+json" => Kind::Apply,
        other => {
            return Err(ApiError::new(
                415,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, \
                     application/strategic-merge-patch+json, application/apply-patch+yaml (got `{other}`)"
                ),
            ))
        }
    };
    let patch: Value = match kind {
        Kind::Apply => {
            if query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
                ));
            }
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("apply patch is not UTF-8: {e}")))?;
            let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("apply patch is not valid YAML: {e}"))
            })?;
            let kind_ok = value.get("kind").and_then(Value::as_str) == Some(res.kind);
            let av = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (group, version) = resources::split_api_version(av);
            if !kind_ok || group != res.group || !res.versions.contains(&version) {
                return Err(ApiError::bad_request(format!(
                    "apply patch must carry apiVersion and kind of {} {} (got apiVersion `{av}`, kind `{}`)",
                    res.group,
                    res.kind,
                    value.get("kind").and_then(Value::as_str).unwrap_or_default()
                )));
            }
            value
        }
        Kind::Merge | Kind::Json => parse_json(body)?,
    };
    let manager = query.get("fieldManager").unwrap_or_default();
    shared.write(|s| {
        let Some(current) = s.get(res, ns, name).cloned() else {
            if let (Kind::Apply, Part::Main) = (&kind, part) {
                // Server-side apply creates an absent object.
                let mut obj = patch;
                if let Some(m) = obj.as_object_mut() {
                    let meta = m.entry("metadata").or_insert_with(|| json!({}));
                    if let Some(meta) = meta.as_object_mut() {
                        meta.entry("name")
                            .or_insert_with(|| Value::String(name.to_string()));
                    }
                }
                let created = s.create(res, ns, obj.clone())?;
                s.remember_applied(res, ns, name, manager, false, obj);
                return Ok((201, created));
            }
            return Err(ApiError::not_found(res.group, res.plural, name));
        };
        let mut new = current;
        let status = part == Part::Status;
        match kind {
            // Patches check a resourceVersion they carry: merge leaves the
            // patch's value in place of the current one, so update() sees it.
            Kind::Merge => merge_patch(&mut new, &patch),
            Kind::Apply => {
                if let Some(previous) = s.last_applied(res, ns, name, manager, status) {
                    prune_unapplied(&mut new, previous, &patch);
                }
                merge_patch(&mut new, &patch);
            }
            Kind::Json => {
                json_patch(&mut new, &patch).map_err(|e| ApiError::invalid(e.to_string()))?
            }
        }
        let updated = s.update(res, ns, name, new, part)?;
        if let Kind::Apply = kind {
            s.remember_applied(res, ns, name, manager, status, patch);
        }
        Ok((200, updated))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve_like_the_api_server() {
        let cases = [
            ("/api/v1/namespaces/ns/services", "collection services ns"),
            ("/api/v1/services", "collection services all"),
            ("/api/v1/namespaces/ns/services/a", "object services a"),
            (
                "/api/v1/namespaces/ns/services/a/status",
                "status services a",
            ),
            ("/api/v1/nodes/n1", "object nodes n1"),
            ("/api/v1/nodes/n1/status", "status nodes n1"),
            ("/api/v1/namespaces/ns1", "object namespaces ns1"),
            ("/api/v1/namespaces/ns1/status", "status namespaces ns1"),
            ("/api/v1/namespaces", "collection namespaces all"),
            (
                "/apis/coordination.k8s.io/v1/namespaces/x/leases/l",
                "object leases l",
            ),
            (
                "/apis/metallb.io/v1beta2/namespaces/m/bgppeers",
                "collection bgppeers m",
            ),
            ("/apis/metallb.io/v1beta1", "resources"),
            ("/version", "version"),
        ];
        for (path, want) in cases {
            let got = match route(path) {
                Ok(Route::Collection { res, ns, .. }) => {
                    format!(
                        "collection {} {}",
                        res.plural,
                        ns.as_deref().unwrap_or("all")
                    )
                }
                Ok(Route::Object {
                    res, name, status, ..
                }) => {
                    format!(
                        "{} {} {name}",
                        if status { "status" } else { "object" },
                        res.plural
                    )
                }
                Ok(Route::Resources { .. }) => "resources".into(),
                Ok(Route::Version) => "version".into(),
                Ok(other) => format!("{other:?}"),
                Err(e) => format!("error {}", e.code),
            };
            assert_eq!(got, want, "{path}");
        }
        for bad in [
            "/api/v1/namespaces/ns/nodes",
            "/api/v1/services/a",
            "/api/v1/namespaces/ns/secrets/a/status",
            "/apis/metallb.io/v1beta2/namespaces/m/ipaddresspools",
            "/api/v2/services",
            "/nope",
        ] {
            assert!(
                matches!(route(bad), Err(ApiError { code: 404, .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x=%zz");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some("%zz"));
    }
}
