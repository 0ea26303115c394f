//! Builders for the announcement tests: small, valid config objects and cluster objects with
//! MetalLB's defaults, so each table row states only what it is about.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_api::model::{
    AddressRange, BgpAdvertisement, BgpPeer, Config, L2Advertisement, PeerAsn, Pool,
};
use ferrolb_api::selector::{LabelSelector, Labels};
use ferrolb_speaker::announce::input::{
    Cluster, Endpoint, EndpointSlice, Node, Service, ServiceKey, SliceKey, TrafficPolicy,
};
use ipnet::IpNet;

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: Vec::new(),
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP literal")
}

pub fn net(s: &str) -> IpNet {
    s.parse().expect("test prefix literal")
}

/// A pool covering one CIDR.
pub fn pool(name: &str, cidr: &str) -> Pool {
    let n = net(cidr);
    Pool {
        name: name.into(),
        labels: Labels::new(),
        ranges: vec![AddressRange {
            start: n.network(),
            end: n.broadcast(),
            cidr_len: Some(n.prefix_len()),
        }],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    }
}

/// An eBGP peer (ASN 64500 -> `peer_asn`) on every node.
pub fn peer(name: &str, address: &str, peer_asn: u32) -> BgpPeer {
    BgpPeer {
        name: name.into(),
        my_asn: 64500,
        local_asn: None,
        peer_asn: PeerAsn::Fixed(peer_asn),
        peer_address: ip(address),
        peer_port: 179,
        source_address: None,
        router_id: None,
        hold_time: None,
        keepalive_time: None,
        connect_time: None,
        ebgp_multihop: false,
        password: None,
        bfd_profile: None,
        bfd: None,
        enable_graceful_restart: false,
        node_selectors: Vec::new(),
        vrf: None,
        interface: None,
        disable_mp: false,
        dual_stack_address_family: false,
    }
}

/// A BGPAdvertisement of `pools` with MetalLB's defaults (host routes, all peers, all nodes).
pub fn bgp_adv(name: &str, pools: &[&str]) -> BgpAdvertisement {
    BgpAdvertisement {
        name: name.into(),
        pools: pools.iter().map(|p| p.to_string()).collect(),
        aggregation_length: 32,
        aggregation_length_v6: 128,
        local_pref: None,
        communities: Vec::new(),
        peers: BTreeSet::new(),
        node_selectors: Vec::new(),
        service_selectors: Vec::new(),
        weighted_ecmp: None,
    }
}

pub fn l2_adv(name: &str, pools: &[&str]) -> L2Advertisement {
    L2Advertisement {
        name: name.into(),
        pools: pools.iter().map(|p| p.to_string()).collect(),
        node_selectors: Vec::new(),
        interfaces: Vec::new(),
        service_selectors: Vec::new(),
    }
}

pub fn config(
    pools: Vec<Pool>,
    peers: Vec<BgpPeer>,
    bgp_ads: Vec<BgpAdvertisement>,
    l2_ads: Vec<L2Advertisement>,
) -> Config {
    Config {
        pools: pools.into_iter().map(|p| (p.name.clone(), p)).collect(),
        bgp_peers: peers.into_iter().map(|p| (p.name.clone(), p)).collect(),
        bgp_advertisements: bgp_ads.into_iter().map(|a| (a.name.clone(), a)).collect(),
        l2_advertisements: l2_ads.into_iter().map(|a| (a.name.clone(), a)).collect(),
        bfd_profiles: BTreeMap::new(),
    }
}

/// A LoadBalancer Service with `externalTrafficPolicy: Cluster` in namespace `ns`.
pub fn svc(name: &str, ips: &[&str]) -> Service {
    Service {
        key: ServiceKey::new("ns", name),
        labels: Labels::new(),
        is_load_balancer: true,
        load_balancer_class: None,
        traffic_policy: TrafficPolicy::Cluster,
        ips: ips.iter().map(|s| ip(s)).collect(),
    }
}

pub fn key(name: &str) -> ServiceKey {
    ServiceKey::new("ns", name)
}

/// A ready endpoint on `node`.
pub fn ep(address: &str, node: &str) -> Endpoint {
    Endpoint {
        addresses: vec![address.into()],
        node_name: Some(node.into()),
        ready: Some(true),
        serving: Some(true),
        terminating: Some(false),
    }
}

/// A slice `<service>-<suffix>` of Service `service` in namespace `ns`.
pub fn slice(service: &str, suffix: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        key: SliceKey {
            namespace: "ns".into(),
            name: format!("{service}-{suffix}").into(),
        },
        service: key(service),
        endpoints,
    }
}

pub fn node(name: &str, pairs: &[(&str, &str)]) -> Node {
    Node::new(name, labels(pairs))
}

pub fn cluster(services: Vec<Service>, slices: Vec<EndpointSlice>, nodes: Vec<Node>) -> Cluster {
    Cluster::from_objects(services, slices, nodes)
}
