//! Service-facing annotations, parsed once for the controller and the speaker.
//!
//! Each key is read under both prefixes: `metallb.io/` (current) and `metallb.universe.tf/`
//! (deprecated, still common in existing manifests). When both are present the current one
//! wins, as in MetalLB (and in the controller's own reading of Services).
//!
//! | key                | meaning                                                      |
//! |--------------------|--------------------------------------------------------------|
//! | `address-pool`     | allocate from this IPAddressPool only                        |
//! | `loadBalancerIPs`  | comma-separated addresses to assign, at most one per family  |
//! | `allow-shared-ip`  | sharing key: Services with equal keys may share an address   |
//!
//! `spec.loadBalancerIP` (deprecated by Kubernetes) requests one address; it is exclusive
//! with the `loadBalancerIPs` annotation, as in MetalLB.

// Config input is untrusted: no panics on any of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

use crate::model::IpFamily;

/// The current annotation prefix.
pub const PREFIX: &str = "metallb.io/";
/// The deprecated prefix, still honoured.
pub const DEPRECATED_PREFIX: &str = "metallb.universe.tf/";
/// Key (without prefix) selecting the pool to allocate from.
pub const ADDRESS_POOL: &str = "address-pool";
/// Key (without prefix) listing requested addresses.
pub const LOAD_BALANCER_IPS: &str = "loadBalancerIPs";
/// Key (without prefix) holding the sharing key.
pub const ALLOW_SHARED_IP: &str = "allow-shared-ip";
/// Annotation the controller writes with the pool an address came from.
pub const IP_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";

/// What a Service asks of FerroLB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRequest {
    /// `address-pool`: the only pool to allocate from.
    pub address_pool: Option<String>,
    /// Requested addresses (`loadBalancerIPs` or `spec.loadBalancerIP`), at most one per
    /// family, in the order written.
    pub requested_ips: Vec<IpAddr>,
    /// `allow-shared-ip`: the sharing key.
    pub sharing_key: Option<String>,
}

/// One problem with a Service's annotations or `spec.loadBalancerIP`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value:?}: {reason}")]
pub struct AnnotationError {
    /// The annotation key (with prefix) or `spec.loadBalancerIP`.
    pub field: String,
    /// The offending value.
    pub value: String,
    /// What is wrong.
    pub reason: AnnotationReason,
}

/// Why an annotation is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationReason {
    /// Empty value.
    #[error("must not be empty")]
    Empty,
    /// Not an IP address.
    #[error("invalid IP address {0:?}")]
    BadIp(String),
    /// Two addresses of one family.
    #[error("more than one address of the same family")]
    SameFamilyTwice,
    /// Both `spec.loadBalancerIP` and the `loadBalancerIPs` annotation are set.
    #[error("spec.loadBalancerIP and the loadBalancerIPs annotation are mutually exclusive")]
    BothIpFields,
}

/// Reads `key` under both prefixes, the current one first: `(full key, trimmed value)`.
pub fn get(svc: &Service, key: &str) -> Option<(String, String)> {
    let ann = svc.metadata.annotations.as_ref()?;
    [PREFIX, DEPRECATED_PREFIX].iter().find_map(|prefix| {
        let full = format!("{prefix}{key}");
        ann.get(&full).map(|v| (full, v.trim().to_string()))
    })
}

fn non_empty(
    svc: &Service,
    key: &str,
    errors: &mut Vec<AnnotationError>,
) -> Option<(String, String)> {
    match get(svc, key) {
        Some((field, v)) if v.is_empty() => {
            errors.push(AnnotationError {
                field,
                value: v,
                reason: AnnotationReason::Empty,
            });
            None
        }
        found => found,
    }
}

