//! `BGPPeer` (metallb.io/v1beta2, the stored version): a BGP session to establish from the
//! selected nodes. Objects of the older v1beta1 are read by [`super::bgp_peer_v1beta1`] and
//! converted to this version.

use k8s_openapi::api::core::v1::SecretReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::EmptyStatus;

metallb_spec! {
    /// Spec of a `BGPPeer`. Timers are Go duration strings (`90s`, `1m30s`), parsed by validation
    /// so that a bad value becomes a [`crate::ConfigError`] naming the field, not a decode failure.
    #[kube(
        version = "v1beta2",
        kind = "BGPPeer",
        status = "EmptyStatus",
        doc = "BGPPeer is the Schema for the peers API.",
        printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
        printcolumn(name = "ASN", type_ = "string", json_path = ".spec.peerASN"),
        printcolumn(name = "BFD Profile", type_ = "string", json_path = ".spec.bfdProfile"),
        printcolumn(
            name = "Multi Hops",
            type_ = "string",
            json_path = ".spec.ebgpMultiHop"
        )
    )]
    #[serde(rename_all = "camelCase")]
    pub struct BGPPeerSpec {
        /// AS number to use for the local end of the session.
        #[serde(rename = "myASN")]
        #[schemars(range(max = 4294967295u32))]
        pub my_asn: u32,
        /// AS number to expect from the remote end; exclusive with `dynamicASN`.
        #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
        pub peer_asn: Option<u32>,
        /// `internal` or `external`: learn the peer's AS from its OPEN; exclusive with `peerASN`.
        #[serde(
            default,
            rename = "dynamicASN",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(extend("enum" = ["internal", "external"]))]
        pub dynamic_asn: Option<String>,
        /// Local AS advertised to this peer instead of `myASN` (FRR `local-as`; FerroLB's native
        /// BGP rejects it at validation).
        #[serde(default, rename = "localASN", skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        pub local_asn: Option<u32>,
        /// Address to dial when establishing the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub peer_address: Option<String>,
        /// Source address to use when establishing the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_address: Option<String>,
        /// Port to dial when establishing the session (default 179).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = 179), range(min = 1, max = 16384))]
        pub peer_port: Option<u16>,
        /// Interface for unnumbered BGP peering; exclusive with `peerAddress`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interface: Option<String>,
        /// Requested BGP hold time, per RFC 4271 (Go duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hold_time: Option<String>,
        /// Requested BGP keepalive time, per RFC 4271 (Go duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub keepalive_time: Option<String>,
        /// Time between connection attempts (Go duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connect_time: Option<String>,
        /// BGP router ID to advertise to the peer.
        #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
        pub router_id: Option<String>,
        /// Only connect to this peer on nodes that match one of these selectors.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub node_selectors: Vec<LabelSelector>,
        /// TCP MD5 password (RFC 2385); exclusive with `passwordSecret`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password: Option<String>,
        /// Secret of type `kubernetes.io/basic-auth` holding the password under key `password`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password_secret: Option<SecretReference>,
        /// Name of the BFDProfile to use for this session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bfd_profile: Option<String>,
        /// Enable graceful restart (RFC 4724).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enable_graceful_restart: Option<bool>,
        /// The peer is multiple hops away.
        #[serde(
            default,
            rename = "ebgpMultiHop",
            skip_serializing_if = "Option::is_none"
        )]
        pub ebgp_multi_hop: Option<bool>,
        /// Host VRF to peer from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub vrf: Option<String>,
        /// Deprecated in favour of `dualStackAddressFamily`: one session per address family.
        #[serde(default, rename = "disableMP", skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = false))]
        pub disable_mp: Option<bool>,
        /// Exchange both address families over this session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = false))]
        pub dual_stack_address_family: Option<bool>,
    }
}

/// `spec.dynamicASN` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicASNMode {
    /// `internal`: the peer must be in our AS.
    Internal,
    /// `external`: the peer must be in another AS.
    External,
}

impl DynamicASNMode {
    /// Parses the CRD spelling (`internal` / `external`, case-sensitive as in MetalLB).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "internal" => Some(Self::Internal),
            "external" => Some(Self::External),
            _ => None,
        }
    }
}
