//! Kubernetes objects for test fixtures: FerroLB's configuration (MetalLB's
//! CRDs), Services with their status and EndpointSlices, Nodes.
//!
//! Each constructor returns an [`Object`] holding the fields every test
//! writes; [`Object::set`] and [`Object::label`] add the ones a test is
//! about. [`yaml`] renders a list of objects as one multi-document YAML
//! stream, for a `--config-dir` file or [`crate::apiserver::ApiServer::apply_yaml`];
//! [`Object::value`] gives the JSON for `ApiServer::apply`. Values are JSON,
//! so YAML's implicit typing (`ip: 10.0.0.1` read as a string, `"True"`)
//! never needs care.
//!
//! ```
//! use ferrolb_e2e::fixture::{self, yaml};
//! let text = yaml(&[
//!     fixture::pool("pool", &["198.51.100.0/24"]),
//!     fixture::bgp_advertisement("adv", &["pool"]).set("spec.localPref", 150),
//! ]);
//! assert!(text.contains("localPref: 150"));
//! ```

use serde_json::{json, Map, Value};

/// The namespace FerroLB (like MetalLB) reads its configuration from.
pub const METALLB_NS: &str = "metallb-system";

/// One Kubernetes object as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Object(Value);

impl Object {
    /// `apiVersion`, `kind` and `metadata` (`name`, and `namespace` unless
    /// the kind is cluster-scoped).
    pub fn new(api_version: &str, kind: &str, name: &str, namespace: Option<&str>) -> Object {
        let mut metadata = json!({ "name": name });
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        Object(json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}))
    }

    /// Sets the field at a dotted `path` ("spec.peerPort"), creating the
    /// objects on the way; keys that contain dots (labels) go through
    /// [`Object::label`].
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Object {
        let mut at = &mut self.0;
        for key in path.split('.') {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            at = &mut at[key];
        }
        *at = value.into();
        self
    }

    /// Adds the label `key: value`.
    pub fn label(mut self, key: &str, value: &str) -> Object {
        self.0["metadata"]["labels"][key] = json!(value);
        self
    }

    /// The object as JSON.
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The object as JSON, owned.
    pub fn into_value(self) -> Value {
        self.0
    }

    /// The object as one YAML document.
    pub fn yaml(&self) -> String {
        // A JSON value always serializes.
        serde_yaml_ng::to_string(&self.0).unwrap_or_default()
    }
}

/// Renders `objects` as one YAML stream, documents separated by `---`.
pub fn yaml(objects: &[Object]) -> String {
    objects
        .iter()
        .map(Object::yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

fn strings(v: &[&str]) -> Value {
    json!(v)
}

/// An `IPAddressPool` in [`METALLB_NS`] with `addresses`.
pub fn pool(name: &str, addresses: &[&str]) -> Object {
    Object::new(
        "metallb.io/v1beta1",
        "IPAddressPool",
        name,
        Some(METALLB_NS),
    )
    .set("spec.addresses", strings(addresses))
}

/// A `BGPPeer` in [`METALLB_NS`].
pub fn bgp_peer(name: &str, my_asn: u32, peer_asn: u32, address: &str, router_id: &str) -> Object {
    Object::new("metallb.io/v1beta2", "BGPPeer", name, Some(METALLB_NS))
        .set("spec.myASN", my_asn)
        .set("spec.peerASN", peer_asn)
        .set("spec.peerAddress", address)
        .set("spec.routerID", router_id)
}

/// A `BGPAdvertisement` in [`METALLB_NS`] for `pools`.
pub fn bgp_advertisement(name: &str, pools: &[&str]) -> Object {
    Object::new(
        "metallb.io/v1beta1",
        "BGPAdvertisement",
        name,
        Some(METALLB_NS),
    )
    .set("spec.ipAddressPools", strings(pools))
}

/// An `L2Advertisement` in [`METALLB_NS`] for `pools`; with no pools it has
/// no `spec` at all (valid for MetalLB: every pool).
pub fn l2_advertisement(name: &str, pools: &[&str]) -> Object {
    let o = Object::new(
        "metallb.io/v1beta1",
        "L2Advertisement",
        name,
        Some(METALLB_NS),
    );
    if pools.is_empty() {
        o
    } else {
        o.set("spec.ipAddressPools", strings(pools))
    }
}

/// A `Node` with one `InternalIP` address each of `addresses` and the
/// `kubernetes.io/hostname` label.
pub fn node(name: &str, addresses: &[&str]) -> Object {
    let addrs: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"type": "InternalIP", "address": a}))
        .collect();
    Object::new("v1", "Node", name, None)
        .label("kubernetes.io/hostname", name)
        .set("status.addresses", addrs)
}

