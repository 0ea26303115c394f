//! Patch documents: JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902).
//!
//! Pure functions over `serde_json::Value`. Strategic merge patch and
//! server-side apply are served with [`merge_patch`] (see the module doc of
//! `apiserver` for what that simplification loses).

use serde_json::{Map, Value};

/// Why a JSON Patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("json patch operation {index} ({op} {path}): {reason}")]
pub struct PatchError {
    /// Position of the failing operation in the patch array.
    pub index: usize,
    /// The operation name as given.
    pub op: String,
    /// The operation's `path` as given.
    pub path: String,
    /// What was wrong.
    pub reason: String,
}

/// Largest document a JSON Patch may produce (the API server caps stored
/// objects near 1.5 MiB; this leaves room and stops copy amplification).
pub const MAX_DOCUMENT: usize = 8 * 1024 * 1024;

/// RFC 7386 §2 `MergePatch(Target, Patch)`: objects merge member by member,
/// `null` removes a member, anything else replaces the target.
///
/// Recursion depth is bounded by the patch's nesting, which serde_json
/// already caps at 128 when parsing.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        // RFC 7386 §2: "If Target is not an Object: Target = {}".
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (name, value) in patch {
            if value.is_null() {
                target.remove(name);
            } else {
                merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Server-side apply's one ownership rule the double keeps: a field the
/// same manager applied last time and leaves out now is removed
/// (Kubernetes "Server-Side Apply", "Field management"). Walks objects
/// present in all three documents; lists are atomic (replaced by the merge).
/// Fields set by other writers are not tracked, so they are never removed
/// by omission and never conflict.
pub fn prune_unapplied(target: &mut Value, previous: &Value, applied: &Value) {
    let (Value::Object(target), Value::Object(previous), Value::Object(applied)) =
        (target, previous, applied)
    else {
        return;
    };
    for (name, before) in previous {
        match applied.get(name) {
            None => {
                target.remove(name);
            }
            Some(now) => {
                if let Some(child) = target.get_mut(name) {
                    prune_unapplied(child, before, now);
                }
            }
        }
    }
}

/// Applies an RFC 6902 JSON Patch (`add`, `remove`, `replace`, `move`,
/// `copy`, `test`) to `doc`. On error `doc` is left unchanged (RFC 6902 §5:
/// the whole patch fails).
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError {
            index: 0,
            op: String::new(),
            path: String::new(),
            reason: "a JSON Patch must be an array of operations (RFC 6902 §3)".into(),
        });
    };
    let mut work = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let fail = |reason: String| PatchError {
            index,
            op: name.to_string(),
            path: path.to_string(),
            reason,
        };
        if op.get("path").and_then(Value::as_str).is_none() {
            return Err(fail("missing string member `path` (RFC 6902 §4)".into()));
        }
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| fail("missing member `value` (RFC 6902 §4.1)".into()))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("missing string member `from` (RFC 6902 §4.4)".into()))
        };
        match name {
            "add" => add(&mut work, path, value()?).map_err(fail)?,
            "remove" => {
                remove(&mut work, path).map_err(fail)?;
            }
            "replace" => {
                // RFC 6902 §4.3: "The target location MUST exist".
                remove(&mut work, path).map_err(fail)?;
                add(&mut work, path, value()?).map_err(fail)?;
            }
            "move" => {
                let from = from()?;
                if path.starts_with(from)
                    && path
                        .get(from.len()..)
                        .is_some_and(|rest| rest.starts_with('/'))
                {
                    // RFC 6902 §4.4: "a location cannot be moved into one of its children".
                    return Err(fail(format!("cannot move {from} into its own child")));
                }
                let moved = remove(&mut work, from).map_err(fail)?;
                add(&mut work, path, moved).map_err(fail)?;
            }
            "copy" => {
                let from = from()?;
                let copied = pointer(&work, from).map_err(fail)?.clone();
                add(&mut work, path, copied).map_err(fail)?;
                // Copies can double the document per operation; stop before
                // a small patch exhausts memory.
                let size = serde_json::to_vec(&work).map_or(usize::MAX, |v| v.len());
                if size > MAX_DOCUMENT {
                    return Err(fail(format!(
                        "the patched document would exceed {MAX_DOCUMENT} bytes"
                    )));
                }
            }
            "test" => {
                // RFC 6902 §4.6: equal JSON values; serde_json's `==`
                // compares numbers by value and objects regardless of order.
                let expected = value()?;
                let actual = pointer(&work, path).map_err(fail)?;
                if *actual != expected {
                    return Err(fail(format!(
                        "test failed: value is {actual}, expected {expected}"
                    )));
                }
            }
            other => return Err(fail(format!("unknown operation `{other}` (RFC 6902 §4)"))),
        }
    }
    *doc = work;
    Ok(())
}

/// Splits an RFC 6901 JSON Pointer into unescaped reference tokens.
fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("a JSON Pointer must be empty or start with `/` (RFC 6901 §3)".into());
    };
    // RFC 6901 §4: "first transforming any occurrence of ~1 to /, and then ~0 to ~".
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The array index named by `token`; `len` allowed only when `append`.
fn index(token: &str, len: usize, append: bool) -> Result<usize, String> {
    if append && token == "-" {
        return Ok(len);
    }
    // RFC 6901 §4: array indexes are decimal without leading zeros.
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let i: usize = if valid {
        token
            .parse()
            .map_err(|_| format!("index {token} too large"))?
    } else {
        return Err(format!("`{token}` is not an array index"));
    };
    let limit = if append { len } else { len.saturating_sub(1) };
    if i > limit || (!append && len == 0) {
        return Err(format!("index {i} out of bounds (array length {len})"));
    }
    Ok(i)
}

