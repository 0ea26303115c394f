//! Conversions from Kubernetes objects to announcement inputs, from the JSON the API server (or a
//! standalone YAML file) would hold.

use std::net::IpAddr;

use ferrolb_speaker::announce::from_k8s::{
    endpoint_slice_from_k8s, node_from_k8s, service_from_k8s, FromK8sError,
};
use ferrolb_speaker::announce::input::{Endpoint, ServiceKey, TrafficPolicy};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use serde_json::json;

fn service(value: serde_json::Value) -> core::Service {
    serde_json::from_value(value).expect("valid Service JSON")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP literal")
}

#[test]
fn load_balancer_service_with_ingress_ips() {
    let svc = service(json!({
        "metadata": {"namespace": "shop", "name": "web", "labels": {"app": "web"}},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                 "loadBalancerClass": "ferrolb"},
        "status": {"loadBalancer": {"ingress": [
            {"ip": "192.0.2.10"}, {"hostname": "lb.example"}, {"ip": "2001:db8::10"},
            {"ip": "192.0.2.10"}
        ]}}
    }));
    let got = service_from_k8s(&svc).expect("converts");
    assert_eq!(got.key, ServiceKey::new("shop", "web"));
    assert!(got.is_load_balancer);
    assert_eq!(got.traffic_policy, TrafficPolicy::Local);
    assert_eq!(got.load_balancer_class.as_deref(), Some("ferrolb"));
    assert_eq!(got.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        got.ips,
        vec![ip("192.0.2.10"), ip("2001:db8::10")],
        "status order, no duplicates"
    );
}

#[test]
fn service_defaults() {
    let got = service_from_k8s(&service(json!({"metadata": {"name": "plain"}}))).expect("converts");
    assert_eq!(got.key, ServiceKey::new("default", "plain"));
    assert!(!got.is_load_balancer, "a missing type is ClusterIP");
    assert_eq!(got.traffic_policy, TrafficPolicy::Cluster);
    assert!(got.ips.is_empty());
}

#[test]
fn service_errors_name_the_field_and_value() {
    let rows: &[(&str, serde_json::Value, FromK8sError)] = &[
        (
            "no name",
            json!({"metadata": {}}),
            FromK8sError::MissingField {
                kind: "Service",
                object: "<unnamed>".into(),
                field: "metadata.name",
            },
        ),
        (
            "bad policy",
            json!({"metadata": {"namespace": "a", "name": "b"},
            "spec": {"externalTrafficPolicy": "Nearest"}}),
            FromK8sError::BadValue {
                kind: "Service",
                object: "a/b".into(),
                field: "spec.externalTrafficPolicy".into(),
                value: "Nearest".into(),
                reason: "expected Cluster or Local",
            },
        ),
        (
            "bad ingress ip",
            json!({"metadata": {"namespace": "a", "name": "b"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"ip": "300.1.1.1"}]}}}),
            FromK8sError::BadValue {
                kind: "Service",
                object: "a/b".into(),
                field: "status.loadBalancer.ingress[1].ip".into(),
                value: "300.1.1.1".into(),
                reason: "not an IP address",
            },
        ),
    ];
    for (name, value, want) in rows {
        assert_eq!(
            service_from_k8s(&service(value.clone())).as_ref(),
            Err(want),
            "{name}"
        );
    }
}

#[test]
fn endpoint_slice_keeps_conditions_and_service() {
    let slice: discovery::EndpointSlice = serde_json::from_value(json!({
        "metadata": {"namespace": "shop", "name": "web-abc12",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "nodeName": "n1",
             "conditions": {"ready": false, "serving": true, "terminating": true}},
            {"addresses": ["10.0.0.2"]}
        ]
    }))
    .expect("valid EndpointSlice JSON");
    let got = endpoint_slice_from_k8s(&slice).expect("converts");
    assert_eq!(got.service, ServiceKey::new("shop", "web"));
    assert_eq!(got.key.name, "web-abc12");
    assert_eq!(
        got.endpoints,
        vec![
            Endpoint {
                addresses: vec!["10.0.0.1".into()],
                node_name: Some("n1".into()),
                ready: Some(false),
                serving: Some(true),
                terminating: Some(true),
            },
            Endpoint {
                addresses: vec!["10.0.0.2".into()],
                ..Endpoint::default()
            },
        ]
    );
    // Serving but terminating does not make the node eligible; unknown readiness does.
    assert!(!got.endpoints[0].can_serve());
    assert!(got.endpoints[1].can_serve());
}

#[test]
fn endpoint_slice_without_service_label_is_an_error() {
    let slice: discovery::EndpointSlice = serde_json::from_value(json!({
        "metadata": {"namespace": "shop", "name": "orphan"},
        "addressType": "IPv4", "endpoints": []
    }))
    .expect("valid EndpointSlice JSON");
    let err = endpoint_slice_from_k8s(&slice).expect_err("no service label");
    assert_eq!(err.metric_label(), "missing_field");
    assert!(
        err.to_string().contains("kubernetes.io/service-name"),
        "{err}"
    );
}

#[test]
fn node_conditions_labels_and_addresses() {
    let node: core::Node = serde_json::from_value(json!({
        "metadata": {"name": "n1", "labels": {
            "node.kubernetes.io/exclude-from-external-load-balancers": ""}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "NetworkUnavailable", "status": "True"}
            ],
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "2001:db8::1"},
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "ExternalIP", "address": "203.0.113.1"}
            ]
        }
    }))
    .expect("valid Node JSON");
    let got = node_from_k8s(&node).expect("converts");
    assert_eq!(got.name, "n1");
    assert_eq!(got.ready, Some(false), "Unknown is not ready");
    assert!(got.unschedulable);
    assert!(got.network_unavailable);
    assert!(got.excluded_from_load_balancers());
    assert_eq!(
        got.internal_addresses,
        vec![ip("10.0.0.1"), ip("2001:db8::1")]
    );
}

#[test]
fn node_without_status_is_unknown_not_unready() {
    let node: core::Node =
        serde_json::from_value(json!({"metadata": {"name": "edge"}})).expect("valid Node JSON");
    let got = node_from_k8s(&node).expect("converts");
    assert_eq!(got.ready, None);
    assert!(!got.unschedulable && !got.network_unavailable && !got.excluded_from_load_balancers());
}

#[test]
fn node_with_bad_internal_ip_is_an_error() {
    let node: core::Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "nope"}]}
    }))
    .expect("valid Node JSON");
    assert!(matches!(
        node_from_k8s(&node),
        Err(FromK8sError::BadValue { field, .. }) if field == "status.addresses[0].address"
    ));
}
