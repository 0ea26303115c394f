//! Conversions from Kubernetes objects (k8s-openapi types) to the computation's [`super::input`]
//! structs. Used by both modes: objects from watches, and objects parsed from YAML files.
//!
//! Conversion is strict where a wrong guess would announce the wrong thing (an unparsable
//! ingress IP, an unknown traffic policy) and lenient where Kubernetes defines a default (a
//! missing `type` is ClusterIP, a missing condition is unknown).

// Inputs come from users and the API server: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use ferrolb_api::selector::Labels;

use super::input::{
    Endpoint, EndpointSlice, Node, Service, ServiceKey, SliceKey, SmolStr, TrafficPolicy,
};

/// The label that ties an EndpointSlice to its Service (`discovery.k8s.io/v1`).
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// A Kubernetes object that cannot be turned into a speaker input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FromK8sError {
    /// A field the speaker needs is absent.
    #[error("{kind} {object}: missing {field}")]
    MissingField {
        kind: &'static str,
        /// `namespace/name` or `name`, as far as known.
        object: String,
        field: &'static str,
    },
    /// A field holds a value the speaker cannot use.
    #[error("{kind} {object}: {field} = {value:?}: {reason}")]
    BadValue {
        kind: &'static str,
        object: String,
        field: String,
        value: String,
        reason: &'static str,
    },
}

impl FromK8sError {
    /// A stable word for a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            FromK8sError::MissingField { .. } => "missing_field",
            FromK8sError::BadValue { .. } => "bad_value",
        }
    }
}

fn object_name(meta: &ObjectMeta) -> String {
    match (&meta.namespace, &meta.name) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.clone(),
        (_, None) => "<unnamed>".to_string(),
    }
}

fn namespaced(meta: &ObjectMeta, kind: &'static str) -> Result<(SmolStr, SmolStr), FromK8sError> {
    namespaced_parts(meta.namespace.as_deref(), meta.name.as_deref(), kind)
}

fn namespaced_parts(
    namespace: Option<&str>,
    name: Option<&str>,
    kind: &'static str,
) -> Result<(SmolStr, SmolStr), FromK8sError> {
    let name = name.ok_or_else(|| FromK8sError::MissingField {
        kind,
        object: "<unnamed>".to_string(),
        field: "metadata.name",
    })?;
    // Objects read from a standalone YAML file may omit the namespace; the API server would put
    // them in "default".
    Ok((
        SmolStr::new(namespace.unwrap_or("default")),
        SmolStr::new(name),
    ))
}

/// The fields of a `v1/Service` document the speaker reads, kept as written.
///
/// Why raw rather than converted: in standalone mode a Service's status may come from a
/// *status overlay* in another file (the controller's `ferrolb-allocations.yaml`), merged after
/// all files are read. Keeping the raw fields of both and converting after the merge gives
/// exactly what converting the merged k8s-openapi object gives (an unparsable IP in a status
/// that an overlay replaces is not an error), at a tenth of the memory of the k8s object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceFields {
    /// `metadata.name`.
    pub name: Option<SmolStr>,
    /// `metadata.namespace`.
    pub namespace: Option<SmolStr>,
    /// `metadata.labels`.
    pub labels: Labels,
    /// `spec`; `None` for a status overlay, which has none.
    pub spec: Option<ServiceSpecFields>,
    /// `status.loadBalancer.ingress[*].ip` (`None` for a hostname-only entry); `None` when
    /// the document has no `status`.
    pub ingress: Option<Vec<Option<SmolStr>>>,
}

/// The fields of a Service's `spec` the speaker reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSpecFields {
    /// `spec.type`.
    pub type_: Option<SmolStr>,
    /// `spec.externalTrafficPolicy`.
    pub external_traffic_policy: Option<SmolStr>,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<SmolStr>,
}

impl ServiceFields {
    /// Copies the read fields out of a Service (a parsed document's, a reflector store's). The
    /// copies are sized to what they hold: nothing of the k8s object's buffers stays alive.
    pub fn of(svc: &core::Service) -> Self {
        let ingress = svc.status.as_ref().map(|status| {
            status
                .load_balancer
                .as_ref()
                .and_then(|lb| lb.ingress.as_deref())
                .unwrap_or_default()
                .iter()
                .map(|entry| small(&entry.ip))
                .collect()
        });
        Self {
            name: small(&svc.metadata.name),
            namespace: small(&svc.metadata.namespace),
            labels: svc.metadata.labels.clone().unwrap_or_default(),
            spec: svc.spec.as_ref().map(|spec| ServiceSpecFields {
                type_: small(&spec.type_),
                external_traffic_policy: small(&spec.external_traffic_policy),
                load_balancer_class: small(&spec.load_balancer_class),
            }),
            ingress,
        }
    }

    /// Whether this is a status overlay (no `spec`), as `ferrolb_api::source::files` defines.
    pub fn is_status_overlay(&self) -> bool {
        self.spec.is_none()
    }

    /// `(namespace or "default", name or "")`: the key status overlays are matched by.
    pub fn overlay_key(&self) -> (&str, &str) {
        (
            self.namespace.as_deref().unwrap_or("default"),
            self.name.as_deref().unwrap_or_default(),
        )
    }
}

