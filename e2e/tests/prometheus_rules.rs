//! MetalLB's alerts work unchanged on our daemons: a real Prometheus scrapes the real
//! `ferrolb-speaker` and `ferrolb-controller` (standalone mode, `--config-dir`) every 200 ms
//! and evaluates MetalLB's alert expressions as rules every 200 ms:
//!
//! - `MetalLBBGPSessionDown`: `metallb_bgp_session_up != 1` (as MetalLB's chart writes it);
//! - `MetalLBStaleConfig`: `metallb_k8s_client_config_stale_bool == 1`;
//! - `MetalLBConfigNotLoaded`: `metallb_k8s_client_config_loaded_bool == 0`.
//!
//! The speaker peers with a `ferrolb-bgp listen` on loopback. Asserted through Prometheus's
//! HTTP API (`/api/v1/query`, `/api/v1/alerts`): with the session up and a good configuration
//! a Service's VIP is `metallb_speaker_announced{protocol="bgp"}` and nothing fires; stopping the peer fires `MetalLBBGPSessionDown` for the peer
//! `127.0.0.1:<port>` (MetalLB's label format), whose FRR-mode message counters
//! (`metallb_bgp_opens_sent` ...) were scraped before; writing a rejected configuration fires
//! `MetalLBStaleConfig` for both daemons while `MetalLBConfigNotLoaded` stays quiet (the last
//! good configuration stays in force).
//!
//! Loopback only, so no root is needed; skips loudly without `prometheus` or the workspace
//! binaries (`cargo build -p ferrolb-speaker -p ferrolb-controller -p ferrolb-bgp`).
//! Prometheus's data directory is a tempdir; every daemon is killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{program_exists, wait_for, Daemon};
use serde_json::Value;

/// Bound of every wait: daemons starting, a session coming up, a scrape and a rule evaluation.
const LIMIT: Duration = Duration::from_secs(60);
const PEER_AS: u32 = 64512;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A free loopback port a BGPPeer may name: MetalLB's CRD allows `peerPort` up to 16384.
fn free_peer_port() -> u16 {
    // Start from a per-process offset so parallel test runs rarely try the same ports.
    let start = 10_000 + (std::process::id() % 5_000) as u16;
    (start..=16_384)
        .chain(1_024..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free loopback port up to 16384")
}

fn config_yaml(peer_port: u16) -> String {
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec: {{addresses: ["198.51.100.0/28"]}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: router, namespace: metallb-system}}
spec: {{myASN: 64500, peerASN: {PEER_AS}, peerAddress: 127.0.0.1, peerPort: {peer_port}, routerID: 10.255.0.2}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec: {{ipAddressPools: [pool]}}
"#
    )
}

/// A Service with its VIP in the pool and a ready endpoint on this node: announced over BGP.
const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.1}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], nodeName: node-a, conditions: {ready: true}}]
"#;

/// Rejected by validation: the last good configuration stays in force, and it is stale.
const BAD: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["not-a-cidr"]}
"#;

/// MetalLB's alert expressions, `for: 0s` so a test sees them fire at the next evaluation.
const RULES: &str = r#"groups:
- name: metallb
  rules:
  - alert: MetalLBBGPSessionDown
    expr: metallb_bgp_session_up != 1
  - alert: MetalLBStaleConfig
    expr: metallb_k8s_client_config_stale_bool == 1
  - alert: MetalLBConfigNotLoaded
    expr: metallb_k8s_client_config_loaded_bool == 0
"#;

/// Writes via a hidden temporary and a rename, so a watcher never reads half a file.
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write temporary");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// `GET path` over HTTP/1.0 (so the body is never chunked); the JSON body, or `None` when
/// Prometheus is not answering yet.
fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (_, body) = out.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Percent-encodes a PromQL expression for a query string.
fn encode(expr: &str) -> String {
    expr.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query.
fn query(prom: SocketAddr, expr: &str) -> Option<Vec<Value>> {
    let v = get_json(prom, &format!("/api/v1/query?query={}", encode(expr)))?;
    (v["status"] == "success").then(|| v["data"]["result"].as_array().cloned())?
}

/// The alerts Prometheus reports as firing.
fn firing(prom: SocketAddr) -> Option<Vec<Value>> {
    let v = get_json(prom, "/api/v1/alerts")?;
    let alerts = v["data"]["alerts"].as_array()?;
    Some(
        alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect(),
    )
}

fn named<'a>(alerts: &'a [Value], name: &str) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|a| a["labels"]["alertname"] == name)
        .collect()
}

