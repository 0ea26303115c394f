//! `Community` (metallb.io/v1beta1): named aliases for BGP community values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::EmptyStatus;

metallb_spec! {
    /// Spec of a `Community`.
    #[kube(
        version = "v1beta1",
        kind = "Community",
        plural = "communities",
        status = "EmptyStatus",
        doc = "Community is a collection of aliases for communities. Users can define named aliases to be used in the BGPPeer CRD."
    )]
    pub struct CommunitySpec {
        /// The aliases.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub communities: Vec<CommunityAlias>,
    }
}

/// One alias: `name` stands for `value` in `BGPAdvertisement.spec.communities`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CommunityAlias {
    /// The alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `AA:NN` or `large:A:B:C`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
