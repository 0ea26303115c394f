//! `ConfigurationState` (metallb.io/v1beta1): status-only object in which each daemon reports
//! whether the configuration it read was valid — the cluster-visible side of
//! [`crate::ConfigState`]. Labelled `metallb.io/component-type: controller|speaker` and, for
//! speakers, `metallb.io/node-name`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label naming the reporting component (`controller` or `speaker`).
pub const COMPONENT_TYPE_LABEL: &str = "metallb.io/component-type";
/// Label naming the reporting speaker's node.
pub const NODE_NAME_LABEL: &str = "metallb.io/node-name";

/// A `ConfigurationState` has no spec: everything is status (`no_spec` puts these
/// (absent) fields at the top level, so the schema has only `status`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ConfigurationState",
    namespaced,
    no_spec,
    status = "ConfigurationStateStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "ConfigurationState is a status-only CRD that reports configuration validation results.",
    printcolumn(name = "Result", type_ = "string", json_path = ".status.result"),
    printcolumn(
        name = "ErrorSummary",
        type_ = "string",
        json_path = ".status.errorSummary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct ConfigurationStateFields {}

/// Status of a `ConfigurationState`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// `Valid`, `Invalid` or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Valid", "Invalid", "Unknown"]))]
    pub result: Option<String>,
    /// The errors, one per line, when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// Standard conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl ConfigurationStateStatus {
    /// The status reporting `state`: `Valid`, or `Invalid` with every error on its own line.
    pub fn from_state(state: &crate::ConfigState) -> Self {
        if state.is_stale() {
            Self {
                result: Some("Invalid".into()),
                error_summary: Some(
                    state
                        .errors()
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                conditions: Vec::new(),
            }
        } else if state.config().is_some() {
            Self {
                result: Some("Valid".into()),
                ..Self::default()
            }
        } else {
            Self {
                result: Some("Unknown".into()),
                ..Self::default()
            }
        }
    }
}
