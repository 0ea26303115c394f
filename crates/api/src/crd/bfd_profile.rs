//! `BFDProfile` (metallb.io/v1beta1): BFD session parameters referenced by BGPPeers.

use super::EmptyStatus;

metallb_spec! {
    /// Spec of a `BFDProfile`. Ranges are those of MetalLB's schema.
    #[kube(
        version = "v1beta1",
        kind = "BFDProfile",
        status = "EmptyStatus",
        doc = "BFDProfile represents the settings of the bfd session that can be optionally associated with a BGP session.",
        printcolumn(
            name = "Passive Mode",
            type_ = "boolean",
            json_path = ".spec.passiveMode"
        ),
        printcolumn(
            name = "Transmit Interval",
            type_ = "integer",
            json_path = ".spec.transmitInterval"
        ),
        printcolumn(
            name = "Receive Interval",
            type_ = "integer",
            json_path = ".spec.receiveInterval"
        ),
        printcolumn(
            name = "Multiplier",
            type_ = "integer",
            json_path = ".spec.detectMultiplier"
        )
    )]
    #[serde(rename_all = "camelCase")]
    pub struct BFDProfileSpec {
        /// Detection time multiplier, 2..=255.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 2, max = 255))]
        pub detect_multiplier: Option<u32>,
        /// Echo transmission interval in ms, 10..=60000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 10, max = 60000))]
        pub echo_interval: Option<u32>,
        /// Enables echo transmission mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub echo_mode: Option<bool>,
        /// Minimum expected TTL of incoming BFD control packets, 1..=254.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 254))]
        pub minimum_ttl: Option<u32>,
        /// Only answer, never start, sessions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub passive_mode: Option<bool>,
        /// Minimum receive interval in ms, 10..=60000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 10, max = 60000))]
        pub receive_interval: Option<u32>,
        /// Minimum transmission interval in ms, 10..=60000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 10, max = 60000))]
        pub transmit_interval: Option<u32>,
    }
}
