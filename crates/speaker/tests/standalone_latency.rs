//! Measurement, not a test (`#[ignore]`; timings are never assertions): time from a Service
//! file appearing in `--config-dir` to its route arriving at a loopback BGP listener, over 100
//! Services added one at a time. Prints p50/p99 for docs/speaker.md. Changes reach the daemon
//! through inotify; `FERROLB_POLL_MS` (default 250, the daemon's default) sets the fallback
//! poll period.
//!
//! ```sh
//! cargo build --release -p ferrolb-speaker
//! FERROLB_SPEAKER_BIN=target/release/ferrolb-speaker \
//!   cargo test -p ferrolb-speaker --test standalone_latency -- --ignored --nocapture
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_bgp::event::EventKind;
use ferrolb_bgp::speaker::{PeerConfig, SpeakerConfig};
use ferrolb_speaker::demo::start_listener;
use ipnet::IpNet;

const N: usize = 100;

fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand, see the module doc"]
async fn service_file_to_route_latency() {
    let mut cfg = SpeakerConfig::new(64512);
    cfg.router_id = Some(Ipv4Addr::new(10, 255, 0, 1));
    cfg.accept_unknown = Some(PeerConfig {
        passive: true,
        peer_as: None,
        deliver_updates: true,
        ..PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let (_router, mut events, port) = start_listener(cfg).await.expect("listener");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "config.yaml", &format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: pool, namespace: metallb-system}}\nspec: {{addresses: [\"198.51.100.0/24\"]}}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router, namespace: metallb-system}}\nspec: {{myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: {port}, routerID: 10.255.0.2}}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: adv, namespace: metallb-system}}\nspec: {{ipAddressPools: [pool]}}\n"
    ));
    let bin = std::env::var("FERROLB_SPEAKER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferrolb-speaker").to_string());
    let poll = std::env::var("FERROLB_POLL_MS").unwrap_or_else(|_| "250".into());
    let mut child = Command::new(&bin)
        .arg("--config-dir")
        .arg(dir)
        .args([
            "--node-name",
            "node-a",
            "--metrics-addr",
            "127.0.0.1:0",
            "--poll-ms",
            &poll,
        ])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Session up before measuring.
    let limit = Duration::from_secs(15);
    loop {
        let ev = tokio::time::timeout(limit, events.recv())
            .await
            .expect("up")
            .expect("events");
        if matches!(ev.kind, EventKind::Up { .. }) {
            break;
        }
    }
    let mut samples = Vec::with_capacity(N);
    for i in 0..N {
        let ip = format!("198.51.100.{}", i + 1);
        let want = IpNet::from(ip.parse::<IpAddr>().expect("ip"));
        let text = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: Cluster, ports: [{{port: 80}}]}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s{i}-x, namespace: default, labels: {{kubernetes.io/service-name: s{i}}}}}\naddressType: IPv4\nendpoints: [{{addresses: [10.0.0.1], nodeName: node-a, conditions: {{ready: true}}}}]\n"
        );
        let start = Instant::now();
        write(dir, &format!("svc-{i:03}.yaml"), &text);
        'wait: loop {
            let ev = tokio::time::timeout(limit, events.recv())
                .await
                .expect("route in time")
                .expect("events");
            if let EventKind::UpdateReceived {
                update: Some(u), ..
            } = ev.kind
            {
                if u.announced().any(|p| p == want) {
                    break 'wait;
                }
            }
        }
        samples.push(start.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "poll {poll} ms, {N} Services: p50 {:?}, p99 {:?}, max {:?}",
        pick(0.5),
        pick(0.99),
        samples[N - 1]
    );
}
