//! Plain inputs of the announcement computation: what the speaker knows about Services, their
//! endpoints and the Nodes, reduced to the fields the MetalLB rules read.
//!
//! The daemon fills a [`Cluster`] from watches (Kubernetes mode) or from YAML files (standalone
//! mode) through `announce::from_k8s`; tests build the structs directly. Every collection is a
//! `BTreeMap` keyed by object identity, so upserting the same objects in any order gives the same
//! `Cluster` and therefore the same result.

// Inputs come from users and the API server: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_api::selector::Labels;
/// Names and addresses are [`SmolStr`]s: up to 23 bytes (nearly every Kubernetes name, any IPv4
/// address) inline without a heap allocation, longer ones shared on clone. At 10k Services the
/// reduced inputs, the cluster built from them and the reports held ~15 small `String`s per
/// Service, each a separate heap chunk (docs/speaker.md, "10k VIPs").
pub use smol_str::SmolStr;

/// `node.kubernetes.io/exclude-from-external-load-balancers`: MetalLB (`IsNodeExcludedFromBalancers`)
/// skips a node carrying this label, whatever its value, unless run with `--ignore-exclude-lb`.
pub const LABEL_EXCLUDE_FROM_LB: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// `namespace/name` of a Service, shared with the controller and the allocator.
pub use ferrolb_api::ServiceKey;

/// `spec.externalTrafficPolicy` of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TrafficPolicy {
    /// Any node may receive traffic; kube-proxy forwards it to an endpoint anywhere. The default.
    #[default]
    Cluster,
    /// Only nodes with a local endpoint may receive traffic (client source IP preserved).
    Local,
}

/// The fields of a Service the speaker reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    /// `metadata.labels`, for `serviceSelectors`.
    pub labels: Labels,
    /// `spec.type == LoadBalancer`. Other Services are never announced, even with an IP.
    pub is_load_balancer: bool,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<SmolStr>,
    pub traffic_policy: TrafficPolicy,
    /// `status.loadBalancer.ingress[*].ip` in status order, as the controller wrote them.
    pub ips: Vec<IpAddr>,
}

/// One endpoint of an EndpointSlice (`discovery.k8s.io/v1`).
///
/// Conditions keep Kubernetes' tri-state: `None` is "unknown", which consumers should read as
/// ready (API doc of `EndpointConditions.ready`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Endpoint {
    /// `addresses`: IPs or, for FQDN slices, names. Used as endpoint identity across slices.
    pub addresses: Vec<SmolStr>,
    /// `nodeName`; an endpoint without one counts only for `externalTrafficPolicy: Cluster`.
    pub node_name: Option<SmolStr>,
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

impl Endpoint {
    /// Whether this endpoint makes its node eligible to announce: ready (unknown counts as
    /// ready), or serving and not terminating.
    ///
    /// The speaker issue asks for "ready (or serving, not terminating)". This is stricter than
    /// MetalLB's `EndpointCanServe`, which also keeps a terminating-but-serving endpoint: a node
    /// whose only pod is shutting down stops attracting new flows at once, and routers move
    /// them to nodes with live pods instead of a pod that is about to go away.
    pub fn can_serve(&self) -> bool {
        let terminating = self.terminating == Some(true);
        self.ready != Some(false) || (self.serving == Some(true) && !terminating)
    }
}

impl Endpoint {
    /// Whether this endpoint counts towards its node's weight (weighted ECMP): it can serve
    /// ([`Self::can_serve`]) and is not terminating. A pod shutting down gets no new share of
    /// the traffic, even while it still serves the flows it has.
    pub fn counts_for_weight(&self) -> bool {
        self.can_serve() && self.terminating != Some(true)
    }
}

/// `namespace/name` of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SliceKey {
    pub namespace: SmolStr,
    pub name: SmolStr,
}

/// The fields of an EndpointSlice the speaker reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSlice {
    pub key: SliceKey,
    /// From the `kubernetes.io/service-name` label; the slice's namespace is the Service's.
    pub service: ServiceKey,
    pub endpoints: Vec<Endpoint>,
}