#[test]
fn metallb_alerts_fire_on_our_metrics() {
    if !program_exists("prometheus") {
        eprintln!(
            "\n**********\nSKIPPED: metallb_alerts_fire_on_our_metrics: needs prometheus (apt-get install prometheus)\n**********\n"
        );
        return;
    }
    let (Some(speaker), Some(controller), Some(bgp)) = (
        FlbCommand::find("ferrolb-speaker"),
        FlbCommand::find("ferrolb-controller"),
        FlbCommand::find("ferrolb-bgp"),
    ) else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let logs = work.path();
    let conf = work.path().join("conf");
    std::fs::create_dir(&conf).expect("config dir");

    // The BGP peer, then the daemons with a configuration that peers with it.
    let peer_port = free_peer_port();
    let mut peer = bgp
        .args(["listen", "--listen", "127.0.0.1", "--local-as"])
        .arg(PEER_AS.to_string())
        .arg("--port")
        .arg(peer_port.to_string())
        .spawn("peer", logs)
        .expect("ferrolb-bgp listen starts");
    write(&conf, "config.yaml", &config_yaml(peer_port));
    write(&conf, "service.yaml", SERVICE);
    let speaker = speaker
        .speaker_standalone(&conf, "node-a")
        .args(["--memberlist-port", "0"])
        .spawn("speaker", logs)
        .expect("speaker starts");
    let controller = controller
        .arg("--config-dir")
        .arg(&conf)
        .args(["--poll-ms", "50", "--metrics-addr", "127.0.0.1:0"])
        .spawn("controller", logs)
        .expect("controller starts");
    let speaker_metrics = speaker.metrics_addr(LIMIT).expect("speaker metrics bound");
    let controller_metrics = controller
        .metrics_addr(LIMIT)
        .expect("controller metrics bound");
    peer.wait_log(LIMIT, "\"established\"")
        .expect("the speaker's session comes up");

    // Prometheus on loopback, scraping both every 200 ms, evaluating MetalLB's rules.
    let prom_dir = work.path().join("prometheus");
    std::fs::create_dir(&prom_dir).expect("prometheus dir");
    write(&prom_dir, "rules.yml", RULES);
    write(
        &prom_dir,
        "prometheus.yml",
        &format!(
            "global: {{scrape_interval: 200ms, scrape_timeout: 200ms, evaluation_interval: 200ms}}\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n\
             - job_name: speaker\n  static_configs: [{{targets: ['{speaker_metrics}']}}]\n\
             - job_name: controller\n  static_configs: [{{targets: ['{controller_metrics}']}}]\n",
            rules = prom_dir.join("rules.yml").display()
        ),
    );
    let prom = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!(
        "--config.file={}",
        prom_dir.join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        prom_dir.join("data").display()
    ))
    .arg(format!("--web.listen-address={prom}"));
    let _prometheus = Daemon::spawn("prometheus", cmd, &logs.join("prometheus.log"))
        .expect("prometheus starts")
        .kill_on_drop();

    // 1. Session up, configuration good: the series are there and nothing fires.
    let peer_label = format!("127.0.0.1:{peer_port}");
    wait_for(LIMIT, "metallb_bgp_session_up == 1 scraped", || {
        query(prom, "metallb_bgp_session_up == 1")?
            .iter()
            .any(|s| s["metric"]["peer"] == peer_label.as_str())
            .then_some(())
    });
    wait_for(LIMIT, "both daemons' config_loaded_bool == 1", || {
        let r = query(prom, "metallb_k8s_client_config_loaded_bool == 1")?;
        (r.len() == 2).then_some(())
    });
    wait_for(LIMIT, "the VIP announced over BGP, one prefix sent", || {
        let announced = query(
            prom,
            r#"metallb_speaker_announced{protocol="bgp",service="default/web",ip="198.51.100.1",node="node-a"} == 1"#,
        )?;
        let sent = query(prom, "metallb_bgp_announced_prefixes_total == 1")?;
        (announced.len() == 1 && sent.len() == 1).then_some(())
    });
    // MetalLB's FRR-mode message counters, labelled `peer` and `vrf` as MetalLB's: one OPEN
    // each way, KEEPALIVEs each way, our UPDATE (and End-of-RIBs) counted in the total.
    for expr in [
        "metallb_bgp_opens_sent == 1",
        "metallb_bgp_opens_received == 1",
        "metallb_bgp_keepalives_sent >= 1",
        "metallb_bgp_keepalives_received >= 1",
        "metallb_bgp_total_sent >= 3",
        "metallb_bgp_total_received >= 2",
        "metallb_bgp_notifications_sent == 0",
        "metallb_bgp_route_refresh_sent == 0",
        "metallb_bgp_updates_total_received >= 0",
    ] {
        let series = wait_for(LIMIT, expr, || {
            let r = query(prom, expr)?;
            (r.len() == 1).then_some(r)
        });
        assert_eq!(series[0]["metric"]["peer"], peer_label.as_str(), "{expr}");
        assert_eq!(series[0]["metric"]["vrf"], "default", "{expr}");
    }
    let alerts = firing(prom).expect("alerts answer");
    assert!(
        alerts.is_empty(),
        "nothing fires while all is well: {alerts:#?}"
    );

    // 2. The peer goes away: MetalLBBGPSessionDown fires for it.
    peer.kill();
    let alerts = wait_for(LIMIT, "MetalLBBGPSessionDown firing", || {
        let alerts = firing(prom)?;
        (!named(&alerts, "MetalLBBGPSessionDown").is_empty()).then_some(alerts)
    });
    let down = named(&alerts, "MetalLBBGPSessionDown");
    assert_eq!(down.len(), 1, "{alerts:#?}");
    assert_eq!(
        down[0]["labels"]["peer"],
        peer_label.as_str(),
        "{alerts:#?}"
    );
    assert_eq!(down[0]["labels"]["job"], "speaker", "{alerts:#?}");

    // 3. A rejected configuration: MetalLBStaleConfig fires for both daemons, while the last
    //    good configuration stays loaded.
    write(&conf, "config.yaml", BAD);
    let alerts = wait_for(LIMIT, "MetalLBStaleConfig firing for both daemons", || {
        let alerts = firing(prom)?;
        (named(&alerts, "MetalLBStaleConfig").len() == 2).then_some(alerts)
    });
    let mut jobs: Vec<String> = named(&alerts, "MetalLBStaleConfig")
        .iter()
        .map(|a| a["labels"]["job"].as_str().unwrap_or_default().to_owned())
        .collect();
    jobs.sort();
    assert_eq!(jobs, ["controller", "speaker"], "{alerts:#?}");
    assert!(
        named(&alerts, "MetalLBConfigNotLoaded").is_empty(),
        "the last good configuration stays loaded: {alerts:#?}"
    );
    let errors = query(prom, "metallb_k8s_client_update_errors_total > 0").expect("query");
    assert_eq!(
        errors.len(),
        2,
        "both daemons count the rejection: {errors:#?}"
    );
}
