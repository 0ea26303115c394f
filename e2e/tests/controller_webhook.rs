//! The real `ferrolb-controller` in Kubernetes mode against the API-server test double: the
//! admission webhook's cert rotation (Secret created, `caBundle` set on the
//! ValidatingWebhookConfiguration of deploy/ferrolb.yaml, an AdmissionReview over TLS verified
//! with that CA and judged against the watched objects; a second replica serves the same
//! certificate), the controller's ConfigurationState (Valid, then Invalid with the error) and
//! the IPAddressPool status counters.
//!
//! No root needed: everything is on 127.0.0.1. Waits use `ApiServer::wait_for_object`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_e2e::apiserver::ApiServer;
use ferrolb_e2e::{wait_for, workspace_bin, Daemon};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{json, Value};

const NS: &str = "metallb-system";
const T: Duration = Duration::from_secs(20);
const SECRET: &str = "ferrolb-webhook-cert";
const VWC: &str = "ferrolb-webhook-configuration";
const SNI: &str = "ferrolb-webhook-service.metallb-system.svc";

const FIXTURES: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: metallb-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec:
  addresses: [192.0.2.0/29]
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The ValidatingWebhookConfiguration exactly as deploy/ferrolb.yaml ships it.
fn shipped_vwc() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/ferrolb.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/ferrolb.yaml");
    text.split("\n---\n")
        .filter_map(|d| serde_yaml_ng::from_str::<Value>(d).ok())
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("a ValidatingWebhookConfiguration in deploy/ferrolb.yaml")
}

struct Controller {
    _daemon: Daemon,
    webhook_port: u16,
}

fn start(dir: &Path, identity: &str) -> Controller {
    let bin = workspace_bin("ferrolb-controller").expect("build ferrolb-controller first");
    let webhook_port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .args(["--namespace", NS, "--identity", identity])
        .args(["--lease-duration-secs", "2"])
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--webhook-addr")
        .arg(format!("127.0.0.1:{webhook_port}"))
        .args(["--log-level", "info,ferrolb_controller=debug"])
        .env("NO_COLOR", "1");
    let log = dir.join(format!("{identity}.log"));
    Controller {
        _daemon: Daemon::spawn(identity, cmd, &log).expect("spawn controller"),
        webhook_port,
    }
}

fn secret_pem(secret: &Value, key: &str) -> String {
    let s: Secret = serde_json::from_value(secret.clone()).expect("a Secret");
    let bytes = s
        .data
        .and_then(|d| d.get(key).cloned())
        .unwrap_or_else(|| panic!("Secret lacks {key}"));
    String::from_utf8(bytes.0).expect("PEM is text")
}

/// POSTs an AdmissionReview over TLS trusting only `ca_pem`; the response review, or why not.
fn post(port: u16, ca_pem: &str, path: &str, review: &Value) -> Result<Value, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(SNI).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let body = serde_json::to_vec(review).map_err(|e| e.to_string())?;
    write!(
        tls,
        "POST {path} HTTP/1.1\r\nHost: {SNI}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    tls.write_all(&body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    // A response read in full counts even without a TLS close_notify.
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let (_, body) = text.split_once("\r\n\r\n").ok_or("no response")?;
    serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))
}

fn pool_review(name: &str, cidr: &str) -> Value {
    let pool = json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"addresses": [cidr]},
    });
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{name}"),
            "kind": {"group": "metallb.io", "version": "v1beta1", "kind": "IPAddressPool"},
            "resource": {"group": "metallb.io", "version": "v1beta1", "resource": "ipaddresspools"},
            "name": name, "namespace": NS, "operation": "CREATE",
            "userInfo": {"username": "admin"}, "object": pool, "dryRun": false,
        }
    })
}

/// The API-server double holding [`FIXTURES`] and a directory with its `kubeconfig`; `None`
/// (said loudly) when the controller binary is not built.
fn api_with_fixtures() -> Option<(ApiServer, tempfile::TempDir)> {
    if let Err(e) = workspace_bin("ferrolb-controller") {
        eprintln!("SKIPPED: {e}");
        return None;
    }
    let api = ApiServer::start().expect("start the API-server double");
    let dir = tempfile::tempdir().expect("tempdir");
    api.write_kubeconfig(&dir.path().join("kubeconfig"))
        .expect("kubeconfig");
    api.apply_yaml(FIXTURES).expect("fixtures");
    Some((api, dir))
}

const PATH: &str = "/validate-metallb-io-v1beta1-ipaddresspool";

/// The webhook's review of pool `name` at `cidr` once it decides: `None` while it answers
/// nothing or a 503 review (configuration or certificate not loaded yet).
fn decision(c: &Controller, ca: &str, name: &str, cidr: &str) -> Option<Value> {
    post(c.webhook_port, ca, PATH, &pool_review(name, cidr))
        .ok()
        .filter(|v| v["response"]["status"]["code"] != 503)
}

