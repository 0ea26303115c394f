//! `ferrolb-controller convert` run as a real process: the output is CRs that load and
//! validate, equivalent to the legacy ConfigMap.

use std::process::Command;

const CM: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  namespace: metallb-system
  name: config
data:
  config: |
    peers:
    - peer-address: 10.0.0.1
      peer-asn: 64501
      my-asn: 64500
    bgp-communities:
      bar: 64512:1234
    address-pools:
    - name: default
      protocol: bgp
      addresses:
      - 198.51.100.0/24
      bgp-advertisements:
      - aggregation-length: 32
        localpref: 100
        communities: [bar]
    - name: l2
      protocol: layer2
      addresses:
      - 192.168.1.240-192.168.1.250
"#;

fn convert(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.yaml");
    std::fs::write(&f, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("convert")
        .arg(&f)
        .output()
        .unwrap()
}

#[test]
fn legacy_configmap_converts_to_valid_crs() {
    let out = convert(CM);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("crs.yaml");
    std::fs::write(&f, &yaml).unwrap();
    let res = ferrolb_api::source::files::load_paths(&[&f]).unwrap();
    assert_eq!(res.ip_address_pools.len(), 2);
    assert_eq!(res.bgp_peers.len(), 1);
    assert_eq!(res.bgp_advertisements.len(), 1);
    assert_eq!(res.l2_advertisements.len(), 1);
    assert_eq!(res.communities.len(), 1);
    assert_eq!(res.ignored_count(), 0);
    let config = ferrolb_api::validate::validate(&res).unwrap();
    assert_eq!(
        config.bgp_advertisements["default-bgp-0"].local_pref,
        Some(100)
    );
    // And the validate command agrees.
    let v = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("validate")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{v:?}");
}

#[test]
fn invalid_legacy_config_exits_1_with_a_reason() {
    let out = convert("address-pools:\n- {name: a, protocol: ospf, addresses: [10.0.0.0/24]}\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be layer2 or bgp"));
    // Converted but invalid (overlapping pools): CRs printed, errors on stderr, exit 1.
    let out = convert(
        "address-pools:\n- {name: a, protocol: layer2, addresses: [10.0.0.0/24]}\n- {name: b, protocol: layer2, addresses: [10.0.0.0/25]}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlaps"));
}
