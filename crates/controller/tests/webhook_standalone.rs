//! The admission webhook of the real `ferrolb-controller` in standalone mode
//! (`--config-dir DIR --webhook-addr 127.0.0.1:0 --cert-dir CERTS`): AdmissionReviews over TLS,
//! verified with the CA that signed `CERTS/tls.crt`, judged against the objects in `DIR`; and a
//! certificate replaced in `CERTS` is served from the next connection on, without a restart.

use std::path::Path;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use ferrolb_controller::webhook::certs::{self, Bundle};
use ferrolb_e2e::logged::{spawn_logged, wait_line, KillOnDrop};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(20);
const SERVICE: &str = "ferrolb-webhook-service";
const NS: &str = "metallb-system";

const POOL: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first, namespace: metallb-system}
spec:
  addresses: [192.0.2.0/24]
"#;

/// The running controller; killed on drop, also when a test panics.
struct Controller {
    _daemon: KillOnDrop,
    log: mpsc::Receiver<String>,
}

impl Controller {
    fn start(dir: &Path, certs: &Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrolb-controller"));
        cmd.arg("--config-dir")
            .arg(dir)
            .args(["--webhook-addr", "127.0.0.1:0", "--poll-ms", "50"])
            .arg("--cert-dir")
            .arg(certs);
        let (_daemon, log) = spawn_logged(cmd, "controller");
        Self { _daemon, log }
    }

    fn wait_log(&self, text: &str) -> String {
        wait_line(&self.log, text, DEADLINE)
    }
}

fn write_certs(dir: &Path) -> Bundle {
    let b = certs::generate(&certs::dns_names(SERVICE, NS), SystemTime::now()).expect("certs");
    std::fs::write(dir.join(certs::TLS_CRT), &b.tls_crt).expect("write crt");
    std::fs::write(dir.join(certs::TLS_KEY), &b.tls_key).expect("write key");
    b
}

fn review(op: &str, object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{}", object["metadata"]["name"].as_str().unwrap_or("")),
            "kind": {"group": "metallb.io", "version": "v1beta1", "kind": "IPAddressPool"},
            "resource": {"group": "metallb.io", "version": "v1beta1", "resource": "ipaddresspools"},
            "name": object["metadata"]["name"], "namespace": NS,
            "operation": op, "userInfo": {"username": "admin"},
            "object": object, "dryRun": false,
        }
    })
}

fn pool(name: &str, cidr: &str) -> Value {
    json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"addresses": [cidr]},
    })
}

/// POSTs `body` to `path` over TLS, trusting only `ca_pem`; the status line's code and the
/// JSON body.
async fn post(port: u16, ca_pem: &str, path: &str, body: &Value) -> Result<(u16, Value), String> {
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
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(format!("{SERVICE}.{NS}.svc")).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {SERVICE}.{NS}.svc\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(&body).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    // The server closes after the response (Connection: close); a TLS close_notify may be
    // missing, which is not an error for a response already read in full.
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    let value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    Ok((code, value))
}

const PATH: &str = "/validate-metallb-io-v1beta1-ipaddresspool";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_webhook_judges_against_the_config_dir_and_reloads_its_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pool.yaml"), POOL).expect("write");
    let first = write_certs(certs_dir.path());
    let c = Controller::start(dir.path(), certs_dir.path());
    let line = c.wait_log("serving the admission webhook");
    let port: u16 = line
        .split("addr=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    c.wait_log("configuration put in force");

    let (code, v) = post(
        port,
        &first.ca_crt,
        PATH,
        &review("CREATE", &pool("second", "192.0.2.128/25")),
    )
    .await
    .expect("post");
    assert_eq!(code, 200);
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["response"]["uid"], "uid-second");
    assert_eq!(v["response"]["allowed"], false, "{v}");
    assert_eq!(v["response"]["status"]["code"], 403);
    let msg = v["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    for needle in ["192.0.2.128/25", "first", "second"] {
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    }

    let (_, v) = post(
        port,
        &first.ca_crt,
        PATH,
        &review("CREATE", &pool("third", "198.51.100.0/24")),
    )
    .await
    .expect("post");
    assert_eq!(v["response"]["allowed"], true, "{v}");
    assert_eq!(v["response"]["uid"], "uid-third");

    // Another path of the six, an unknown path.
    let (code, _) = post(port, &first.ca_crt, "/validate-nothing", &json!({}))
        .await
        .expect("post");
    assert_eq!(code, 404);

    // A new certificate from another CA: served from the next handshake on.
    let second = write_certs(certs_dir.path());
    let deadline = Instant::now() + DEADLINE;
    loop {
        match post(
            port,
            &second.ca_crt,
            PATH,
            &review("CREATE", &pool("fourth", "203.0.113.0/24")),
        )
        .await
        {
            Ok((_, v)) => {
                assert_eq!(v["response"]["allowed"], true, "{v}");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet the new certificate: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the new certificate was never served: {e}"),
        }
    }
    let old = post(
        port,
        &first.ca_crt,
        PATH,
        &review("CREATE", &pool("fifth", "203.0.113.0/24")),
    )
    .await;
    assert!(old.is_err(), "the old CA still verifies: {old:?}");
}