fn small(s: &Option<String>) -> Option<SmolStr> {
    s.as_deref().map(SmolStr::new)
}

/// Converts a `v1/Service`.
pub fn service_from_k8s(svc: &core::Service) -> Result<Service, FromK8sError> {
    service_from_fields(&ServiceFields::of(svc), None)
}

/// Converts a Service from its [`ServiceFields`]; `status_ingress`, when given, replaces the
/// document's own status (a status overlay's, merged).
pub fn service_from_fields(
    svc: &ServiceFields,
    status_ingress: Option<&[Option<SmolStr>]>,
) -> Result<Service, FromK8sError> {
    const KIND: &str = "Service";
    let (namespace, name) = namespaced_parts(svc.namespace.as_deref(), svc.name.as_deref(), KIND)?;
    // Only for error messages: built when one is, not for every Service of every reconcile.
    let object = || format!("{namespace}/{name}");
    let spec = svc.spec.as_ref();
    let is_load_balancer = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let traffic_policy = match spec.and_then(|s| s.external_traffic_policy.as_deref()) {
        None | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            return Err(FromK8sError::BadValue {
                kind: KIND,
                object: object(),
                field: "spec.externalTrafficPolicy".into(),
                value: other.into(),
                reason: "expected Cluster or Local",
            })
        }
    };
    let ingress = status_ingress
        .or(svc.ingress.as_deref())
        .unwrap_or_default();
    let mut ips = Vec::new();
    for (i, entry) in ingress.iter().enumerate() {
        // Hostname-only entries come from other load balancers; they name no VIP of ours.
        let Some(ip) = entry.as_deref() else {
            continue;
        };
        let parsed: IpAddr = ip.parse().map_err(|_| FromK8sError::BadValue {
            kind: KIND,
            object: object(),
            field: format!("status.loadBalancer.ingress[{i}].ip"),
            value: ip.into(),
            reason: "not an IP address",
        })?;
        if !ips.contains(&parsed) {
            ips.push(parsed);
        }
    }
    Ok(Service {
        key: ServiceKey::new(namespace, name),
        labels: svc.labels.clone(),
        is_load_balancer,
        load_balancer_class: spec.and_then(|s| s.load_balancer_class.clone()),
        traffic_policy,
        ips,
    })
}

/// Converts a `discovery.k8s.io/v1` EndpointSlice.
pub fn endpoint_slice_from_k8s(
    slice: &discovery::EndpointSlice,
) -> Result<EndpointSlice, FromK8sError> {
    const KIND: &str = "EndpointSlice";
    let (namespace, name) = namespaced(&slice.metadata, KIND)?;
    let service_name = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SERVICE_NAME))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FromK8sError::MissingField {
            kind: KIND,
            object: format!("{namespace}/{name}"),
            field: "metadata.labels[kubernetes.io/service-name]",
        })?;
    let endpoints = slice
        .endpoints
        .iter()
        .map(|ep| {
            let conditions = ep.conditions.clone().unwrap_or_default();
            Endpoint {
                addresses: ep.addresses.iter().map(SmolStr::new).collect(),
                node_name: small(&ep.node_name),
                ready: conditions.ready,
                serving: conditions.serving,
                terminating: conditions.terminating,
            }
        })
        .collect();
    Ok(EndpointSlice {
        service: ServiceKey::new(namespace.clone(), service_name.as_str()),
        key: SliceKey { namespace, name },
        endpoints,
    })
}

/// The drain annotation set to "true", or the cluster autoscaler's to-be-deleted taint.
fn drain_annotated_or_tainted(node: &core::Node) -> bool {
    let annotated = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::drain::ANNOTATION_DRAIN))
        .is_some_and(|v| v == "true");
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|t| t.key == super::drain::TAINT_TO_BE_DELETED);
    annotated || tainted
}

/// Converts a `v1/Node`.
pub fn node_from_k8s(node: &core::Node) -> Result<Node, FromK8sError> {
    const KIND: &str = "Node";
    let name = node
        .metadata
        .name
        .clone()
        .ok_or_else(|| FromK8sError::MissingField {
            kind: KIND,
            object: object_name(&node.metadata),
            field: "metadata.name",
        })?;
    let status = node.status.as_ref();
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let condition = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status == "True")
    };
    let mut internal_addresses = Vec::new();
    for (i, address) in status
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if address.type_ != "InternalIP" {
            continue;
        }
        let ip: IpAddr = address
            .address
            .parse()
            .map_err(|_| FromK8sError::BadValue {
                kind: KIND,
                object: name.clone(),
                field: format!("status.addresses[{i}].address"),
                value: address.address.clone(),
                reason: "not an IP address",
            })?;
        internal_addresses.push(ip);
    }
    internal_addresses.sort();
    internal_addresses.dedup();
    Ok(Node {
        labels: node.metadata.labels.clone().unwrap_or_default(),
        ready: condition("Ready"),
        unschedulable: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        network_unavailable: condition("NetworkUnavailable") == Some(true),
        internal_addresses,
        drain_requested: drain_annotated_or_tainted(node),
        name: name.into(),
    })
}
