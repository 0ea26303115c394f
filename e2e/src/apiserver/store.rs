//! The object store: what etcd plus the generic registry do for the API
//! server, minus persistence. Pure data; the HTTP layer and the watch tasks
//! take a lock around it.
//!
//! - One global resourceVersion counter, bumped by every write, as etcd's
//!   revision; objects carry it as a string.
//! - A bounded history of change events for watches. A watch from a
//!   resourceVersion older than the history gets 410 Expired and must
//!   re-list, as after an etcd compaction.
//! - Server-managed metadata: uid, creationTimestamp, generation (bumped
//!   when anything outside metadata and status changes), resourceVersion,
//!   deletionTimestamp for objects with finalizers.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::resources::Resource;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;

/// How many change events are kept for watches by default.
pub const DEFAULT_HISTORY: usize = 10_000;

/// Kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion the write produced.
    pub rv: u64,
    /// The resource's group and plural.
    pub resource: &'static Resource,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for `Deleted`, the last state).
    pub object: Value,
    /// The object before a `Modified` change, so a watch with a selector can
    /// turn it into ADDED/DELETED when the object enters or leaves the set.
    pub old: Option<Value>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything except `.status` when the kind has a
    /// status subresource.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
    /// A fixture write from the test: the whole object.
    Whole,
}

type Key = (&'static str, &'static str, String, String);

fn key(res: &'static Resource, ns: &str, name: &str) -> Key {
    (res.group, res.plural, ns.to_string(), name.to_string())
}

/// Objects, the resourceVersion counter and the change history.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Change>,
    history_cap: usize,
    /// Every change with rv ≤ this has left the history.
    compacted: u64,
    uids: u64,
    names: u64,
    /// Server-side apply: the last configuration each field manager applied
    /// to each object, per (object, manager, status subresource).
    applied: BTreeMap<(Key, String, bool), Value>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY)
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Matching objects, sorted by namespace and name.
    pub items: Vec<Value>,
    /// The store's resourceVersion when listed.
    pub rv: u64,
    /// Token for the next page when `limit` cut the list.
    pub continue_token: Option<String>,
    /// Items after this page.
    pub remaining: usize,
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .map(str::to_string)
}

/// Sets `metadata.{field}`. Bodies are checked to be objects on entry
/// ([`Store::check_body`]), so a non-object is left alone.
fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(field.to_string(), value);
        }
    }
}

/// Removes `metadata.{field}`.
fn remove_meta(obj: &mut Value, field: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove(field);
    }
}

/// The parts of an object that `generation` tracks: all but metadata and status.
fn spec_view(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// Sets `apiVersion` and `kind` for the version the client asked in.
pub fn present(mut obj: Value, res: &Resource, version: &str) -> Value {
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), Value::String(res.api_version(version)));
        m.insert("kind".into(), Value::String(res.kind.into()));
    }
    obj
}

