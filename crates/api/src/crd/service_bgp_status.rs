//! `ServiceBGPStatus` (metallb.io/v1beta1): which peers a node announces a Service to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

metallb_spec! {
    /// Spec of a `ServiceBGPStatus` (empty: everything is status).
    #[kube(
        version = "v1beta1",
        kind = "ServiceBGPStatus",
        plural = "servicebgpstatuses",
        status = "ServiceBGPStatusStatus",
        doc = "ServiceBGPStatus exposes the BGP peers a service is configured to be advertised to, per relevant node.",
        printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
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
    pub struct ServiceBGPStatusSpec {}
}

/// Status of a `ServiceBGPStatus`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBGPStatusStatus {
    /// Node announcing the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Name of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Namespace of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_namespace: Option<String>,
    /// BGPPeer names the Service is announced to from this node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}
