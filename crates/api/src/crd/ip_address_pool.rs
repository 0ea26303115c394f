//! `IPAddressPool` (metallb.io/v1beta1): a pool of addresses handed to LoadBalancer Services.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

metallb_spec! {
    /// Spec of an `IPAddressPool`.
    #[kube(
        version = "v1beta1",
        kind = "IPAddressPool",
        status = "IPAddressPoolStatus",
        doc = "IPAddressPool represents a pool of IP addresses that can be allocated to LoadBalancer services.",
        printcolumn(
            name = "Auto Assign",
            type_ = "boolean",
            json_path = ".spec.autoAssign"
        ),
        printcolumn(
            name = "Avoid Buggy IPs",
            type_ = "boolean",
            json_path = ".spec.avoidBuggyIPs"
        ),
        printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses")
    )]
    #[serde(rename_all = "camelCase")]
    pub struct IPAddressPoolSpec {
        /// A list of IP address ranges over which FerroLB has authority. Each range is either a CIDR
        /// prefix or an explicit `start-end` range of IPs.
        pub addresses: Vec<String>,
        /// AutoAssign flag used to prevent automatic allocation from this pool.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = true))]
        pub auto_assign: Option<bool>,
        /// AvoidBuggyIPs prevents addresses ending with .0 and .255 from being used by a pool.
        #[serde(
            default,
            rename = "avoidBuggyIPs",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(extend("default" = false))]
        pub avoid_buggy_ips: Option<bool>,
        /// Restricts the pool to some namespaces and/or services, with a priority.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_allocation: Option<ServiceAllocation>,
    }
}

/// `spec.serviceAllocation` of an `IPAddressPool`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Priority of this pool; the lowest value wins among matching pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Label selectors selecting namespaces, an alternative to `namespaces`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Label selectors selecting the Services that may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

/// Status of an `IPAddressPool`: address usage counters written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct IPAddressPoolStatus {
    /// Number of assigned IPv4 addresses.
    #[serde(rename = "assignedIPv4")]
    pub assigned_ipv4: i64,
    /// Number of assigned IPv6 addresses.
    #[serde(rename = "assignedIPv6")]
    pub assigned_ipv6: i64,
    /// Number of IPv4 addresses still available.
    #[serde(rename = "availableIPv4")]
    pub available_ipv4: i64,
    /// Number of IPv6 addresses still available.
    #[serde(rename = "availableIPv6")]
    pub available_ipv6: i64,
}
