//! `L2Advertisement` (metallb.io/v1beta1): announce pools' addresses with ARP/NDP.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EmptyStatus;

metallb_spec! {
    /// Spec of an `L2Advertisement`.
    #[kube(
        version = "v1beta1",
        kind = "L2Advertisement",
        status = "EmptyStatus",
        doc = "L2Advertisement allows to advertise the LoadBalancer IPs provided by the selected pools via L2.",
        printcolumn(
            name = "IPAddressPools",
            type_ = "string",
            json_path = ".spec.ipAddressPools"
        ),
        printcolumn(
            name = "IPAddressPool Selectors",
            type_ = "string",
            json_path = ".spec.ipAddressPoolSelectors",
            priority = 10
        ),
        printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
        printcolumn(
            name = "Node Selectors",
            type_ = "string",
            json_path = ".spec.nodeSelectors",
            priority = 10
        )
    )]
    #[serde(rename_all = "camelCase")]
    pub struct L2AdvertisementSpec {
        /// Pools announced by this advertisement, by name. Both this and the selectors empty = all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ip_address_pools: Vec<String>,
        /// Pools announced by this advertisement, by label.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ip_address_pool_selectors: Vec<LabelSelector>,
        /// Nodes that may announce; empty = all nodes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub node_selectors: Vec<LabelSelector>,
        /// Weighted node preferences for the announcing-node election.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub preferred_node_selectors: Vec<PreferredNodeSelector>,
        /// Services announced; empty = all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub service_selectors: Vec<LabelSelector>,
        /// Interfaces to announce from; empty = every interface.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub interfaces: Vec<String>,
    }
}

/// One entry of `spec.preferredNodeSelectors`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PreferredNodeSelector {
    /// Nodes this preference applies to.
    pub preference: LabelSelector,
    /// Weight in 1..=100.
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
}
