//! MetalLB v0.12 ConfigMap configuration (`data.config` of ConfigMap `config`), and its
//! conversion to the equivalent metallb.io custom resources (`ferrolb-controller convert`).
//!
//! Mapping (the same as MetalLB's own `configmaptocrs` migration tool):
//! - `address-pools[i]` → `IPAddressPool` of the same name (`auto-assign`, `avoid-buggy-ips`);
//!   `protocol: layer2` → an `L2Advertisement` `<pool>-l2` selecting it; `protocol: bgp` → one
//!   `BGPAdvertisement` `<pool>-bgp-<j>` per `bgp-advertisements[j]` (one with defaults when
//!   there are none), selecting it.
//! - `bgp-communities` → one `Community` named `communities` holding every alias; advertisement
//!   communities are copied verbatim (aliases stay aliases; the CRs resolve them the same way).
//! - `peers[i]` → `BGPPeer` v1beta2 `peer-<i+1>`; `node-selectors` → `nodeSelectors`.
//! - `bfd-profiles[i]` → `BFDProfile` of the same name.
//!
//! Unknown keys are errors (v0.12 parsed strictly too), so typos are not silently dropped.

// Config input is untrusted: no panics on any of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::crd::{
    self, BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};
use crate::source::Resources;

/// The whole v0.12 configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LegacyConfig {
    /// BGP peers.
    #[serde(default)]
    pub peers: Vec<LegacyPeer>,
    /// Community aliases.
    #[serde(default)]
    pub bgp_communities: BTreeMap<String, String>,
    /// Address pools.
    #[serde(default)]
    pub address_pools: Vec<LegacyPool>,
    /// BFD profiles.
    #[serde(default)]
    pub bfd_profiles: Vec<LegacyBfdProfile>,
}

/// One v0.12 peer.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LegacyPeer {
    pub my_asn: u32,
    pub peer_asn: u32,
    pub peer_address: String,
    pub source_address: Option<String>,
    pub peer_port: Option<u16>,
    pub hold_time: Option<String>,
    pub keepalive_time: Option<String>,
    pub router_id: Option<String>,
    pub password: Option<String>,
    pub bfd_profile: Option<String>,
    pub ebgp_multihop: Option<bool>,
    #[serde(default)]
    pub node_selectors: Vec<LegacyNodeSelector>,
}

/// One v0.12 node selector.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LegacyNodeSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LegacyExpression>,
}

/// One v0.12 selector expression.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyExpression {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// One v0.12 address pool.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LegacyPool {
    pub name: String,
    pub protocol: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    pub auto_assign: Option<bool>,
    pub avoid_buggy_ips: Option<bool>,
    #[serde(default)]
    pub bgp_advertisements: Vec<LegacyBgpAdvertisement>,
}

/// One v0.12 BGP advertisement of a pool.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LegacyBgpAdvertisement {
    pub aggregation_length: Option<i32>,
    pub aggregation_length_v6: Option<i32>,
    pub localpref: Option<u32>,
    #[serde(default)]
    pub communities: Vec<String>,
}

/// One v0.12 BFD profile.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LegacyBfdProfile {
    pub name: String,
    pub receive_interval: Option<u32>,
    pub transmit_interval: Option<u32>,
    pub detect_multiplier: Option<u32>,
    pub echo_interval: Option<u32>,
    pub echo_mode: Option<bool>,
    pub passive_mode: Option<bool>,
    pub minimum_ttl: Option<u32>,
}

/// Why a legacy configuration cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// Not YAML, or keys/types not those of v0.12.
    #[error("invalid legacy configuration: {0}")]
    Parse(String),
    /// A ConfigMap without a `config` key.
    #[error("ConfigMap {0:?} has no data.config key")]
    NoConfigKey(String),
    /// `protocol` is neither `layer2` nor `bgp`.
    #[error("address-pools[{index}].protocol = {value:?}: must be layer2 or bgp")]
    BadProtocol {
        /// Index of the pool.
        index: usize,
        /// The value.
        value: String,
    },
    /// Output encoding failed.
    #[error("encoding CRs: {0}")]
    Encode(String),
}

/// The namespace MetalLB runs in by default; used when the ConfigMap names none.
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// Reads either a whole ConfigMap manifest or the bare `config` text. Returns the config and
/// the namespace to put the CRs in.
pub fn parse(text: &str) -> Result<(LegacyConfig, String), LegacyError> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| LegacyError::Parse(e.to_string()))?;
    if value.get("kind").and_then(|k| k.as_str()) == Some("ConfigMap") {
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_string();
        let ns = value
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(|n| n.as_str())
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_string();
        let config = value
            .get("data")
            .and_then(|d| d.get("config"))
            .and_then(|c| c.as_str())
            .ok_or(LegacyError::NoConfigKey(name))?;
        let cfg = serde_yaml_ng::from_str(config).map_err(|e| LegacyError::Parse(e.to_string()))?;
        return Ok((cfg, ns));
    }
    let cfg = serde_yaml_ng::from_value(value).map_err(|e| LegacyError::Parse(e.to_string()))?;
    Ok((cfg, DEFAULT_NAMESPACE.to_string()))
}