#[test]
fn cert_rotation_sets_the_ca_bundle_and_the_webhook_answers_over_tls() {
    let Some((api, dir)) = api_with_fixtures() else {
        return;
    };
    api.apply(shipped_vwc());
    let a = start(dir.path(), "ctl-a");

    let secret = api
        .wait_for_object("v1", "Secret", Some(NS), SECRET, T, |s| {
            s["data"]["ca.crt"].is_string() && s["data"]["tls.crt"].is_string()
        })
        .expect("the webhook Secret is created");
    let ca = secret_pem(&secret, "ca.crt");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    for key in ["ca.key", "tls.key"] {
        assert!(secret_pem(&secret, key).contains("PRIVATE KEY"), "{key}");
    }
    let ca_b64 = secret["data"]["ca.crt"].clone();
    let vwc = api
        .wait_for_object(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            None,
            VWC,
            T,
            |v| {
                v["webhooks"].as_array().is_some_and(|hooks| {
                    hooks
                        .iter()
                        .all(|h| h["clientConfig"]["caBundle"] == ca_b64)
                })
            },
        )
        .expect("caBundle set on every webhook");
    assert_eq!(vwc["webhooks"].as_array().map(Vec::len), Some(6));

    // Served with that CA, judged against the watched pool `lab`. Until the configuration is
    // read (and the certificate loaded) the answer may be a 503 review or no TLS yet.
    let denied = wait_for(T, "an admission decision over TLS", || {
        decision(&a, &ca, "second", "192.0.2.4/30")
    });
    assert_eq!(denied["response"]["uid"], "uid-second");
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    let msg = denied["response"]["status"]["message"]
        .as_str()
        .unwrap_or("");
    for needle in ["192.0.2.4/30", "lab", "second"] {
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    }
    let allowed = post(
        a.webhook_port,
        &ca,
        PATH,
        &pool_review("third", "198.51.100.0/24"),
    )
    .expect("post");
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");

    // A second replica adopts the Secret: same certificate, nothing rewritten.
    let rv = secret["metadata"]["resourceVersion"].clone();
    let b = start(dir.path(), "ctl-b");
    let from_b = wait_for(T, "the second replica's webhook", || {
        decision(&b, &ca, "fourth", "198.51.100.0/24")
    });
    assert_eq!(from_b["response"]["allowed"], true, "{from_b}");
    let now = api.get("v1", "Secret", Some(NS), SECRET).expect("Secret");
    assert_eq!(
        now["metadata"]["resourceVersion"], rv,
        "the Secret was rewritten"
    );
}

#[test]
fn configuration_state_and_pool_status_are_written_by_the_leader() {
    let Some((api, dir)) = api_with_fixtures() else {
        return;
    };
    let _c = start(dir.path(), "ctl-a");

    let state = api
        .wait_for_object(
            "metallb.io/v1beta1",
            "ConfigurationState",
            Some(NS),
            "controller",
            T,
            |s| s["status"]["result"] == "Valid",
        )
        .expect("ConfigurationState controller Valid");
    assert_eq!(
        state["metadata"]["labels"]["metallb.io/component-type"],
        "controller"
    );

    api.wait_for_object(
        "metallb.io/v1beta1",
        "IPAddressPool",
        Some(NS),
        "lab",
        T,
        |p| p["status"]["availableIPv4"] == 8 && p["status"]["assignedIPv4"] == 0,
    )
    .expect("the pool's counters before any Service");
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "a", "namespace": "web"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    }));
    let pool = api
        .wait_for_object(
            "metallb.io/v1beta1",
            "IPAddressPool",
            Some(NS),
            "lab",
            T,
            |p| p["status"]["assignedIPv4"] == 1,
        )
        .expect("one address assigned");
    assert_eq!(pool["status"]["availableIPv4"], 7, "{pool}");
    assert_eq!(pool["status"]["assignedIPv6"], 0);
    assert_eq!(pool["status"]["availableIPv6"], 0);

    // An invalid pool: Invalid with the error, while the last good configuration stays.
    api.apply_yaml(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: broken, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/33]}\n",
    )
    .expect("apply");
    let state = api
        .wait_for_object(
            "metallb.io/v1beta1",
            "ConfigurationState",
            Some(NS),
            "controller",
            T,
            |s| s["status"]["result"] == "Invalid",
        )
        .expect("ConfigurationState Invalid");
    let summary = state["status"]["errorSummary"].as_str().unwrap_or("");
    assert!(summary.contains("192.0.2.0/33"), "{summary:?}");
}
