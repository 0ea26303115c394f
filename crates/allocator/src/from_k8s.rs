//! From a k8s-openapi `Service` (plus its Namespace's labels) to the allocator's [`Service`].
//!
//! The `metallb.io/` annotations (and `spec.loadBalancerIP`) are parsed by
//! [`ferrolb_api::annotations::parse_service`], shared with the speaker. Fields are read with the
//! defaults the API server applies, so offline manifests (the `allocate` command) mean what they
//! would in a cluster.

use std::net::IpAddr;

use k8s_openapi::api::core::v1 as k8s;

use ferrolb_api::annotations::{parse_service, AnnotationReason};
use ferrolb_api::model::IpFamily;
use ferrolb_api::selector::Labels;

use crate::service::{
    IpFamilyPolicy, Protocol, Service, ServiceKey, ServicePort, ServiceType, TrafficPolicy,
};

/// A Service field the allocator cannot read: names the field, the value and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value:?}: {reason}")]
pub struct ServiceFieldError {
    /// Field path, e.g. `metadata.annotations["metallb.io/loadBalancerIPs"]`.
    pub field: String,
    /// The value as written.
    pub value: String,
    /// Why it is rejected.
    pub reason: FieldReason,
}

/// Why a Service field is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldReason {
    #[error("not an IP address")]
    /// Not an IP address (status ingress).
    NotAnIp,
    #[error("unknown value")]
    /// A value Kubernetes does not define for this field.
    UnknownValue,
    #[error("port out of range 1-65535")]
    /// Port outside 1-65535.
    PortOutOfRange,
    /// A `metallb.io/` annotation or `spec.loadBalancerIP` is malformed.
    #[error("{0}")]
    Annotation(AnnotationReason),
    #[error("metadata.name is missing")]
    /// The Service has no name.
    MissingName,
}

/// FerroLB's own Service annotation: `"true"` makes automatic allocation join an IP already
/// shared under the Service's `metallb.io/allow-shared-ip` key before taking a free one
/// (see [`Service::prefer_shared_ip`]). MetalLB ignores it.
pub const PREFER_SHARED_IP: &str = "ferrolb.io/prefer-shared-ip";

fn err(
    field: impl Into<String>,
    value: impl Into<String>,
    reason: FieldReason,
) -> ServiceFieldError {
    ServiceFieldError {
        field: field.into(),
        value: value.into(),
        reason,
    }
}

/// The `namespace/name` of a Kubernetes Service (`default` when the manifest has no namespace).
pub fn key_of(svc: &k8s::Service) -> Option<ServiceKey> {
    let name = svc.metadata.name.clone()?;
    let ns = svc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    Some(ServiceKey::new(ns, name))
}

fn parse_ip(field: &str, text: &str) -> Result<IpAddr, ServiceFieldError> {
    text.trim()
        .parse()
        .map_err(|_| err(field, text, FieldReason::NotAnIp))
}

