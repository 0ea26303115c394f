//! `BGPAdvertisement` (metallb.io/v1beta1): announce pools' addresses to BGP peers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::EmptyStatus;

metallb_spec! {
    /// Spec of a `BGPAdvertisement`.
    #[kube(
        version = "v1beta1",
        kind = "BGPAdvertisement",
        status = "EmptyStatus",
        doc = "BGPAdvertisement allows to advertise the IPs coming from the selected IPAddressPools via BGP.",
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
        printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
        printcolumn(
            name = "Node Selectors",
            type_ = "string",
            json_path = ".spec.nodeSelectors",
            priority = 10
        )
    )]
    #[serde(rename_all = "camelCase")]
    pub struct BGPAdvertisementSpec {
        /// Aggregation prefix length for IPv4 (default 32).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = 32), range(min = 1))]
        pub aggregation_length: Option<i32>,
        /// Aggregation prefix length for IPv6 (default 128).
        #[serde(
            default,
            rename = "aggregationLengthV6",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(extend("default" = 128))]
        pub aggregation_length_v6: Option<i32>,
        /// BGP LOCAL_PREF attribute; only sent to iBGP peers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub local_pref: Option<u32>,
        /// Communities: `AA:NN`, `large:A:B:C`, or the name of a Community alias.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub communities: Vec<String>,
        /// Pools announced by this advertisement, by name. Both this and the selectors empty = all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ip_address_pools: Vec<String>,
        /// Pools announced by this advertisement, by label.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ip_address_pool_selectors: Vec<LabelSelector>,
        /// Nodes that announce; empty = all nodes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub node_selectors: Vec<LabelSelector>,
        /// BGPPeer names to announce to; empty = all peers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub peers: Vec<String>,
        /// Services announced; empty = all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub service_selectors: Vec<LabelSelector>,
    }
}