/// A `Namespace`.
pub fn namespace(name: &str) -> Object {
    Object::new("v1", "Namespace", name, None)
}

/// A `LoadBalancer` Service on port 80 with policy Cluster; with `ips` its
/// status lists them as ingress (as if the controller had assigned them).
pub fn service(name: &str, namespace: &str, ips: &[&str]) -> Object {
    let o = Object::new("v1", "Service", name, Some(namespace))
        .set("spec.type", "LoadBalancer")
        .set("spec.externalTrafficPolicy", "Cluster")
        .set("spec.ports", json!([{"port": 80}]));
    if ips.is_empty() {
        return o;
    }
    let ingress: Vec<Value> = ips.iter().map(|ip| json!({ "ip": ip })).collect();
    o.set("status.loadBalancer.ingress", ingress)
}

/// The EndpointSlice `<service>-x` of `service`, with one ready endpoint per
/// `(address, node)`; the address type is that of the first address.
pub fn endpoint_slice(service: &str, namespace: &str, endpoints: &[(&str, &str)]) -> Object {
    let family = match endpoints.first() {
        Some((a, _)) if a.contains(':') => "IPv6",
        _ => "IPv4",
    };
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(a, n)| json!({"addresses": [a], "nodeName": n, "conditions": {"ready": true}}))
        .collect();
    Object::new(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        &format!("{service}-x"),
        Some(namespace),
    )
    .label("kubernetes.io/service-name", service)
    .set("addressType", family)
    .set("endpoints", eps)
}

/// A Service in `default` at `ips` with policy `policy` ("Cluster",
/// "Local") and its EndpointSlice with one ready endpoint on each of
/// `nodes` (addresses 10.0.0.1, 10.0.0.2, ...; fd00:10::1, ... for an IPv6
/// first VIP).
pub fn service_with_endpoints(name: &str, ips: &[&str], policy: &str, nodes: &[&str]) -> String {
    let base = if ips.first().is_some_and(|ip| ip.contains(':')) {
        "fd00:10::"
    } else {
        "10.0.0."
    };
    let addrs: Vec<String> = (1..=nodes.len()).map(|i| format!("{base}{i}")).collect();
    let endpoints: Vec<(&str, &str)> = addrs
        .iter()
        .map(String::as_str)
        .zip(nodes.iter().copied())
        .collect();
    yaml(&[
        service(name, "default", ips).set("spec.externalTrafficPolicy", policy),
        endpoint_slice(name, "default", &endpoints),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Value> {
        use serde::Deserialize;
        serde_yaml_ng::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).expect("yaml"))
            .collect()
    }

    #[test]
    fn a_service_with_endpoints_is_two_documents_read_back_as_written() {
        let docs = parse(&service_with_endpoints(
            "web",
            &["2001:db8::7"],
            "Local",
            &["node-a", "node-b"],
        ));
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["spec"]["externalTrafficPolicy"], "Local");
        assert_eq!(
            docs[0]["status"]["loadBalancer"]["ingress"][0]["ip"],
            "2001:db8::7"
        );
        assert_eq!(docs[1]["metadata"]["name"], "web-x");
        assert_eq!(
            docs[1]["metadata"]["labels"]["kubernetes.io/service-name"],
            "web"
        );
        assert_eq!(docs[1]["addressType"], "IPv6");
        assert_eq!(docs[1]["endpoints"][1]["addresses"][0], "fd00:10::2");
        assert_eq!(docs[1]["endpoints"][1]["nodeName"], "node-b");
        assert_eq!(docs[1]["endpoints"][1]["conditions"]["ready"], true);
    }

    #[test]
    fn set_creates_nested_fields_and_keeps_types() {
        let docs = parse(&yaml(&[
            bgp_peer("p", 64500, 64512, "127.0.0.1", "10.255.0.2").set("spec.peerPort", 179),
            l2_advertisement("l2", &[]),
            node("n", &["127.0.0.1"]).set(
                "status.conditions",
                json!([{"type": "Ready", "status": "True"}]),
            ),
        ]));
        assert_eq!(docs[0]["spec"]["peerPort"], 179);
        assert_eq!(docs[0]["spec"]["peerAddress"], "127.0.0.1");
        assert_eq!(docs[0]["metadata"]["namespace"], METALLB_NS);
        assert!(docs[1].get("spec").is_none());
        assert_eq!(docs[2]["status"]["conditions"][0]["status"], "True");
        assert_eq!(docs[2]["status"]["addresses"][0]["type"], "InternalIP");
        assert!(docs[2]["metadata"].get("namespace").is_none());
    }
}
