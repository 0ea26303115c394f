//! Minimal discovery documents: `/version`, `/apis`, and the resource
//! lists of each group version, generated from the resource table. Enough
//! for `kube::discovery` to resolve a kind; no aggregated discovery (v2).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::resources::RESOURCES;
use super::status::ApiError;

/// 404 for a path the double does not serve.
pub(super) fn no_such_path() -> ApiError {
    ApiError::new(404, "the server could not find the requested resource")
}

pub(super) fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-ferrolb-apiserver-double",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "none",
        "compiler": "none",
        "platform": "linux/amd64",
    })
}

pub(super) fn group_list() -> Value {
    let groups: BTreeSet<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|group| {
            let versions: BTreeSet<&str> = RESOURCES
                .iter()
                .filter(|r| r.group == group)
                .flat_map(|r| r.versions.iter().copied())
                .collect();
            let versions: Vec<Value> = versions
                .into_iter()
                .rev()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            let preferred = versions.first().cloned().unwrap_or(Value::Null);
            json!({"name": group, "versions": versions, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(super) fn resource_list(group: &str, version: &str) -> Result<Value, ApiError> {
    let verbs = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let mut entries = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.versions.contains(&version))
    {
        entries.push(json!({
            "name": r.plural,
            "singularName": r.kind.to_ascii_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        }));
        if r.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if entries.is_empty() {
        return Err(no_such_path());
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}),
    )
}
