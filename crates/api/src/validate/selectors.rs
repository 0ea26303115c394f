//! Label selector well-formedness, as `metav1.LabelSelectorAsSelector` and
//! `k8s.io/apimachinery/pkg/util/validation` check it, and conversion to [`crate::selector`].

// Config input is untrusted: no panics on any of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;

use super::ObjRef;
use crate::error::{ConfigError, Reason};
use crate::selector::{LabelSelector, Requirement, SelectorOp};

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: a label name or value.
fn is_label_token(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 63
        && b.first().copied().is_some_and(edge)
        && b.last().copied().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// RFC 1123 DNS subdomain: lowercase labels joined by dots, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// RFC 1123 DNS label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().copied().is_some_and(edge)
        && b.last().copied().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a label token.
pub(crate) fn label_key_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return Some("key prefix must be a DNS subdomain");
    }
    if !is_label_token(name) {
        return Some("key name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric");
    }
    None
}

/// A label value: empty or a label token.
pub(crate) fn label_value_ok(v: &str) -> bool {
    v.is_empty() || is_label_token(v)
}

/// Checks and converts a list of selectors at `path` (e.g. `spec.nodeSelectors`): each must be
/// well-formed and no two may be equal (MetalLB rejects duplicates).
pub(crate) fn selectors(
    obj: &ObjRef,
    path: &str,
    list: &[K8sSelector],
    errors: &mut Vec<ConfigError>,
) -> Vec<LabelSelector> {
    let mut out: Vec<LabelSelector> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(sel) = selector(obj, &p, s, errors) {
            if let Some(first) = out.iter().position(|o| *o == sel) {
                errors.push(obj.err(&p, render(s), Reason::DuplicateEntry { first }));
            }
            out.push(sel);
        }
    }
    out
}

fn render(s: &K8sSelector) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Checks and converts one selector; requirements are normalised (values sorted, duplicates
/// rejected) so that equal selectors compare equal.
pub(crate) fn selector(
    obj: &ObjRef,
    path: &str,
    s: &K8sSelector,
    errors: &mut Vec<ConfigError>,
) -> Option<LabelSelector> {
    let before = errors.len();
    let mut out = LabelSelector::default();
    for (k, v) in s.match_labels.iter().flatten() {
        let p = format!("{path}.matchLabels[{k:?}]");
        if let Some(why) = label_key_problem(k) {
            errors.push(obj.err(&p, k, Reason::BadSelector(why.into())));
        }
        if !label_value_ok(v) {
            errors.push(obj.err(
                &p,
                v,
                Reason::BadSelector(
                    "value must be empty or 1-63 alphanumerics, '-', '_' or '.'".into(),
                ),
            ));
        }
        out.match_labels.insert(k.clone(), v.clone());
    }
    for (i, e) in s.match_expressions.iter().flatten().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        if let Some(why) = label_key_problem(&e.key) {
            errors.push(obj.err(format!("{p}.key"), &e.key, Reason::BadSelector(why.into())));
        }
        let op = match e.operator.as_str() {
            "In" => SelectorOp::In,
            "NotIn" => SelectorOp::NotIn,
            "Exists" => SelectorOp::Exists,
            "DoesNotExist" => SelectorOp::DoesNotExist,
            other => {
                errors.push(obj.err(
                    format!("{p}.operator"),
                    other,
                    Reason::NotOneOf {
                        allowed: "In, NotIn, Exists, DoesNotExist",
                    },
                ));
                continue;
            }
        };
        let mut values = e.values.clone().unwrap_or_default();
        let needs_values = matches!(op, SelectorOp::In | SelectorOp::NotIn);
        if needs_values && values.is_empty() {
            errors.push(obj.err(
                format!("{p}.values"),
                "",
                Reason::BadSelector(format!("operator {} needs at least one value", e.operator)),
            ));
        }
        if !needs_values && !values.is_empty() {
            errors.push(obj.err(
                format!("{p}.values"),
                values.join(","),
                Reason::BadSelector(format!("operator {} takes no values", e.operator)),
            ));
        }
        for (j, v) in values.iter().enumerate() {
            if !label_value_ok(v) {
                errors.push(obj.err(
                    format!("{p}.values[{j}]"),
                    v,
                    Reason::BadSelector(
                        "value must be empty or 1-63 alphanumerics, '-', '_' or '.'".into(),
                    ),
                ));
            }
            if let Some(first) = values.iter().take(j).position(|w| w == v) {
                errors.push(obj.err(
                    format!("{p}.values[{j}]"),
                    v,
                    Reason::DuplicateEntry { first },
                ));
            }
        }
        values.sort();
        let req = Requirement {
            key: e.key.clone(),
            op,
            values,
        };
        if let Some(first) = out.match_expressions.iter().position(|r| *r == req) {
            errors.push(obj.err(&p, &e.key, Reason::DuplicateEntry { first }));
        }
        out.match_expressions.push(req);
    }
    (errors.len() == before).then_some(out)
}