/// Converts `svc`. `namespace_labels` are the labels of its Namespace (empty when unknown).
pub fn service_from_k8s(
    svc: &k8s::Service,
    namespace_labels: &Labels,
) -> Result<Service, ServiceFieldError> {
    let key = key_of(svc).ok_or_else(|| err("metadata.name", "", FieldReason::MissingName))?;
    let spec = svc.spec.clone().unwrap_or_default();

    // The API server defaults spec.type to ClusterIP.
    let type_text = spec.type_.as_deref().unwrap_or("ClusterIP");
    let service_type = match type_text {
        "ClusterIP" => ServiceType::ClusterIp,
        "NodePort" => ServiceType::NodePort,
        "LoadBalancer" => ServiceType::LoadBalancer,
        "ExternalName" => ServiceType::ExternalName,
        other => return Err(err("spec.type", other, FieldReason::UnknownValue)),
    };

    let mut ip_families = Vec::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        ip_families.push(match f.as_str() {
            "IPv4" => IpFamily::V4,
            "IPv6" => IpFamily::V6,
            other => {
                return Err(err(
                    format!("spec.ipFamilies[{i}]"),
                    other,
                    FieldReason::UnknownValue,
                ))
            }
        });
    }
    let ip_family_policy = match spec.ip_family_policy.as_deref() {
        None | Some("SingleStack") => IpFamilyPolicy::SingleStack,
        Some("PreferDualStack") => IpFamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => IpFamilyPolicy::RequireDualStack,
        Some(other) => return Err(err("spec.ipFamilyPolicy", other, FieldReason::UnknownValue)),
    };

    // The first problem is reported; the others show once it is fixed.
    let request = parse_service(svc).map_err(|errors| match errors.into_iter().next() {
        Some(e) => err(e.field, e.value, FieldReason::Annotation(e.reason)),
        None => err("metadata.annotations", "", FieldReason::UnknownValue),
    })?;

    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let port = u16::try_from(p.port)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| {
                err(
                    format!("spec.ports[{i}].port"),
                    p.port.to_string(),
                    FieldReason::PortOutOfRange,
                )
            })?;
        let protocol = match p.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                return Err(err(
                    format!("spec.ports[{i}].protocol"),
                    other,
                    FieldReason::UnknownValue,
                ))
            }
        };
        ports.push(ServicePort { port, protocol });
    }

    // "Cluster" is the default; "Global" is its pre-1.17 spelling.
    let external_traffic_policy = match spec.external_traffic_policy.as_deref() {
        None | Some("Cluster") | Some("Global") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            return Err(err(
                "spec.externalTrafficPolicy",
                other,
                FieldReason::UnknownValue,
            ))
        }
    };

    let prefer_shared_ip = match svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PREFER_SHARED_IP))
        .map(|v| v.trim())
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(err(
                format!("metadata.annotations[\"{PREFER_SHARED_IP}\"]"),
                other,
                FieldReason::UnknownValue,
            ))
        }
    };

    let mut status_ips = Vec::new();
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for (i, ing) in ingress.into_iter().flatten().enumerate() {
        if let Some(ip) = ing.ip.as_deref() {
            status_ips.push(parse_ip(
                &format!("status.loadBalancer.ingress[{i}].ip"),
                ip,
            )?);
        }
    }

    Ok(Service {
        key,
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        namespace_labels: namespace_labels.clone(),
        service_type,
        ip_families,
        ip_family_policy,
        requested_ips: request.requested_ips,
        address_pool: request.address_pool,
        sharing_key: request.sharing_key,
        prefer_shared_ip,
        ports,
        external_traffic_policy,
        selector: spec.selector.clone().unwrap_or_default(),
        load_balancer_class: spec.load_balancer_class.clone(),
        status_ips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Service, ServiceFieldError> {
        let svc: k8s::Service = serde_json::from_value(
            serde_yaml_ng::from_str::<serde_json::Value>(yaml).expect("yaml"),
        )
        .expect("service");
        service_from_k8s(&svc, &Labels::new())
    }

    #[test]
    fn reads_annotations_of_both_prefixes_and_defaults() {
        let s = parse(
            r#"
metadata:
  name: web
  annotations:
    metallb.universe.tf/address-pool: old
    metallb.io/address-pool: new
    metallb.universe.tf/allow-shared-ip: k
    metallb.io/loadBalancerIPs: "10.0.0.1, fd00::1"
spec:
  type: LoadBalancer
  ports: [{port: 53, protocol: UDP}, {port: 80}]
status:
  loadBalancer:
    ingress: [{ip: 10.0.0.1}, {hostname: x.example}]
"#,
        )
        .unwrap();
        assert_eq!(s.key, ServiceKey::new("default", "web"));
        assert_eq!(s.address_pool.as_deref(), Some("new"));
        assert_eq!(s.sharing_key.as_deref(), Some("k"));
        assert_eq!(s.requested_ips.len(), 2);
        assert_eq!(
            s.ports[1],
            ServicePort {
                port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(s.status_ips, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.external_traffic_policy, TrafficPolicy::Cluster);
    }

    #[test]
    fn prefer_shared_ip_is_an_explicit_opt_in() {
        let base = "metadata: {name: a, annotations: {metallb.io/allow-shared-ip: k}}\nspec: {type: LoadBalancer}";
        assert!(!parse(base).unwrap().prefer_shared_ip);
        let on = base.replace("k}", "k, ferrolb.io/prefer-shared-ip: \"true\"}");
        assert!(parse(&on).unwrap().prefer_shared_ip);
        let bad = base.replace("k}", "k, ferrolb.io/prefer-shared-ip: \"yes\"}");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.reason, FieldReason::UnknownValue);
        assert!(e.field.contains(PREFER_SHARED_IP), "{e}");
    }

    #[test]
    fn missing_type_is_cluster_ip() {
        let s = parse("metadata: {name: a, namespace: n}\nspec: {}").unwrap();
        assert_eq!(s.service_type, ServiceType::ClusterIp);
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        let e = parse(
            "metadata: {name: a, annotations: {metallb.io/loadBalancerIPs: 10.0.0.300}}\nspec: {type: LoadBalancer}",
        )
        .unwrap_err();
        assert!(
            matches!(
                e.reason,
                FieldReason::Annotation(AnnotationReason::BadIp(_))
            ),
            "{e}"
        );
        assert!(e.field.contains("metallb.io/loadBalancerIPs"), "{e}");
        let both = parse(
            "metadata: {name: a, annotations: {metallb.io/loadBalancerIPs: 10.0.0.1}}\nspec: {type: LoadBalancer, loadBalancerIP: 10.0.0.2}",
        )
        .unwrap_err();
        assert_eq!(
            both.reason,
            FieldReason::Annotation(AnnotationReason::BothIpFields)
        );
        let port = parse("metadata: {name: a}\nspec: {ports: [{port: 70000}]}").unwrap_err();
        assert_eq!(port.reason, FieldReason::PortOutOfRange);
    }
}