/// The fields of a Node the speaker reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: SmolStr,
    /// `metadata.labels`, for `nodeSelectors` and [`LABEL_EXCLUDE_FROM_LB`].
    pub labels: Labels,
    /// The `Ready` condition: `Some(true)` for status True, `Some(false)` for False or Unknown,
    /// `None` when the Node reports no such condition (a hand-written standalone Node). Read
    /// but, as in MetalLB, not used to decide who announces.
    pub ready: Option<bool>,
    /// `spec.unschedulable` (cordoned). Read but not a reason to withdraw: a cordoned node keeps
    /// announcing, as in MetalLB (see [`crate::announce::node_gate`]).
    pub unschedulable: bool,
    /// The `NetworkUnavailable` condition is True. MetalLB announces nothing from such a node.
    pub network_unavailable: bool,
    /// `status.addresses` of type `InternalIP`, sorted.
    pub internal_addresses: Vec<IpAddr>,
    /// The annotation `ferrolb.io/drain: "true"` or the cluster autoscaler's
    /// `ToBeDeletedByClusterAutoscaler` taint: drain the node (see [`crate::announce::drain`];
    /// the exclusion label is a drain signal too, read from `labels`).
    pub drain_requested: bool,
}

impl Node {
    /// A Node with just a name and labels, ready and available; handy for standalone mode.
    pub fn new(name: impl Into<SmolStr>, labels: Labels) -> Self {
        Self {
            name: name.into(),
            labels,
            ready: Some(true),
            unschedulable: false,
            network_unavailable: false,
            internal_addresses: Vec::new(),
            drain_requested: false,
        }
    }

    /// Whether the node carries [`LABEL_EXCLUDE_FROM_LB`] (any value, as MetalLB checks).
    pub fn excluded_from_load_balancers(&self) -> bool {
        self.labels.contains_key(LABEL_EXCLUDE_FROM_LB)
    }
}

/// Everything the speaker knows about the cluster, keyed for deterministic iteration.
///
/// The daemon keeps one `Cluster` and applies watch events with the `upsert_*`/`remove_*`
/// methods; a lost watch changes nothing here (only observed deletes remove objects).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cluster {
    pub services: BTreeMap<ServiceKey, Service>,
    pub endpoint_slices: BTreeMap<SliceKey, EndpointSlice>,
    pub nodes: BTreeMap<SmolStr, Node>,
}

impl Cluster {
    /// Builds a cluster from objects in any order; a later duplicate key replaces an earlier one.
    ///
    /// Each map is built in one go (`BTreeMap::from_iter` sorts, keeps the last of equal keys
    /// and packs the nodes): filled by inserts in key order a B-tree keeps its nodes half full,
    /// which at 10k Services made this transient copy ~2 MiB larger (docs/speaker.md).
    pub fn from_objects(
        services: impl IntoIterator<Item = Service>,
        endpoint_slices: impl IntoIterator<Item = EndpointSlice>,
        nodes: impl IntoIterator<Item = Node>,
    ) -> Self {
        Self {
            services: services.into_iter().map(|s| (s.key.clone(), s)).collect(),
            endpoint_slices: endpoint_slices
                .into_iter()
                .map(|s| (s.key.clone(), s))
                .collect(),
            nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
        }
    }

    /// Adds or replaces a Service.
    pub fn upsert_service(&mut self, service: Service) {
        self.services.insert(service.key.clone(), service);
    }

    /// Removes a Service (an observed delete).
    pub fn remove_service(&mut self, key: &ServiceKey) -> Option<Service> {
        self.services.remove(key)
    }

    /// Adds or replaces an EndpointSlice.
    pub fn upsert_endpoint_slice(&mut self, slice: EndpointSlice) {
        self.endpoint_slices.insert(slice.key.clone(), slice);
    }

    /// Removes an EndpointSlice (an observed delete).
    pub fn remove_endpoint_slice(&mut self, key: &SliceKey) -> Option<EndpointSlice> {
        self.endpoint_slices.remove(key)
    }