fn pointer<'a>(doc: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut cur = doc;
    for token in tokens(path)? {
        cur = match cur {
            Value::Object(map) => map
                .get(&token)
                .ok_or_else(|| format!("no member `{token}`"))?,
            Value::Array(items) => {
                let i = index(&token, items.len(), false)?;
                items
                    .get(i)
                    .ok_or_else(|| format!("index {i} out of bounds"))?
            }
            _ => return Err(format!("cannot descend into a scalar at `{token}`")),
        };
    }
    Ok(cur)
}

/// The parent container of `path` and the last token.
fn parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks = tokens(path)?;
    let Some(last) = toks.pop() else {
        return Err("the operation needs a non-root path here".into());
    };
    let mut cur = doc;
    for token in toks {
        cur = match cur {
            Value::Object(map) => map
                .get_mut(&token)
                .ok_or_else(|| format!("no member `{token}`"))?,
            Value::Array(items) => {
                let i = index(&token, items.len(), false)?;
                items
                    .get_mut(i)
                    .ok_or_else(|| format!("index {i} out of bounds"))?
            }
            _ => return Err(format!("cannot descend into a scalar at `{token}`")),
        };
    }
    Ok((cur, last))
}

/// RFC 6902 §4.1 `add`.
fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        // RFC 6902 §4.1: adding at the root replaces the whole document.
        *doc = value;
        return Ok(());
    }
    let (container, last) = parent(doc, path)?;
    match container {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            let i = index(&last, items.len(), true)?;
            items.insert(i, value);
            Ok(())
        }
        _ => Err("the parent of the target is not a container".into()),
    }
}

/// RFC 6902 §4.2 `remove`; returns the removed value.
fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    if path.is_empty() {
        return Ok(std::mem::take(doc));
    }
    let (container, last) = parent(doc, path)?;
    match container {
        Value::Object(map) => map
            .remove(&last)
            .ok_or_else(|| format!("no member `{last}` to remove")),
        Value::Array(items) => {
            let i = index(&last, items.len(), false)?;
            Ok(items.remove(i))
        }
        _ => Err("the parent of the target is not a container".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_appendix_a() {
        // A selection of the RFC 7386 Appendix A test cases.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut doc = target.clone();
            merge_patch(&mut doc, &patch);
            assert_eq!(doc, want, "target {target} patch {patch}");
        }
    }

    #[test]
    fn json_patch_applies_every_operation() {
        let mut doc = json!({"a": {"b": [1, 2]}, "c~/d": 1});
        let patch = json!([
            {"op": "test", "path": "/c~0~1d", "value": 1},
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "replace", "path": "/a/b/1", "value": 10},
            {"op": "remove", "path": "/c~0~1d"},
            {"op": "copy", "from": "/a/b", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
        ]);
        json_patch(&mut doc, &patch).expect("patch applies");
        assert_eq!(
            doc,
            json!({"a": {"b": [0, 10, 2, 3]}, "moved": [0, 10, 2, 3]})
        );
    }

    #[test]
    fn failed_json_patch_leaves_document_unchanged() {
        let original = json!({"a": 1});
        let cases = [
            json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}]),
            json!([{"op": "remove", "path": "/missing"}]),
            json!([{"op": "replace", "path": "/missing", "value": 1}]),
            json!([{"op": "add", "path": "/a/b", "value": 1}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
            json!([{"op": "move", "from": "/a", "path": "/a/x"}]),
            json!({"op": "add"}),
        ];
        for patch in cases {
            let mut doc = original.clone();
            assert!(json_patch(&mut doc, &patch).is_err(), "{patch} must fail");
            assert_eq!(doc, original, "{patch} must not change the document");
        }
    }

    #[test]
    fn apply_removes_only_what_the_manager_dropped() {
        let mut target = json!({"spec": {"a": 1, "b": 2, "other": 3}, "status": {"x": [1]}});
        let previous = json!({"spec": {"a": 1, "b": 2}, "status": {"x": [1]}});
        let applied = json!({"spec": {"a": 5}});
        prune_unapplied(&mut target, &previous, &applied);
        merge_patch(&mut target, &applied);
        assert_eq!(target, json!({"spec": {"a": 5, "other": 3}}));
    }

    #[test]
    fn copy_amplification_is_refused() {
        let mut doc = json!({"a": "x".repeat(1024)});
        let mut ops = vec![json!({"op": "add", "path": "/b", "value": []})];
        // Each pair doubles the document: 2^20 KiB unless refused.
        for _ in 0..20 {
            ops.push(json!({"op": "copy", "from": "", "path": "/b/-"}));
        }
        let err = json_patch(&mut doc, &Value::Array(ops)).expect_err("too large");
        assert!(err.reason.contains("exceed"), "{err}");
    }

    #[test]
    fn array_indexes_are_checked() {
        let mut doc = json!({"a": [1]});
        for bad in ["/a/01", "/a/-1", "/a/2", "/a/99999999999999999999999"] {
            let patch = json!([{"op": "add", "path": bad, "value": 0}]);
            assert!(json_patch(&mut doc, &patch).is_err(), "{bad}");
        }
        let patch = json!([{"op": "remove", "path": "/a/0"}, {"op": "remove", "path": "/a/0"}]);
        assert!(
            json_patch(&mut doc, &patch).is_err(),
            "remove from an empty array"
        );
        assert_eq!(doc, json!({"a": [1]}));
    }
}
