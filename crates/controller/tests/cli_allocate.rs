//! Runs the real `ferrolb-controller allocate --config-dir DIR` binary on temporary directories and
//! checks its output contract: one JSON object per handled LoadBalancer Service, sorted
//! by namespace/name, with `ips` + `pool` or `error`; exit 0.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

const POOLS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: small, namespace: metallb-system}
spec:
  addresses: [10.0.0.0/31]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: dual, namespace: metallb-system}
spec:
  addresses: [10.1.0.0/30, "fd00::/126"]
  autoAssign: false
"#;

fn run(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"))
        .arg("allocate")
        .arg("--config-dir")
        .arg(dir)
        .output()
        .expect("run ferrolb-controller")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

#[test]
fn adopts_status_ips_first_then_serves_in_file_order_sorted_output() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "10-pools.yaml", POOLS);
    write(
        dir.path(),
        "20-services.yaml",
        r#"
apiVersion: v1
kind: Service
metadata: {name: b-first, namespace: web}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: c-holder, namespace: web}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 10.0.0.0}]}}
---
apiVersion: v1
kind: Service
metadata: {name: a-late, namespace: web}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: internal, namespace: web}
spec: {type: ClusterIP, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: other-class, namespace: web}
spec: {type: LoadBalancer, loadBalancerClass: example.com/lb, ports: [{port: 80}]}
"#,
    );
    let out = run(dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines(&out),
        vec![
            json!({"namespace": "web", "name": "a-late",
                   "error": "no free IPv4 address in pool(s) small"}),
            json!({"namespace": "web", "name": "b-first", "ips": ["10.0.0.1"], "pool": "small"}),
            json!({"namespace": "web", "name": "c-holder", "ips": ["10.0.0.0"], "pool": "small"}),
        ]
    );
    // The documented key order, for scripts that do not parse JSON.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(r#"{"namespace":"web","name":"a-late","error":"#),
        "{text}"
    );
}

#[test]
fn sharing_requests_pools_and_dual_stack_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pools.yaml", POOLS);
    write(
        dir.path(),
        "svcs.yaml",
        r#"
apiVersion: v1
kind: Service
metadata:
  name: dns-tcp
  namespace: net
  annotations: {metallb.io/allow-shared-ip: dns}
spec: {type: LoadBalancer, ports: [{port: 53, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata:
  name: dns-udp
  namespace: net
  annotations: {metallb.universe.tf/allow-shared-ip: dns}
spec: {type: LoadBalancer, ports: [{port: 53, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata:
  name: wants-taken
  namespace: net
  annotations: {metallb.io/loadBalancerIPs: 10.0.0.0}
spec: {type: LoadBalancer, ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata:
  name: both
  namespace: net
  annotations: {metallb.io/address-pool: dual}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv6, IPv4]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: bad-ip
  namespace: net
  annotations: {metallb.io/loadBalancerIPs: not-an-ip}
spec: {type: LoadBalancer}
"#,
    );
    let out = run(dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    let names: Vec<&str> = got.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(
        names,
        ["bad-ip", "both", "dns-tcp", "dns-udp", "wants-taken"]
    );
    assert!(
        got[0]["error"].as_str().unwrap().contains("\"not-an-ip\""),
        "{}",
        got[0]
    );
    assert_eq!(
        got[1],
        json!({"namespace": "net", "name": "both",
                              "ips": ["fd00::", "10.1.0.0"], "pool": "dual"})
    );
    assert_eq!(got[2]["ips"], json!(["10.0.0.0"]));
    assert_eq!(got[3]["ips"], json!(["10.0.0.0"]), "shares with dns-tcp");
    let taken = got[4]["error"].as_str().unwrap();
    assert!(
        taken.contains("10.0.0.0") && taken.contains("net/dns-tcp"),
        "{taken}"
    );
}

/// One directory showing each of MetalLB's address choices that FerroLB reproduces.
const METALLB_RULES: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ordered, namespace: metallb-system}
spec:
  addresses: [10.0.9.0/31, 10.0.1.0/31]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: prio-zero, namespace: metallb-system}
spec:
  addresses: [10.2.0.0/32]
  serviceAllocation: {priority: 0, namespaces: [prio]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: prio-ten, namespace: metallb-system}
spec:
  addresses: [10.3.0.0/32]
  serviceAllocation: {priority: 10, namespaces: [prio]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: dual, namespace: metallb-system}
spec:
  addresses: [10.4.0.0/31, "fd00:4::/127"]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: shared, namespace: metallb-system}
spec:
  addresses: [10.5.0.0/29]
  autoAssign: false
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: order, annotations: {metallb.io/address-pool: ordered}}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: order, annotations: {metallb.io/address-pool: ordered}}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: c, namespace: order, annotations: {metallb.io/address-pool: ordered}}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: first, namespace: prio}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: second, namespace: prio}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: grows, namespace: dual, annotations: {metallb.io/address-pool: dual}}
spec:
  type: LoadBalancer
  ipFamilyPolicy: PreferDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{port: 80}]
status: {loadBalancer: {ingress: [{ip: 10.4.0.1}]}}
---
apiVersion: v1
kind: Service
metadata:
  name: holder
  namespace: share
  annotations: {metallb.io/allow-shared-ip: k, metallb.io/loadBalancerIPs: 10.5.0.3}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata:
  name: joiner
  namespace: share
  annotations: {metallb.io/allow-shared-ip: k, metallb.io/address-pool: shared}
spec: {type: LoadBalancer, ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata:
  name: opt-in
  namespace: share
  annotations:
    metallb.io/allow-shared-ip: k
    metallb.io/address-pool: shared
    ferrolb.io/prefer-shared-ip: "true"
spec: {type: LoadBalancer, ports: [{port: 443}]}
"#;

#[test]
fn metallb_address_choices_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "all.yaml", METALLB_RULES);
    let out = run(dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |ns: &str, name: &str, ips: &[&str], pool: &str| json!({"namespace": ns, "name": name, "ips": ips, "pool": pool});
    assert_eq!(
        lines(&out),
        vec![
            // PreferDualStack holding one family keeps it and gains the other.
            line("dual", "grows", &["10.4.0.1", "fd00:4::"], "dual"),
            // spec.addresses order, lowest first inside an entry.
            line("order", "a", &["10.0.9.0"], "ordered"),
            line("order", "b", &["10.0.9.1"], "ordered"),
            line("order", "c", &["10.0.1.0"], "ordered"),
            // priority 10 before priority 0 (= unset).
            line("prio", "first", &["10.3.0.0"], "prio-ten"),
            line("prio", "second", &["10.2.0.0"], "prio-zero"),
            line("share", "holder", &["10.5.0.3"], "shared"),
            // The lowest usable address, not the shared 10.5.0.3.
            line("share", "joiner", &["10.5.0.0"], "shared"),
            // The opt-in joins the shared IP it may join (10.5.0.0 has its port 443 taken).
            line("share", "opt-in", &["10.5.0.3"], "shared"),
        ]
    );
}

#[test]
fn invalid_configuration_is_an_error_not_a_preview() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: broken, namespace: metallb-system}
spec:
  addresses: [10.0.0.0/33]
"#,
    );
    let out = run(dir.path());
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken"));
}