    /// Adds or replaces a Node.
    pub fn upsert_node(&mut self, node: Node) {
        self.nodes.insert(node.name.clone(), node);
    }

    /// Removes a Node (an observed delete).
    pub fn remove_node(&mut self, name: &str) -> Option<Node> {
        self.nodes.remove(name)
    }

    /// Groups the EndpointSlices by Service. Computations build it once, so looking up a
    /// Service's endpoints is a map access rather than a scan of every slice.
    pub fn endpoint_index(&self) -> EndpointIndex<'_> {
        let mut by_service: BTreeMap<&ServiceKey, Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in self.endpoint_slices.values() {
            by_service.entry(&slice.service).or_default().push(slice);
        }
        EndpointIndex { by_service }
    }

    /// [`EndpointIndex::serving_nodes`] for one Service, without building an index.
    pub fn serving_nodes(&self, service: &ServiceKey) -> BTreeSet<Option<SmolStr>> {
        serving_nodes(self.slices_of(service))
    }

    /// [`EndpointIndex::ready_on_node`] for one Service, without building an index.
    pub fn ready_on_node(&self, service: &ServiceKey, node: &str) -> u32 {
        ready_on_node(self.slices_of(service), node)
    }

    /// The EndpointSlices of `service`. A slice lives in its Service's namespace (Kubernetes
    /// ties them through the `kubernetes.io/service-name` label, which names a Service of the
    /// slice's own namespace; [`EndpointSlice::service`]), so only that namespace's slices are
    /// looked at: one Service's endpoints cost a scan of its namespace, not of the cluster.
    pub fn slices_of<'a>(
        &'a self,
        service: &'a ServiceKey,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        let from = SliceKey {
            namespace: service.namespace.clone(),
            name: SmolStr::default(),
        };
        self.endpoint_slices
            .range(from..)
            .take_while(move |(k, _)| k.namespace == service.namespace)
            .map(|(_, slice)| slice)
            .filter(move |slice| slice.service == *service)
    }
}

/// EndpointSlices grouped by Service, borrowed from a [`Cluster`].
#[derive(Debug, Clone)]
pub struct EndpointIndex<'a> {
    by_service: BTreeMap<&'a ServiceKey, Vec<&'a EndpointSlice>>,
}

impl EndpointIndex<'_> {
    /// Nodes that have at least one endpoint of `service` able to serve, by MetalLB's rule
    /// (`hasHealthyEndpoint`): an endpoint counts when every occurrence of each of its addresses
    /// across the Service's slices can serve ("false takes precedence"), so an address reported
    /// unready in any slice is unready. Endpoints without a node name appear under `None`.
    pub fn serving_nodes(&self, service: &ServiceKey) -> BTreeSet<Option<SmolStr>> {
        serving_nodes(self.by_service.get(service).into_iter().flatten().copied())
    }
}

impl EndpointIndex<'_> {
    /// How many endpoints of `service` on `node` are ready and not terminating
    /// ([`Endpoint::counts_for_weight`]), each address counted once across the Service's
    /// slices and only when every occurrence counts (as [`Self::serving_nodes`] decides).
    pub fn ready_on_node(&self, service: &ServiceKey, node: &str) -> u32 {
        ready_on_node(
            self.by_service.get(service).into_iter().flatten().copied(),
            node,
        )
    }
}