fn meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        ..Default::default()
    }
}

/// Converts to CRs (in [`Resources`], in the order they are printed).
pub fn convert(cfg: &LegacyConfig, namespace: &str) -> Result<Resources, LegacyError> {
    let mut res = Resources::default();
    if !cfg.bgp_communities.is_empty() {
        res.communities.push(Community {
            metadata: meta("communities", namespace),
            spec: crd::CommunitySpec {
                communities: cfg
                    .bgp_communities
                    .iter()
                    .map(|(name, value)| crd::CommunityAlias {
                        name: Some(name.clone()),
                        value: Some(value.clone()),
                    })
                    .collect(),
            },
            status: None,
        });
    }
    for b in &cfg.bfd_profiles {
        res.bfd_profiles.push(BFDProfile {
            metadata: meta(&b.name, namespace),
            spec: crd::BFDProfileSpec {
                detect_multiplier: b.detect_multiplier,
                echo_interval: b.echo_interval,
                echo_mode: b.echo_mode,
                minimum_ttl: b.minimum_ttl,
                passive_mode: b.passive_mode,
                receive_interval: b.receive_interval,
                transmit_interval: b.transmit_interval,
            },
            status: None,
        });
    }
    for (index, p) in cfg.address_pools.iter().enumerate() {
        res.ip_address_pools.push(IPAddressPool {
            metadata: meta(&p.name, namespace),
            spec: crd::IPAddressPoolSpec {
                addresses: p.addresses.clone(),
                auto_assign: p.auto_assign,
                avoid_buggy_ips: p.avoid_buggy_ips,
                service_allocation: None,
            },
            status: None,
        });
        match p.protocol.as_str() {
            "layer2" => res.l2_advertisements.push(L2Advertisement {
                metadata: meta(&format!("{}-l2", p.name), namespace),
                spec: crd::L2AdvertisementSpec {
                    ip_address_pools: vec![p.name.clone()],
                    ..Default::default()
                },
                status: None,
            }),
            "bgp" => {
                let defaults = [LegacyBgpAdvertisement::default()];
                let advs = if p.bgp_advertisements.is_empty() {
                    &defaults[..]
                } else {
                    &p.bgp_advertisements[..]
                };
                for (j, a) in advs.iter().enumerate() {
                    res.bgp_advertisements.push(BGPAdvertisement {
                        metadata: meta(&format!("{}-bgp-{j}", p.name), namespace),
                        spec: crd::BGPAdvertisementSpec {
                            aggregation_length: a.aggregation_length,
                            aggregation_length_v6: a.aggregation_length_v6,
                            local_pref: a.localpref,
                            communities: a.communities.clone(),
                            ip_address_pools: vec![p.name.clone()],
                            ..Default::default()
                        },
                        status: None,
                    });
                }
            }
            other => {
                return Err(LegacyError::BadProtocol {
                    index,
                    value: other.to_string(),
                })
            }
        }
    }
    for (i, p) in cfg.peers.iter().enumerate() {
        res.bgp_peers.push(BGPPeer {
            metadata: meta(&format!("peer-{}", i + 1), namespace),
            spec: crd::BGPPeerSpec {
                my_asn: p.my_asn,
                peer_asn: Some(p.peer_asn),
                peer_address: Some(p.peer_address.clone()),
                source_address: p.source_address.clone(),
                peer_port: p.peer_port,
                hold_time: p.hold_time.clone(),
                keepalive_time: p.keepalive_time.clone(),
                router_id: p.router_id.clone(),
                password: p.password.clone(),
                bfd_profile: p.bfd_profile.clone(),
                ebgp_multi_hop: p.ebgp_multihop,
                node_selectors: p.node_selectors.iter().map(selector).collect(),
                ..Default::default()
            },
            status: None,
        });
    }
    Ok(res)
}

fn selector(s: &LegacyNodeSelector) -> LabelSelector {
    LabelSelector {
        match_labels: (!s.match_labels.is_empty()).then(|| s.match_labels.clone()),
        match_expressions: (!s.match_expressions.is_empty()).then(|| {
            s.match_expressions
                .iter()
                .map(|e| LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: (!e.values.is_empty()).then(|| e.values.clone()),
                })
                .collect()
        }),
    }
}

