//! `ServiceL2Status` (metallb.io/v1beta1): which node announces a Service in Layer 2 mode.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

metallb_spec! {
    /// Spec of a `ServiceL2Status` (empty: everything is status).
    #[kube(
        version = "v1beta1",
        kind = "ServiceL2Status",
        plural = "servicel2statuses",
        status = "ServiceL2StatusStatus",
        doc = "ServiceL2Status reveals the actual traffic status of loadbalancer services in layer2 mode.",
        printcolumn(name = "Allocated Node", type_ = "string", json_path = ".status.node"),
        printcolumn(
            name = "Service Name",
            type_ = "string",
            json_path = ".status.serviceName"
        ),
        printcolumn(
            name = "Service Namespace",
            type_ = "string",
            json_path = ".status.serviceNamespace"
        )
    )]
    pub struct ServiceL2StatusSpec {}
}

/// Status of a `ServiceL2Status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceL2StatusStatus {
    /// Node announcing the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Name of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Namespace of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_namespace: Option<String>,
    /// Interfaces the Service is announced from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceInfo>,
}

/// One announcing interface.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct InterfaceInfo {
    /// Interface name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