/// [`EndpointIndex::ready_on_node`] over the given slices of one Service.
fn ready_on_node<'a>(slices: impl Iterator<Item = &'a EndpointSlice>, node: &str) -> u32 {
    let mut by_address: BTreeMap<&str, bool> = BTreeMap::new();
    let here = slices
        .flat_map(|slice| slice.endpoints.iter())
        .filter(|ep| ep.node_name.as_deref() == Some(node));
    for ep in here {
        let counts = ep.counts_for_weight();
        for addr in &ep.addresses {
            by_address
                .entry(addr.as_str())
                .and_modify(|ok| *ok &= counts)
                .or_insert(counts);
        }
    }
    let n = by_address.values().filter(|ok| **ok).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// [`EndpointIndex::serving_nodes`] over the given slices of one Service.
fn serving_nodes<'a>(slices: impl Iterator<Item = &'a EndpointSlice>) -> BTreeSet<Option<SmolStr>> {
    let endpoints = slices.flat_map(|slice| slice.endpoints.iter());
    // (node, address) -> all occurrences can serve
    let mut by_address: BTreeMap<(&Option<SmolStr>, &str), bool> = BTreeMap::new();
    for ep in endpoints {
        let serves = ep.can_serve();
        for addr in &ep.addresses {
            by_address
                .entry((&ep.node_name, addr.as_str()))
                .and_modify(|ok| *ok &= serves)
                .or_insert(serves);
        }
    }
    by_address
        .into_iter()
        .filter(|(_, ok)| *ok)
        .map(|((node, _), _)| node.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, ip: &str) -> Service {
        Service {
            key: ServiceKey::new("default", name),
            labels: Labels::new(),
            is_load_balancer: true,
            load_balancer_class: None,
            traffic_policy: TrafficPolicy::Cluster,
            ips: ip.parse().into_iter().collect(),
        }
    }

    fn endpoint(addr: &str, node: &str, ready: bool, terminating: bool) -> Endpoint {
        Endpoint {
            addresses: vec![addr.into()],
            node_name: Some(node.into()),
            ready: Some(ready),
            // Kubernetes: a terminating pod may still serve; an unready one does not.
            serving: Some(ready || terminating),
            terminating: Some(terminating),
        }
    }

    #[test]
    fn ready_on_node_counts_ready_non_terminating_addresses_once() {
        let key = ServiceKey::new("default", "web");
        let slice = |name: &str, endpoints: Vec<Endpoint>| EndpointSlice {
            key: SliceKey {
                namespace: "default".into(),
                name: name.into(),
            },
            service: key.clone(),
            endpoints,
        };
        let cluster = Cluster::from_objects(
            [service("web", "192.0.2.1")],
            [
                slice(
                    "web-1",
                    vec![
                        endpoint("10.0.0.1", "a", true, false),
                        endpoint("10.0.0.2", "a", true, false),
                        // Shutting down: no share of new traffic.
                        endpoint("10.0.0.3", "a", false, true),
                        endpoint("10.0.0.4", "b", true, false),
                    ],
                ),
                // The same address again in a second slice counts once; unready anywhere
                // makes it unready.
                slice(
                    "web-2",
                    vec![
                        endpoint("10.0.0.1", "a", true, false),
                        endpoint("10.0.0.4", "b", false, false),
                    ],
                ),
            ],
            [],
        );
        assert_eq!(cluster.ready_on_node(&key, "a"), 2);
        assert_eq!(cluster.ready_on_node(&key, "b"), 0);
        assert_eq!(cluster.ready_on_node(&key, "c"), 0);
        let index = cluster.endpoint_index();
        assert_eq!(index.ready_on_node(&key, "a"), 2);
        // The terminating endpoint still makes node a eligible (can_serve), as before.
        assert!(index.serving_nodes(&key).contains(&Some("a".into())));
    }

    #[test]
    fn from_objects_keeps_the_last_of_equal_keys_whatever_the_order() {
        let cluster = Cluster::from_objects(
            [
                service("b", "192.0.2.1"),
                service("a", "192.0.2.2"),
                service("b", "192.0.2.3"),
            ],
            [],
            [
                Node::new("n1", Labels::new()),
                Node::new("n1", Labels::from([("x".to_string(), "y".to_string())])),
            ],
        );
        let ips: Vec<(&str, Vec<IpAddr>)> = cluster
            .services
            .values()
            .map(|s| (s.key.name.as_str(), s.ips.clone()))
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().into_iter().collect::<Vec<_>>();
        assert_eq!(ips, vec![("a", ip("192.0.2.2")), ("b", ip("192.0.2.3"))]);
        assert_eq!(cluster.nodes.len(), 1);
        assert!(cluster
            .nodes
            .get("n1")
            .is_some_and(|n| n.labels.contains_key("x")));
    }
}
