//! Serde round trips of every kind: a manifest using every field decodes, and encodes back to
//! the same document (nothing dropped, renamed or defaulted on the way).

use ferrolb_api::crd::{
    bgp_peer_v1beta1, BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool,
    L2Advertisement, ServiceBGPStatus, ServiceL2Status,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(yaml: &str) {
    let input: Value = serde_yaml_ng::from_str(yaml).unwrap();
    let typed: T = serde_yaml_ng::from_str(yaml).unwrap();
    let output = serde_json::to_value(&typed).unwrap();
    assert_eq!(output, input, "JSON form differs");
    let again: T = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&typed).unwrap()).unwrap();
    assert_eq!(again, typed, "YAML round trip differs");
}

const SELECTOR: &str =
    "{matchLabels: {a: b}, matchExpressions: [{key: k, operator: In, values: [v]}]}";

#[test]
fn ip_address_pool() {
    round_trip::<IPAddressPool>(&format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: p, namespace: ns, labels: {{x: y}}}}
spec:
  addresses: [10.0.0.0/24, 10.0.1.1-10.0.1.9, 'fc00::/64']
  autoAssign: false
  avoidBuggyIPs: true
  serviceAllocation:
    priority: 5
    namespaces: [a]
    namespaceSelectors: [{SELECTOR}]
    serviceSelectors: [{SELECTOR}]
status: {{assignedIPv4: 1, assignedIPv6: 0, availableIPv4: 255, availableIPv6: 0}}
"
    ));
}

#[test]
fn bgp_peer_v1beta2() {
    round_trip::<BGPPeer>(&format!(
        "apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: p, namespace: ns}}
spec:
  myASN: 64512
  peerASN: 4294967295
  localASN: 1
  dynamicASN: external
  peerAddress: 10.0.0.1
  sourceAddress: 10.0.0.2
  peerPort: 1179
  interface: eth0
  holdTime: 90s
  keepaliveTime: 30s
  connectTime: 5s
  routerID: 1.2.3.4
  nodeSelectors: [{SELECTOR}]
  password: pw
  passwordSecret: {{name: s, namespace: ns}}
  bfdProfile: f
  enableGracefulRestart: true
  ebgpMultiHop: true
  vrf: red
  disableMP: true
  dualStackAddressFamily: true
status: {{}}
"
    ));
}

#[test]
fn bgp_peer_v1beta1_and_its_conversion() {
    let yaml = "apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: p, namespace: ns}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 10.0.0.1
  sourceAddress: 10.0.0.2
  peerPort: 179
  holdTime: 90s
  keepaliveTime: 30s
  routerID: 1.2.3.4
  nodeSelectors: [{matchLabels: {a: b}, matchExpressions: [{key: k, operator: In, values: [v]}]}]
  password: pw
  bfdProfile: f
  ebgpMultiHop: true
";
    round_trip::<bgp_peer_v1beta1::BGPPeer>(yaml);
    let old: bgp_peer_v1beta1::BGPPeer = serde_yaml_ng::from_str(yaml).unwrap();
    let new = old.to_v1beta2();
    let v = serde_json::to_value(&new).unwrap();
    assert_eq!(v["apiVersion"], "metallb.io/v1beta2");
    // Every v1beta1 spec field keeps its name and value in v1beta2.
    let old_spec = serde_json::to_value(&old.spec).unwrap();
    for (k, val) in old_spec.as_object().unwrap() {
        assert_eq!(&v["spec"][k], val, "field {k}");
    }
}

#[test]
fn bgp_advertisement() {
    round_trip::<BGPAdvertisement>(&format!(
        "apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: a, namespace: ns}}
spec:
  aggregationLength: 24
  aggregationLengthV6: 64
  localPref: 150
  communities: ['1:2', 'large:1:2:3', ALIAS]
  ipAddressPools: [p]
  ipAddressPoolSelectors: [{SELECTOR}]
  nodeSelectors: [{SELECTOR}]
  peers: [x]
  serviceSelectors: [{SELECTOR}]
"
    ));
}

#[test]
fn l2_advertisement() {
    round_trip::<L2Advertisement>(&format!(
        "apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: a, namespace: ns}}
spec:
  ipAddressPools: [p]
  ipAddressPoolSelectors: [{SELECTOR}]
  nodeSelectors: [{SELECTOR}]
  preferredNodeSelectors: [{{weight: 10, preference: {SELECTOR}}}]
  serviceSelectors: [{SELECTOR}]
  interfaces: [eth0]
"
    ));
}

#[test]
fn community() {
    round_trip::<Community>(
        "apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: c, namespace: ns}
spec:
  communities: [{name: NO_ADVERTISE, value: '65535:65282'}]
",
    );
}

#[test]
fn bfd_profile() {
    round_trip::<BFDProfile>(
        "apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: f, namespace: ns}
spec: {detectMultiplier: 3, echoInterval: 50, echoMode: true, minimumTtl: 254, passiveMode: true, receiveInterval: 300, transmitInterval: 300}
",
    );
}

#[test]
fn service_statuses() {
    round_trip::<ServiceL2Status>(
        "apiVersion: metallb.io/v1beta1
kind: ServiceL2Status
metadata: {name: s, namespace: ns}
spec: {}
status: {node: n1, serviceName: svc, serviceNamespace: default, interfaces: [{name: eth0}]}
",
    );
    round_trip::<ServiceBGPStatus>(
        "apiVersion: metallb.io/v1beta1
kind: ServiceBGPStatus
metadata: {name: s, namespace: ns}
spec: {}
status: {node: n1, serviceName: svc, serviceNamespace: default, peers: [p1, p2]}
",
    );
}

#[test]
fn configuration_state_round_trips_and_reports_a_config_state() {
    use ferrolb_api::crd::{ConfigurationState, ConfigurationStateStatus};
    round_trip::<ConfigurationState>(
        "apiVersion: metallb.io/v1beta1
kind: ConfigurationState
metadata: {name: controller, namespace: ns, labels: {metallb.io/component-type: controller}}
status:
  result: Invalid
  errorSummary: bad
  conditions: [{type: Ready, status: 'False', reason: Invalid, message: bad, lastTransitionTime: '2026-01-01T00:00:00Z'}]
",
    );
    let mut state = ferrolb_api::ConfigState::new();
    assert_eq!(
        ConfigurationStateStatus::from_state(&state)
            .result
            .as_deref(),
        Some("Unknown")
    );
    state.apply(Ok(Default::default()));
    assert_eq!(
        ConfigurationStateStatus::from_state(&state)
            .result
            .as_deref(),
        Some("Valid")
    );
    let res = ferrolb_api::source::files::load_str(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [x, y]}\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    state.apply(ferrolb_api::validate::validate(&res));
    let s = ConfigurationStateStatus::from_state(&state);
    assert_eq!(s.result.as_deref(), Some("Invalid"));
    assert_eq!(s.error_summary.unwrap().lines().count(), 2);
}
