//! `ServiceL2Status` (metallb.io/v1beta1): which node announces a Service in Layer 2 mode.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

service_status_kind! {
    /// Spec of a `ServiceL2Status` (empty: everything is status).
    #[kube(
        kind = "ServiceL2Status",
        plural = "servicel2statuses",
        status = "ServiceL2StatusStatus",
        doc = "ServiceL2Status reveals the actual traffic status of loadbalancer services in layer2 mode.",
        printcolumn(name = "Allocated Node", type_ = "string", json_path = ".status.node")
    )]
    pub struct ServiceL2StatusSpec {}

    /// Status of a `ServiceL2Status`.
    pub struct ServiceL2StatusStatus {
        /// Interfaces the Service is announced from.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub interfaces: Vec<InterfaceInfo>,
    }
}

/// One announcing interface.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct InterfaceInfo {
    /// Interface name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