/// RFC 3339 UTC timestamp with second precision, as `metav1.Time` encodes.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Store {
    /// An empty store keeping `history_cap` change events.
    pub fn new(history_cap: usize) -> Self {
        Self {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            compacted: 0,
            uids: 0,
            names: 0,
            applied: BTreeMap::new(),
        }
    }

    /// The current (latest) resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Drops the whole change history, as an etcd compaction would, after
    /// advancing the resourceVersion by one (as a write to some other key
    /// would): every watch, open or resuming, from a resourceVersion issued
    /// before the call gets 410 Expired and must re-list. Without the bump a
    /// watcher that had seen the latest version would resume untouched,
    /// which is correct but makes a forced re-list depend on timing.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.history.clear();
        self.compacted = self.rv;
    }

    /// What `manager` last applied to the object (server-side apply).
    pub fn last_applied(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        manager: &str,
        status: bool,
    ) -> Option<&Value> {
        let k = key(res, &Self::scope(res, ns), name);
        self.applied.get(&(k, manager.to_string(), status))
    }

    /// Records what `manager` applied, for the next apply's pruning.
    pub fn remember_applied(
        &mut self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        manager: &str,
        status: bool,
        applied: Value,
    ) {
        let k = key(res, &Self::scope(res, ns), name);
        if self.objects.contains_key(&k) {
            self.applied
                .insert((k, manager.to_string(), status), applied);
        }
    }

    /// Removes an object and what was applied to it.
    fn remove_object(&mut self, k: &Key) {
        self.objects.remove(k);
        let owned: Vec<_> = self
            .applied
            .range((k.clone(), String::new(), false)..)
            .take_while(|((key, _, _), _)| key == k)
            .map(|(entry, _)| entry.clone())
            .collect();
        for entry in owned {
            self.applied.remove(&entry);
        }
    }

    /// The namespace an object of `res` lives in: `ns` for namespaced kinds
    /// (empty if none given), empty for cluster-scoped kinds.
    fn scope(res: &Resource, ns: Option<&str>) -> String {
        if res.namespaced {
            ns.unwrap_or_default().to_string()
        } else {
            String::new()
        }
    }

    /// One object.
    pub fn get(&self, res: &'static Resource, ns: Option<&str>, name: &str) -> Option<&Value> {
        self.objects.get(&key(res, &Self::scope(res, ns), name))
    }

    /// Objects of `res` in `ns` (all namespaces when `None`), filtered by the
    /// selectors, sorted by namespace and name, paginated by `limit` and the
    /// `continue` token (the last key of the previous page; the double does
    /// not keep a snapshot per token, so later pages see later writes).
    pub fn list(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let after = match continue_token {
            None | Some("") => None,
            Some(token) => Some(token.split_once('/').ok_or_else(|| {
                ApiError::bad_request(format!("invalid continue token `{token}`"))
            })?),
        };
        // Keys sort by (group, plural, namespace, name): one range scan
        // from the first possible key, not a pass over the whole store.
        let ns = ns.filter(|_| res.namespaced);
        let lower = match after {
            Some((a_ns, a_name)) => {
                Bound::Excluded((res.group, res.plural, a_ns.to_string(), a_name.to_string()))
            }
            None => Bound::Included((
                res.group,
                res.plural,
                ns.unwrap_or_default().to_string(),
                String::new(),
            )),
        };
        let matching: Vec<&Value> = self
            .objects
            .range((lower, Bound::Unbounded))
            .take_while(|((g, p, o_ns, _), _)| {
                *g == res.group && *p == res.plural && ns.is_none_or(|ns| o_ns.as_str() <= ns)
            })
            .filter(|((_, _, o_ns, _), _)| ns.is_none_or(|ns| o_ns == ns))
            .map(|(_, obj)| obj)
            .filter(|obj| labels.matches(obj) && fields.matches(obj))
            .collect();
        let take = limit
            .filter(|&l| l > 0)
            .unwrap_or(usize::MAX)
            .min(matching.len());
        let items: Vec<Value> = matching.iter().take(take).map(|o| (*o).clone()).collect();
        let remaining = matching.len() - take;
        let continue_token = if remaining > 0 {
            items.last().map(|o| {
                format!(
                    "{}/{}",
                    meta(o, "namespace").unwrap_or_default(),
                    meta(o, "name").unwrap_or_default()
                )
            })
        } else {
            None
        };
        Ok(Page {
            items,
            rv: self.rv,
            continue_token,
            remaining,
        })
    }

    /// Changes to `res` after resourceVersion `since`, or 410 if some of them
    /// have left the history.
    pub fn changes_since(
        &self,
        res: &'static Resource,
        since: u64,
    ) -> Result<Vec<Change>, ApiError> {
        if since < self.compacted {
            return Err(ApiError::expired(since, self.compacted));
        }
        // The history is in resourceVersion order: skip to the first newer change.
        let first = self.history.partition_point(|c| c.rv <= since);
        Ok(self
            .history
            .range(first..)
            .filter(|c| c.resource.group == res.group && c.resource.plural == res.plural)
            .cloned()
            .collect())
    }

    fn record(&mut self, change: Change) {
        if self.history.len() >= self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        self.history.push_back(change);
    }

    /// A request body must be an object of the URL's kind.
    fn check_body(res: &'static Resource, obj: &Value) -> Result<(), ApiError> {
        if !obj.is_object() || obj.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(ApiError::invalid(format!(
                "{} is invalid: the body must be a JSON object with an object `metadata`",
                res.kind
            )));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str) {
            if kind != res.kind {
                return Err(ApiError::bad_request(format!(
                    "the body's kind `{kind}` does not match the URL's resource {} (kind {})",
                    res.plural, res.kind
                )));
            }
        }
        Ok(())
    }

    /// POST: creates a new object; 409 AlreadyExists if the name is taken.
    /// `metadata.generateName` gets a unique suffix when no name is given.
    pub fn create(
        &mut self,
        res: &'static Resource,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        Self::check_body(res, &obj)?;
        let ns = self.namespace_for(res, ns, &obj)?;
        let name = match meta(&obj, "name").filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => match meta(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => loop {
                    // Bounded: each try uses a fresh counter value, and the
                    // store holds finitely many names.
                    self.names += 1;
                    let candidate = format!("{prefix}{:05x}", self.names);
                    if !self.objects.contains_key(&key(res, &ns, &candidate)) {
                        break candidate;
                    }
                },
                None => {
                    return Err(ApiError::invalid(format!(
                        "{} is invalid: metadata.name: Required value: name or generateName is required",
                        res.kind
                    )))
                }
            },
        };
        if self.objects.contains_key(&key(res, &ns, &name)) {
            return Err(ApiError::already_exists(res.group, res.plural, &name));
        }
        set_meta(&mut obj, "name", Value::String(name.clone()));
        Ok(self.commit(res, &ns, &name, obj, None, false))
    }

    fn namespace_for(
        &self,
        res: &'static Resource,
        url_ns: Option<&str>,
        obj: &Value,
    ) -> Result<String, ApiError> {
        if !res.namespaced {
            return Ok(String::new());
        }
        let body_ns = meta(obj, "namespace").filter(|n| !n.is_empty());
        match (url_ns, body_ns) {
            (Some(u), Some(b)) if u != b => Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({b}) does not match the namespace sent on the request ({u})"
            ))),
            (Some(u), _) => Ok(u.to_string()),
            (None, Some(b)) => Ok(b),
            (None, None) => Ok("default".into()),
        }
    }

    /// PUT (or the result of a PATCH): replaces `name` with `obj`.
    ///
    /// A non-empty `metadata.resourceVersion` in `obj` must equal the stored
    /// one, or 409 Conflict (optimistic concurrency); an empty one is an
    /// unconditional update. `part` says which fields may change.
    pub fn update(
        &mut self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        Self::check_body(res, &obj)?;
        let ns = self.namespace_for(res, ns, &obj)?;
        if let Some(body_name) = meta(&obj, "name").filter(|n| !n.is_empty()) {
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        let Some(old) = self.objects.get(&key(res, &ns, name)).cloned() else {
            return Err(ApiError::not_found(res.group, res.plural, name));
        };
        if let Some(sent) = meta(&obj, "resourceVersion").filter(|rv| !rv.is_empty()) {
            let current = meta(&old, "resourceVersion").unwrap_or_default();
            if sent != current {
                return Err(ApiError::conflict(
                    res.group,
                    res.plural,
                    name,
                    &sent,
                    current.parse().unwrap_or(0),
                ));
            }
        }
        let new = match part {
            Part::Whole => obj,
            Part::Main => {
                let mut new = obj;
                if res.status_subresource {
                    // Writes to the main resource ignore `.status` when it is
                    // a subresource (Kubernetes API conventions, "status").
                    if let Value::Object(m) = &mut new {
                        match old.get("status") {
                            Some(s) => m.insert("status".into(), s.clone()),
                            None => m.remove("status"),
                        };
                    }
                }
                new
            }
            Part::Status => {
                // The status subresource changes only `.status`.
                let mut new = old.clone();
                if let Value::Object(m) = &mut new {
                    match obj.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
                new
            }
        };
        Ok(self.commit(res, &ns, name, new, Some(old), false))
    }

    /// DELETE: removes the object, or, when it has finalizers, marks it with
    /// `deletionTimestamp` and keeps it until an update empties them.
    pub fn delete(
        &mut self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let ns = Self::scope(res, ns);
        let k = key(res, &ns, name);
        let Some(old) = self.objects.get(&k).cloned() else {
            return Err(ApiError::not_found(res.group, res.plural, name));
        };
        if has_finalizers(&old) {
            if meta(&old, "deletionTimestamp").is_some() {
                return Ok(old);
            }
            let new = old.clone();
            return Ok(self.commit(res, &ns, name, new, Some(old), true));
        }
        self.remove_object(&k);
        self.rv += 1;
        let mut gone = old;
        set_meta(
            &mut gone,
            "resourceVersion",
            Value::String(self.rv.to_string()),
        );
        self.record(Change {
            rv: self.rv,
            resource: res,
            kind: EventType::Deleted,
            object: gone.clone(),
            old: None,
        });
        Ok(gone)
    }

    /// Stores `new` (with server-managed metadata filled in) and records the
    /// change. `mark_deletion` sets `deletionTimestamp` (a DELETE of an
    /// object with finalizers). Completes a pending deletion when the last
    /// finalizer is gone.
    fn commit(
        &mut self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        mut new: Value,
        old: Option<Value>,
        mark_deletion: bool,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        let generation = match &old {
            None => 1,
            Some(old) => {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if spec_view(old) != spec_view(&new) {
                    g + 1
                } else {
                    g
                }
            }
        };
        let uid = match old.as_ref().and_then(|o| meta(o, "uid")) {
            Some(uid) => uid,
            None => {
                self.uids += 1;
                format!("00000000-0000-4000-8000-{:012x}", self.uids)
            }
        };
        let created = old
            .as_ref()
            .and_then(|o| meta(o, "creationTimestamp"))
            .unwrap_or_else(now_rfc3339);
        let deletion = old
            .as_ref()
            .and_then(|o| {
                Some((
                    o.pointer("/metadata/deletionTimestamp")?.clone(),
                    o.pointer("/metadata/deletionGracePeriodSeconds").cloned(),
                ))
            })
            .or_else(|| {
                mark_deletion.then(|| (Value::String(now_rfc3339()), Some(Value::from(0))))
            });
        if let Value::Object(m) = &mut new {
            m.insert(
                "apiVersion".into(),
                Value::String(res.api_version(res.versions.last().copied().unwrap_or("v1"))),
            );
            m.insert("kind".into(), Value::String(res.kind.into()));
        }
        set_meta(&mut new, "name", Value::String(name.into()));
        if res.namespaced {
            set_meta(&mut new, "namespace", Value::String(ns.into()));
        } else {
            remove_meta(&mut new, "namespace");
        }
        set_meta(&mut new, "uid", Value::String(uid));
        set_meta(&mut new, "creationTimestamp", Value::String(created));
        set_meta(&mut new, "resourceVersion", Value::String(rv.to_string()));
        set_meta(&mut new, "generation", Value::from(generation));
        remove_meta(&mut new, "managedFields");
        // deletionTimestamp is server-managed: kept once set, never set by a write.
        remove_meta(&mut new, "deletionTimestamp");
        remove_meta(&mut new, "deletionGracePeriodSeconds");
        if let Some((ts, grace)) = deletion {
            set_meta(&mut new, "deletionTimestamp", ts);
            if let Some(grace) = grace {
                set_meta(&mut new, "deletionGracePeriodSeconds", grace);
            }
        }
        let k = key(res, ns, name);
        if meta(&new, "deletionTimestamp").is_some() && !has_finalizers(&new) {
            // The last finalizer is gone: the pending deletion completes.
            self.remove_object(&k);
            self.record(Change {
                rv,
                resource: res,
                kind: EventType::Deleted,
                object: new.clone(),
                old: None,
            });
            return new;
        }
        self.objects.insert(k, new.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Change {
            rv,
            resource: res,
            kind,
            object: new.clone(),
            old,
        });
        new
    }

    /// Fixture write: create or replace the whole object (status included).
    pub fn put_whole(&mut self, res: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        let ns = self.namespace_for(res, None, &obj)?;
        let Some(name) = meta(&obj, "name").filter(|n| !n.is_empty()) else {
            return Err(ApiError::invalid(format!(
                "{}: metadata.name is required",
                res.kind
            )));
        };
        let mut obj = obj;
        // A fixture replaces unconditionally, whatever resourceVersion it carries.
        remove_meta(&mut obj, "resourceVersion");
        if self.objects.contains_key(&key(res, &ns, &name)) {
            self.update(res, Some(&ns), &name, obj, Part::Whole)
        } else {
            self.create(res, Some(&ns), obj)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::resources::by_kind;
    use super::*;
    use serde_json::json;

    fn svc() -> &'static Resource {
        by_kind("v1", "Service").expect("Service")
    }

    /// A store holding Service ns/a with `spec: {x: 1}`.
    fn store_with_a() -> Store {
        let mut s = Store::default();
        s.create(
            svc(),
            Some("ns"),
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}}),
        )
        .expect("create");
        s
    }

    #[test]
    fn timestamp_is_rfc3339() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), 20, "{ts}");
        assert!(
            ts.starts_with("20") && ts.ends_with('Z') && ts.as_bytes().get(10) == Some(&b'T'),
            "{ts}"
        );
    }

    #[test]
    fn every_write_bumps_the_global_resource_version() {
        let mut s = Store::default();
        let a = s
            .create(svc(), Some("ns"), json!({"metadata": {"name": "a"}}))
            .expect("create");
        let b = s
            .create(svc(), Some("ns"), json!({"metadata": {"name": "b"}}))
            .expect("create");
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(s.rv(), 2);
        let err = s
            .create(svc(), Some("ns"), json!({"metadata": {"name": "a"}}))
            .expect_err("dup");
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    }

    #[test]
    fn stale_resource_version_conflicts() {
        let mut s = store_with_a();
        let upd = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 2}});
        let new = s
            .update(svc(), Some("ns"), "a", upd.clone(), Part::Main)
            .expect("update");
        assert_eq!(new["metadata"]["generation"], 2);
        let err = s
            .update(svc(), Some("ns"), "a", upd, Part::Main)
            .expect_err("stale");
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }

    #[test]
    fn status_and_main_writes_touch_only_their_part() {
        let mut s = store_with_a();
        let st = json!({"metadata": {"name": "a"}, "spec": {"x": 9}, "status": {"s": 1}});
        let new = s
            .update(svc(), Some("ns"), "a", st, Part::Status)
            .expect("status");
        assert_eq!(new["spec"], json!({"x": 1}));
        assert_eq!(new["status"], json!({"s": 1}));
        assert_eq!(
            new["metadata"]["generation"], 1,
            "status writes do not bump generation"
        );
        let main = json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"s": 2}});
        let new = s
            .update(svc(), Some("ns"), "a", main, Part::Main)
            .expect("main");
        assert_eq!(new["spec"], json!({"x": 2}));
        assert_eq!(new["status"], json!({"s": 1}));
    }

    #[test]
    fn finalizers_delay_deletion_until_removed() {
        let mut s = Store::default();
        s.create(
            svc(),
            Some("ns"),
            json!({"metadata": {"name": "a", "finalizers": ["f"]}}),
        )
        .expect("create");
        let marked = s.delete(svc(), Some("ns"), "a").expect("delete");
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get(svc(), Some("ns"), "a").is_some());
        let cleared = json!({"metadata": {"name": "a", "finalizers": []}});
        s.update(svc(), Some("ns"), "a", cleared, Part::Main)
            .expect("update");
        assert!(s.get(svc(), Some("ns"), "a").is_none());
        let kinds: Vec<_> = s
            .changes_since(svc(), 0)
            .expect("history")
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            kinds,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
    }

    #[test]
    fn compaction_expires_old_resource_versions() {
        let mut s = Store::new(2);
        for name in ["a", "b", "c"] {
            s.create(svc(), Some("ns"), json!({"metadata": {"name": name}}))
                .expect("create");
        }
        assert_eq!(s.changes_since(svc(), 0).expect_err("evicted").code, 410);
        assert_eq!(s.changes_since(svc(), 1).expect("kept").len(), 2);
        s.compact();
        assert_eq!(s.changes_since(svc(), 3).expect_err("compacted").code, 410);
        assert_eq!(s.rv(), 4, "compaction advances the version");
        assert!(s.changes_since(svc(), 4).expect("current").is_empty());
    }

    #[test]
    fn list_scans_only_the_asked_resource_and_namespace() {
        let mut s = Store::default();
        let node = by_kind("v1", "Node").expect("Node");
        for ns in ["a", "b", "c"] {
            for name in ["x", "y"] {
                s.create(svc(), Some(ns), json!({"metadata": {"name": name}}))
                    .expect("create");
            }
        }
        s.create(node, None, json!({"metadata": {"name": "n1"}}))
            .expect("node");
        let none = (LabelSelector::default(), FieldSelector::default());
        let names = |ns: Option<&str>, res| -> Vec<String> {
            s.list(res, ns, &none.0, &none.1, None, None)
                .expect("list")
                .items
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["metadata"]["namespace"].as_str().unwrap_or(""),
                        o["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect()
        };
        assert_eq!(names(Some("b"), svc()), ["b/x", "b/y"]);
        assert_eq!(names(Some("zz"), svc()), Vec::<String>::new());
        assert_eq!(names(None, svc()).len(), 6);
        assert_eq!(names(None, node), ["/n1"]);
        assert_eq!(
            names(Some("b"), node),
            ["/n1"],
            "namespace ignored for cluster scope"
        );
        let page = s
            .list(svc(), Some("b"), &none.0, &none.1, Some(1), None)
            .expect("page");
        let next = s
            .list(
                svc(),
                Some("b"),
                &none.0,
                &none.1,
                Some(1),
                page.continue_token.as_deref(),
            )
            .expect("next page");
        assert_eq!(next.items[0]["metadata"]["name"], "y");
        assert!(next.continue_token.is_none());
    }

    #[test]
    fn list_paginates_with_continue() {
        let mut s = Store::default();
        for name in ["c", "a", "b"] {
            s.create(svc(), Some("ns"), json!({"metadata": {"name": name}}))
                .expect("create");
        }
        let none = (LabelSelector::default(), FieldSelector::default());
        let p1 = s
            .list(svc(), None, &none.0, &none.1, Some(2), None)
            .expect("p1");
        let names: Vec<_> = p1
            .items
            .iter()
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, [json!("a"), json!("b")]);
        assert_eq!(p1.remaining, 1);
        let p2 = s
            .list(
                svc(),
                None,
                &none.0,
                &none.1,
                Some(2),
                p1.continue_token.as_deref(),
            )
            .expect("p2");
        assert_eq!(p2.items.len(), 1);
        assert_eq!(p2.items[0]["metadata"]["name"], "c");
        assert!(p2.continue_token.is_none());
    }
}
