//! Config input is untrusted: loading and validating arbitrary documents of every kind, built
//! from the real field names with values of random shapes, never panics.

use std::path::Path;

use ferrolb_api::source::files::load_str;
use ferrolb_api::validate::validate;
use proptest::prelude::*;
use serde_json::{json, Value};

const KINDS: &[(&str, &str)] = &[
    ("metallb.io/v1beta1", "IPAddressPool"),
    ("metallb.io/v1beta2", "BGPPeer"),
    ("metallb.io/v1beta1", "BGPPeer"),
    ("metallb.io/v1beta1", "BGPAdvertisement"),
    ("metallb.io/v1beta1", "L2Advertisement"),
    ("metallb.io/v1beta1", "Community"),
    ("metallb.io/v1beta1", "BFDProfile"),
    ("v1", "Secret"),
    ("v1", "Node"),
];

const FIELDS: &[&str] = &[
    "addresses",
    "autoAssign",
    "avoidBuggyIPs",
    "serviceAllocation",
    "priority",
    "namespaces",
    "namespaceSelectors",
    "serviceSelectors",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "myASN",
    "peerASN",
    "dynamicASN",
    "peerAddress",
    "sourceAddress",
    "peerPort",
    "holdTime",
    "keepaliveTime",
    "connectTime",
    "routerID",
    "nodeSelectors",
    "password",
    "passwordSecret",
    "name",
    "bfdProfile",
    "ebgpMultiHop",
    "vrf",
    "interface",
    "aggregationLength",
    "aggregationLengthV6",
    "localPref",
    "communities",
    "ipAddressPools",
    "ipAddressPoolSelectors",
    "peers",
    "interfaces",
    "value",
    "receiveInterval",
    "echoMode",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..70000).prop_map(Value::from),
        prop::sample::select(vec![
            "10.0.0.0/24",
            "10.0.0.1-10.0.0.9",
            "fc00::/120",
            "10.0.0.9-10.0.0.1",
            "90s",
            "1s",
            "65535:65282",
            "large:1:2:3",
            "In",
            "Exists",
            "internal",
            "x",
            "",
            "::",
            "0s",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    (prop::sample::select(KINDS), 0usize..3, tree()).prop_map(|((api, kind), name, spec)| {
        json!({
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": format!("o{name}"), "namespace": "ns"},
            "spec": spec,
            "type": "kubernetes.io/basic-auth",
        })
    })
}

fn s() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "10.0.0.0/24",
            "10.0.0.1-10.0.0.9",
            "fc00::/120",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1",
            "90s",
            "1s",
            "0s",
            "65535:65282",
            "large:1:2:3",
            "internal",
            "external",
            "x",
            "",
            "o0",
            "o1",
            "eth0",
            "In",
            "Exists",
            "a/b",
        ])
        .prop_map(String::from),
        "\\PC{0,8}",
    ]
}

fn strs() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(s(), 0..4)
}

fn selectors() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (s(), s(), prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist", "Gt"]), strs())
            .prop_map(|(k, v, op, vals)| {
                json!({"matchLabels": {k.clone(): v}, "matchExpressions": [{"key": k, "operator": op, "values": vals}]})
            }),
        0..3,
    )
    .prop_map(Value::from)
}

/// Specs with the right field types and random contents, so most documents decode and the
/// validator (not the decoder) sees the garbage.
fn typed_document() -> impl Strategy<Value = Value> {
    let pool = (strs(), any::<bool>(), any::<i32>(), strs(), selectors()).prop_map(
        |(a, b, p, ns, sel)| {
            (
                "metallb.io/v1beta1",
                "IPAddressPool",
                json!({"addresses": a, "avoidBuggyIPs": b,
            "serviceAllocation": {"priority": p, "namespaces": ns, "serviceSelectors": sel}}),
            )
        },
    );
    let peer = (
        any::<u32>(),
        any::<u32>(),
        s(),
        s(),
        s(),
        s(),
        0u16..20000,
        selectors(),
        any::<bool>(),
    )
        .prop_map(|(my, peer, addr, dynamic, hold, ka, port, sel, mh)| {
            (
                "metallb.io/v1beta2",
                "BGPPeer",
                json!({"myASN": my % 4, "peerASN": peer % 4,
                "dynamicASN": dynamic, "peerAddress": addr, "holdTime": hold, "keepaliveTime": ka,
                "peerPort": port, "nodeSelectors": sel, "ebgpMultiHop": mh,
                "passwordSecret": {"name": "o0"}, "bfdProfile": "o1"}),
            )
        });
    let bgp_adv = (
        any::<i32>(),
        any::<i32>(),
        any::<u32>(),
        strs(),
        strs(),
        strs(),
        selectors(),
    )
        .prop_map(|(l4, l6, lp, c, pools, peers, sel)| {
            (
                "metallb.io/v1beta1",
                "BGPAdvertisement",
                json!({"aggregationLength": l4 % 40,
                "aggregationLengthV6": l6 % 140, "localPref": lp, "communities": c,
                "ipAddressPools": pools, "peers": peers, "ipAddressPoolSelectors": sel,
                "nodeSelectors": sel}),
            )
        });
    let l2_adv = (strs(), strs(), selectors(), any::<i32>()).prop_map(|(i, pools, sel, w)| {
        (
            "metallb.io/v1beta1",
            "L2Advertisement",
            json!({"interfaces": i, "ipAddressPools": pools,
            "nodeSelectors": sel, "preferredNodeSelectors": [{"weight": w, "preference": {}}]}),
        )
    });
    let community = (s(), s()).prop_map(|(n, v)| {
        (
            "metallb.io/v1beta1",
            "Community",
            json!({"communities": [{"name": n, "value": v}]}),
        )
    });
    let bfd = (any::<u32>(), any::<bool>()).prop_map(|(i, e)| {
        (
            "metallb.io/v1beta1",
            "BFDProfile",
            json!({"receiveInterval": i % 70000, "echoMode": e}),
        )
    });
    (
        prop_oneof![pool, peer, bgp_adv, l2_adv, community, bfd],
        0usize..3,
    )
        .prop_map(|((api, kind, spec), name)| {
            json!({"apiVersion": api, "kind": kind,
                "metadata": {"name": format!("o{name}"), "namespace": "ns"}, "spec": spec})
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn validating_well_typed_garbage_never_panics(docs in prop::collection::vec(typed_document(), 1..8)) {
        let text: String = docs
            .iter()
            .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
            .collect();
        let res = load_str(&text, Path::new("fuzz.yaml"));
        prop_assert!(res.is_ok(), "{:?}", res.err());
        if let Err(errs) = validate(&res.unwrap()) {
            for e in errs {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn loading_and_validating_never_panics(docs in prop::collection::vec(document(), 1..6)) {
        let text: String = docs
            .iter()
            .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
            .collect();
        if let Ok(res) = load_str(&text, Path::new("fuzz.yaml")) {
            if let Err(errs) = validate(&res) {
                for e in errs {
                    prop_assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }
}
