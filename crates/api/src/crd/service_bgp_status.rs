//! `ServiceBGPStatus` (metallb.io/v1beta1): which peers a node announces a Service to.

service_status_kind! {
    /// Spec of a `ServiceBGPStatus` (empty: everything is status).
    #[kube(
        kind = "ServiceBGPStatus",
        plural = "servicebgpstatuses",
        status = "ServiceBGPStatusStatus",
        doc = "ServiceBGPStatus exposes the BGP peers a service is configured to be advertised to, per relevant node.",
        printcolumn(name = "Node", type_ = "string", json_path = ".status.node")
    )]
    pub struct ServiceBGPStatusSpec {}

    /// Status of a `ServiceBGPStatus`.
    pub struct ServiceBGPStatusStatus {
        /// BGPPeer names the Service is announced to from this node.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub peers: Vec<String>,
    }
}
