//! `metav1.Status` failure bodies, as the API server sends them with every
//! error response (k8s.io/apimachinery `pkg/api/errors`).

use serde_json::{json, Value};

/// An API error: HTTP code, `reason` (a `metav1.StatusReason`) and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`, `Conflict`.
    pub reason: &'static str,
    /// Human-readable `Status.message`.
    pub message: String,
    /// `Status.details`: (name, group, kind) of the object concerned.
    pub details: Option<(String, String, String)>,
}

impl ApiError {
    /// An error with the reason the API server uses for `code`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason_for(code),
            message: message.into(),
            details: None,
        }
    }

    /// 404 `NotFound` for `plural` `name` (message as the API server words it).
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let what = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        Self::new(404, format!("{what} \"{name}\" not found")).with_details(name, group, plural)
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let what = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        Self {
            reason: "AlreadyExists",
            ..Self::new(409, format!("{what} \"{name}\" already exists"))
        }
        .with_details(name, group, plural)
    }

    /// 409 `Conflict` for a stale `metadata.resourceVersion`.
    pub fn conflict(group: &str, plural: &str, name: &str, sent: &str, current: u64) -> Self {
        let what = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        Self::new(
            409,
            format!(
                "Operation cannot be fulfilled on {what} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again \
                 (sent resourceVersion {sent}, current {current})"
            ),
        )
        .with_details(name, group, plural)
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 422 `Invalid`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, message)
    }

    /// 410 `Expired`: a watch or list asked for a resourceVersion older than
    /// the retained history.
    pub fn expired(rv: u64, oldest: u64) -> Self {
        Self::new(410, format!("too old resource version: {rv} ({oldest})"))
    }

    fn with_details(mut self, name: &str, group: &str, kind: &str) -> Self {
        self.details = Some((name.to_string(), group.to_string(), kind.to_string()));
        self
    }

    /// The `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some((name, group, kind)), Some(obj)) = (&self.details, status.as_object_mut()) {
            obj.insert(
                "details".into(),
                json!({"name": name, "group": group, "kind": kind}),
            );
        }
        status
    }
}

/// The `metav1.StatusReason` the API server pairs with an HTTP code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}