/// Parses what `svc` requests. Reports every problem, not only the first.
pub fn parse_service(svc: &Service) -> Result<ServiceRequest, Vec<AnnotationError>> {
    let mut errors = Vec::new();
    let address_pool = non_empty(svc, ADDRESS_POOL, &mut errors).map(|(_, v)| v);
    let sharing_key = non_empty(svc, ALLOW_SHARED_IP, &mut errors).map(|(_, v)| v);
    let annotated = non_empty(svc, LOAD_BALANCER_IPS, &mut errors);
    let spec_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.clone())
        .filter(|ip| !ip.trim().is_empty());

    let mut requested_ips = Vec::new();
    let (field, list) = match (annotated, spec_ip) {
        (Some((field, v)), Some(_)) => {
            errors.push(AnnotationError {
                field,
                value: v,
                reason: AnnotationReason::BothIpFields,
            });
            (String::new(), String::new())
        }
        (Some(found), None) => found,
        (None, Some(ip)) => ("spec.loadBalancerIP".to_string(), ip),
        (None, None) => (String::new(), String::new()),
    };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<IpAddr>() {
            Ok(ip) => {
                if requested_ips
                    .iter()
                    .any(|o| IpFamily::of(o) == IpFamily::of(&ip))
                {
                    errors.push(AnnotationError {
                        field: field.clone(),
                        value: list.clone(),
                        reason: AnnotationReason::SameFamilyTwice,
                    });
                } else {
                    requested_ips.push(ip);
                }
            }
            Err(_) => errors.push(AnnotationError {
                field: field.clone(),
                value: list.clone(),
                reason: AnnotationReason::BadIp(part.to_string()),
            }),
        }
    }
    if errors.is_empty() {
        Ok(ServiceRequest {
            address_pool,
            requested_ips,
            sharing_key,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use std::collections::BTreeMap;

    fn svc(ann: &[(&str, &str)], lb_ip: Option<&str>) -> Service {
        let mut s = Service::default();
        s.metadata.annotations = Some(
            ann.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        s.spec = Some(ServiceSpec {
            load_balancer_ip: lb_ip.map(str::to_string),
            ..Default::default()
        });
        s
    }

    #[test]
    fn no_annotations_request_nothing() {
        assert_eq!(
            parse_service(&svc(&[], None)),
            Ok(ServiceRequest::default())
        );
        assert_eq!(
            parse_service(&Service::default()),
            Ok(ServiceRequest::default())
        );
    }

    #[test]
    fn both_prefixes_are_read() {
        for prefix in [PREFIX, DEPRECATED_PREFIX] {
            let s = svc(
                &[
                    (&format!("{prefix}address-pool"), "gold"),
                    (&format!("{prefix}allow-shared-ip"), "key1"),
                    (&format!("{prefix}loadBalancerIPs"), "10.0.0.1, fc00::1"),
                ],
                None,
            );
            let r = parse_service(&s).unwrap();
            assert_eq!(r.address_pool.as_deref(), Some("gold"));
            assert_eq!(r.sharing_key.as_deref(), Some("key1"));
            assert_eq!(
                r.requested_ips,
                [
                    "10.0.0.1".parse::<IpAddr>().unwrap(),
                    "fc00::1".parse().unwrap()
                ]
            );
        }
    }

    #[test]
    fn current_prefix_wins_when_both_are_present() {
        let both = svc(
            &[
                ("metallb.io/address-pool", "new"),
                ("metallb.universe.tf/address-pool", "old"),
            ],
            None,
        );
        assert_eq!(
            parse_service(&both).unwrap().address_pool.as_deref(),
            Some("new")
        );
    }

    #[test]
    fn spec_load_balancer_ip_is_read_and_exclusive_with_the_annotation() {
        let r = parse_service(&svc(&[], Some("10.0.0.7"))).unwrap();
        assert_eq!(r.requested_ips, ["10.0.0.7".parse::<IpAddr>().unwrap()]);
        let e = parse_service(&svc(
            &[("metallb.io/loadBalancerIPs", "10.0.0.1")],
            Some("10.0.0.7"),
        ))
        .unwrap_err();
        assert_eq!(e[0].reason, AnnotationReason::BothIpFields);
        let e = parse_service(&svc(&[], Some("10.0.0.300"))).unwrap_err();
        assert_eq!(e[0].field, "spec.loadBalancerIP");
        assert_eq!(e[0].reason, AnnotationReason::BadIp("10.0.0.300".into()));
    }

    #[test]
    fn load_balancer_ips_take_one_address_per_family() {
        let e = parse_service(&svc(
            &[("metallb.io/loadBalancerIPs", "10.0.0.1,10.0.0.2")],
            None,
        ))
        .unwrap_err();
        assert_eq!(e[0].reason, AnnotationReason::SameFamilyTwice);
        let e = parse_service(&svc(
            &[("metallb.io/loadBalancerIPs", "10.0.0.1,bogus")],
            None,
        ))
        .unwrap_err();
        assert_eq!(e[0].reason, AnnotationReason::BadIp("bogus".into()));
    }

    #[test]
    fn empty_values_are_errors_and_all_errors_are_reported() {
        let e = parse_service(&svc(
            &[
                ("metallb.io/address-pool", " "),
                ("metallb.universe.tf/allow-shared-ip", ""),
            ],
            Some("x"),
        ))
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.iter().all(|e| !e.to_string().contains('\n')));
    }
}
