//! Patch documents: JSON Merge Patch (RFC 7386) and JSON Patch (RFC 6902),
//! applied by the `json-patch` crate; this module adds what the double needs
//! on top: whole-patch errors naming the failing operation, a size cap, and
//! server-side apply's pruning.
//!
//! Pure functions over `serde_json::Value`. Strategic merge patch and
//! server-side apply are served with [`merge_patch`] (see the module doc of
//! `apiserver` for what that simplification loses).

use json_patch::PatchOperation;
use serde_json::Value;

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
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
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
    let Value::Array(raw) = patch else {
        return Err(PatchError {
            index: 0,
            op: String::new(),
            path: String::new(),
            reason: "a JSON Patch must be an array of operations (RFC 6902 §3)".into(),
        });
    };
    let fail = |index: usize, reason: String| {
        let member = |name: &str| {
            raw.get(index)
                .and_then(|op| op.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        PatchError {
            index,
            op: member("op"),
            path: member("path"),
            reason,
        }
    };
    let ops = raw
        .iter()
        .enumerate()
        .map(|(i, op)| {
            serde_json::from_value::<PatchOperation>(op.clone())
                .map_err(|e| fail(i, format!("not an RFC 6902 §4 operation: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // One operation at a time on a copy: the size check runs between
    // operations, and `doc` only changes once all of them applied.
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        json_patch::patch_unsafe(&mut work, std::slice::from_ref(op))
            .map_err(|e| fail(i, e.kind.to_string()))?;
        if matches!(op, PatchOperation::Copy(_)) {
            // Copies can double the document per operation; stop before a
            // small patch exhausts memory.
            let size = serde_json::to_vec(&work).map_or(usize::MAX, |v| v.len());
            if size > MAX_DOCUMENT {
                return Err(fail(
                    i,
                    format!("the patched document would exceed {MAX_DOCUMENT} bytes"),
                ));
            }
        }
    }
    *doc = work;
    Ok(())
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
