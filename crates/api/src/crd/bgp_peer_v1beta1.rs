//! `BGPPeer` metallb.io/v1beta1: the older, still-served version. FerroLB reads such objects
//! and converts them to v1beta2 ([`BGPPeer::to_v1beta2`]); the fields map one to one, and the
//! node selectors (a v1beta1-specific type whose expressions always carry values) become
//! ordinary label selectors.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EmptyStatus;

metallb_spec! {
    /// Spec of a v1beta1 `BGPPeer`.
    #[kube(
        version = "v1beta1",
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
        pub my_asn: u32,
        /// AS number to expect from the remote end of the session.
        #[serde(rename = "peerASN")]
        pub peer_asn: u32,
        /// Address to dial when establishing the session.
        pub peer_address: String,
        /// Source address to use when establishing the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_address: Option<String>,
        /// Port to dial when establishing the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(max = 16384))]
        pub peer_port: Option<u16>,
        /// Requested BGP hold time (Go duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hold_time: Option<String>,
        /// Requested BGP keepalive time (Go duration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub keepalive_time: Option<String>,
        /// BGP router ID to advertise to the peer.
        #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
        pub router_id: Option<String>,
        /// Only connect to this peer on nodes that match one of these selectors.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub node_selectors: Vec<NodeSelector>,
        /// TCP MD5 password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password: Option<String>,
        /// Name of the BFDProfile to use for this session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bfd_profile: Option<String>,
        /// The peer is multiple hops away.
        #[serde(
            default,
            rename = "ebgpMultiHop",
            skip_serializing_if = "Option::is_none"
        )]
        pub ebgp_multi_hop: Option<bool>,
    }
}

/// v1beta1 node selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector {
    /// Labels that must match exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must all match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<MatchExpression>,
}

/// v1beta1 selector requirement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MatchExpression {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values (at least one in the v1beta1 schema).
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

impl BGPPeer {
    /// Converts to the stored version, v1beta2. Lossless: every v1beta1 field exists in v1beta2.
    pub fn to_v1beta2(&self) -> super::BGPPeer {
        let s = &self.spec;
        let spec = super::BGPPeerSpec {
            my_asn: s.my_asn,
            // v1beta1 has no dynamicASN, so peerASN 0 stays a (rejected) 0, as in MetalLB.
            peer_asn: Some(s.peer_asn),
            peer_address: Some(s.peer_address.clone()),
            source_address: s.source_address.clone(),
            // v1beta1 allowed 0 for "unset"; v1beta2 has minimum 1 and default 179.
            peer_port: s.peer_port.filter(|p| *p != 0),
            hold_time: s.hold_time.clone(),
            keepalive_time: s.keepalive_time.clone(),
            router_id: s.router_id.clone(),
            node_selectors: s
                .node_selectors
                .iter()
                .map(NodeSelector::to_label_selector)
                .collect(),
            password: s.password.clone(),
            bfd_profile: s.bfd_profile.clone(),
            ebgp_multi_hop: s.ebgp_multi_hop,
            ..Default::default()
        };
        let metadata = ObjectMeta {
            managed_fields: None,
            ..self.metadata.clone()
        };
        super::BGPPeer {
            metadata,
            spec,
            status: None,
        }
    }
}

impl NodeSelector {
    /// The equivalent `metav1.LabelSelector`.
    pub fn to_label_selector(&self) -> LabelSelector {
        LabelSelector {
            match_labels: (!self.match_labels.is_empty()).then(|| self.match_labels.clone()),
            match_expressions: (!self.match_expressions.is_empty()).then(|| {
                self.match_expressions
                    .iter()
                    .map(|e| LabelSelectorRequirement {
                        key: e.key.clone(),
                        operator: e.operator.clone(),
                        values: Some(e.values.clone()),
                    })
                    .collect()
            }),
        }
    }
}