/// The CRs of `res` as one multi-document YAML stream: Communities, BFDProfiles, pools,
/// L2 and BGP advertisements, peers.
pub fn to_yaml(res: &Resources) -> Result<String, LegacyError> {
    fn docs<T: Serialize>(items: &[T], out: &mut String) -> Result<(), LegacyError> {
        for item in items {
            out.push_str("---\n");
            out.push_str(
                &serde_yaml_ng::to_string(item).map_err(|e| LegacyError::Encode(e.to_string()))?,
            );
        }
        Ok(())
    }
    let mut out = String::new();
    docs(&res.communities, &mut out)?;
    docs(&res.bfd_profiles, &mut out)?;
    docs(&res.ip_address_pools, &mut out)?;
    docs(&res.l2_advertisements, &mut out)?;
    docs(&res.bgp_advertisements, &mut out)?;
    docs(&res.bgp_peers, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BgpCommunity, PeerAsn};
    use crate::source::files::load_str;
    use crate::validate::validate;

    const CM: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  namespace: lb
  name: config
data:
  config: |
    peers:
    - peer-address: 10.0.0.1
      peer-asn: 64501
      my-asn: 64500
      hold-time: 120s
      router-id: 10.0.0.2
      bfd-profile: slow
      node-selectors:
      - match-labels:
          rack: frontend
        match-expressions:
        - key: network-speed
          operator: NotIn
          values: [slow]
    bgp-communities:
      bar: 64512:1234
    bfd-profiles:
    - name: slow
      receive-interval: 500
    address-pools:
    - name: l2-pool
      protocol: layer2
      addresses:
      - 192.168.1.240-192.168.1.250
    - name: bgp-pool
      protocol: bgp
      auto-assign: false
      avoid-buggy-ips: true
      addresses:
      - 198.51.100.0/24
      bgp-advertisements:
      - aggregation-length: 32
        localpref: 100
        communities: [bar, "1234:2345"]
      - aggregation-length: 24
    - name: plain-bgp
      protocol: bgp
      addresses: ["fc00::/120"]
"#;

    #[test]
    fn converted_configmap_is_equivalent_and_valid() {
        let (cfg, ns) = parse(CM).unwrap();
        assert_eq!(ns, "lb");
        let res = convert(&cfg, &ns).unwrap();
        let yaml = to_yaml(&res).unwrap();
        // The printed CRs load back into the same objects, and validate.
        let back = load_str(&yaml, std::path::Path::new("converted.yaml")).unwrap();
        assert_eq!(back, res);
        let config = validate(&back).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(config.pools.len(), 3);
        assert!(!config.pools["bgp-pool"].auto_assign);
        assert!(config.pools["bgp-pool"].avoid_buggy_ips);
        assert_eq!(
            config.l2_advertisements["l2-pool-l2"]
                .pools
                .iter()
                .collect::<Vec<_>>(),
            ["l2-pool"]
        );
        let adv = &config.bgp_advertisements["bgp-pool-bgp-0"];
        assert_eq!(adv.local_pref, Some(100));
        assert_eq!(
            adv.communities,
            [
                BgpCommunity::Standard(1234 << 16 | 2345),
                BgpCommunity::Standard(64512 << 16 | 1234)
            ]
        );
        assert_eq!(
            config.bgp_advertisements["bgp-pool-bgp-1"].aggregation_length,
            24
        );
        assert_eq!(
            config.bgp_advertisements["plain-bgp-bgp-0"].aggregation_length_v6,
            128
        );
        let peer = &config.bgp_peers["peer-1"];
        assert_eq!(peer.peer_asn, PeerAsn::Fixed(64501));
        assert_eq!(peer.hold_time, Some(std::time::Duration::from_secs(120)));
        assert_eq!(peer.node_selectors[0].match_expressions.len(), 1);
        assert_eq!(peer.bfd_profile.as_deref(), Some("slow"));
    }

    #[test]
    fn bare_config_text_is_accepted() {
        let (cfg, ns) =
            parse("address-pools:\n- {name: a, protocol: layer2, addresses: [10.0.0.0/24]}\n")
                .unwrap();
        assert_eq!(ns, DEFAULT_NAMESPACE);
        assert_eq!(cfg.address_pools.len(), 1);
    }

    #[test]
    fn unknown_keys_and_protocols_are_errors() {
        assert!(matches!(
            parse("adress-pools: []\n"),
            Err(LegacyError::Parse(_))
        ));
        let (cfg, ns) =
            parse("address-pools:\n- {name: a, protocol: ospf, addresses: [10.0.0.0/24]}\n")
                .unwrap();
        assert!(matches!(
            convert(&cfg, &ns),
            Err(LegacyError::BadProtocol { index: 0, .. })
        ));
        assert!(matches!(
            parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n"),
            Err(LegacyError::NoConfigKey(_))
        ));
    }
}
