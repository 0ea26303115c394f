//! `ferrolb-speaker demo`: FerroLB end to end in one process, on loopback, without root or a
//! cluster.
//!
//! 1. A BGP listener (crates/bgp in collector mode) on 127.0.0.1, any free port, plays the
//!    router and prints every UPDATE it receives.
//! 2. The controller's [`PoolAllocator`] assigns IPs from a demo pool to three demo Services
//!    (as `ferrolb-controller` writes to `status.loadBalancer.ingress`).
//! 3. The speaker's reconcile loop computes what to announce and the BGP backend announces it
//!    to the listener, with the communities of the demo BGPAdvertisement.
//! 4. One Service is deleted; the listener shows the withdraw. Then Cease and exit 0.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_allocator::{from_k8s as alloc_k8s, PoolAllocator, ServiceState};
use ferrolb_api::source::{files::load_str, Resources};
use ferrolb_api::validate::validate;
use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{MpNextHop, Update};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
use tokio::sync::mpsc;

use crate::announce::SpeakerOptions;
use crate::backend::bgp::{BgpAdvertiser, BgpBackend, BgpBackendOptions};
use crate::channels::SourceUpdate;
use crate::daemon::reconcile::Reconciler;
use crate::metrics::Metrics;
use crate::protocol::bgp::{summary, BgpProtocol};

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The embedded manifests did not load or validate (a bug in the demo).
    #[error("demo manifests: {0}")]
    Manifests(String),
    /// The listener could not start.
    #[error("BGP listener: {0}")]
    Listener(#[from] ferrolb_bgp::speaker::SpeakerError),
    /// A step did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The allocator gave no IP to a demo Service.
    #[error("allocation for {service}: {reason}")]
    Allocation { service: String, reason: String },
}

const LISTENER_AS: u32 = 64512;
const STEP_LIMIT: Duration = Duration::from_secs(10);

/// The demo configuration; `{PORT}` is the listener's port.
const MANIFESTS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: demo-pool, namespace: metallb-system}
spec:
  addresses: ["198.51.100.10-198.51.100.20"]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: demo-router, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64512
  peerAddress: 127.0.0.1
  peerPort: {PORT}
  routerID: 10.255.0.2
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: demo-adv, namespace: metallb-system}
spec:
  ipAddressPools: [demo-pool]
  communities: ["64500:100", "large:64500:7:1"]
---
apiVersion: v1
kind: Node
metadata: {name: demo-node, labels: {kubernetes.io/hostname: demo-node}}
"#;

fn service_yaml(name: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: demo}}
spec:
  type: LoadBalancer
  ports: [{{port: 80, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: demo
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  nodeName: demo-node
  conditions: {{ready: true}}
"#
    )
}

/// The demo Services.
pub const SERVICES: [&str; 3] = ["web", "api", "shop"];

/// Builds the demo's resources with the listener's port and allocates the Services' IPs.
fn resources(port: u16, out: &mut String) -> Result<Resources, DemoError> {
    let mut text = MANIFESTS.replace("{PORT}", &port.to_string());
    for s in SERVICES {
        text.push_str(&service_yaml(s));
    }
    let mut res =
        load_str(&text, Path::new("demo")).map_err(|e| DemoError::Manifests(e.to_string()))?;
    let config = validate(&res).map_err(|errs| {
        DemoError::Manifests(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let mut alloc = PoolAllocator::new(None);
    alloc.set_config(&config);
    for svc in &mut res.services {
        let parsed = alloc_k8s::service_from_k8s(svc, &Default::default())
            .map_err(|e| DemoError::Manifests(e.to_string()))?;
        let key = parsed.key.to_string();
        let decision = alloc.upsert(parsed);
        let ServiceState::Assigned(a) = decision.state else {
            return Err(DemoError::Allocation {
                service: key,
                reason: format!("{:?}", decision.state),
            });
        };
        let _ = writeln!(
            out,
            "controller: {key:<10} <- {:?} from pool {}",
            a.ips, a.pool
        );
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(
                    a.ips
                        .iter()
                        .map(|ip| LoadBalancerIngress {
                            ip: Some(ip.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }),
            ..Default::default()
        });
    }
    Ok(res)
}

fn describe(update: &Update) -> Vec<String> {
    let mut lines = Vec::new();
    let communities: Vec<String> = update
        .attrs
        .communities
        .iter()
        .flatten()
        .map(|c| format!("{}:{}", c.0 >> 16, c.0 & 0xffff))
        .chain(update.attrs.large_communities.iter().flatten().map(|l| {
            format!(
                "large:{}:{}:{}",
                l.global_admin, l.local_data_1, l.local_data_2
            )
        }))
        .collect();
    let mp_nh = update.mp_reach.as_ref().map(|r| match r.next_hop {
        MpNextHop::V4(v4) => IpAddr::V4(v4),
        MpNextHop::V6 { global, .. } => IpAddr::V6(global),
        #[allow(unreachable_patterns)]
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    for prefix in update.announced() {
        let nh = match prefix {
            IpNet::V4(_) => update.attrs.next_hop.map(IpAddr::V4).or(mp_nh),
            IpNet::V6(_) => mp_nh,
        };
        let nh = nh.map_or_else(|| "-".to_string(), |n| n.to_string());
        lines.push(format!(
            "router: ANNOUNCE {prefix:<18} next-hop {nh:<10} communities [{}]",
            communities.join(" ")
        ));
    }
    for prefix in update.withdrawn_prefixes() {
        lines.push(format!("router: WITHDRAW {prefix}"));
    }
    lines
}

/// Prints the listener's UPDATEs until every prefix in `announced` is held and none of
/// `withdrawn` is, or the step limit passes.
async fn await_rib(
    events: &mut mpsc::Receiver<SpeakerEvent>,
    rib: &mut BTreeSet<IpNet>,
    want: &BTreeSet<IpNet>,
    what: &'static str,
) -> Result<(), DemoError> {
    let deadline = tokio::time::Instant::now() + STEP_LIMIT;
    while rib != want {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| DemoError::Timeout(what))?
            .ok_or(DemoError::Timeout(what))?;
        match ev.kind {
            EventKind::UpdateReceived {
                update: Some(u), ..
            } => {
                for line in describe(&u) {
                    println!("{line}");
                }
                rib.extend(u.announced());
                for p in u.withdrawn_prefixes() {
                    rib.remove(&p);
                }
            }
            EventKind::Up { peer_as, .. } => {
                println!("router: session with AS{peer_as} ({}) Established", ev.peer);
            }
            _ => {}
        }
    }
    Ok(())
}

fn vip_prefix(ip: &str) -> Option<IpNet> {
    ip.parse::<IpAddr>().ok().map(IpNet::from)
}

fn prefixes(res: &Resources) -> BTreeSet<IpNet> {
    res.services
        .iter()
        .filter_map(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref())
        .flatten()
        .filter_map(|i| vip_prefix(i.ip.as_deref()?))
        .collect()
}

/// Starts a crates/bgp speaker listening on 127.0.0.1 at a free port that a BGPPeer can name:
/// MetalLB's CRD limits `peerPort` to 1..=16384, so port 0 (an ephemeral port) will not do.
/// Tries at most 64 ports spread over 10000..16384 from a per-process start.
pub async fn start_listener(
    mut cfg: SpeakerConfig,
) -> Result<(Speaker, mpsc::Receiver<SpeakerEvent>, u16), DemoError> {
    let start = std::process::id() as usize;
    let mut last = None;
    for i in 0..64usize {
        let port = 10_000 + (start.wrapping_mul(31).wrapping_add(i * 101) % 6_384) as u16;
        cfg.listen = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))];
        match Speaker::start(cfg.clone()).await {
            Ok((speaker, events)) => return Ok((speaker, events, port)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(DemoError::Timeout("a free port"), DemoError::Listener))
}

/// Runs the demo, printing to stdout.
pub async fn run() -> Result<(), DemoError> {
    // The router: a passive collector on loopback that accepts any AS.
    let mut cfg = SpeakerConfig::new(LISTENER_AS);
    cfg.router_id = Some(Ipv4Addr::new(10, 255, 0, 1));
    cfg.accept_unknown = Some(PeerConfig {
        passive: true,
        peer_as: None,
        deliver_updates: true,
        ..PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
    });
    let (router, mut events, port) = start_listener(cfg).await?;
    println!("router: BGP listener AS{LISTENER_AS} on 127.0.0.1:{port}");

    let mut out = String::new();
    let mut res = resources(port, &mut out)?;
    print!("{out}");

    let metrics = Arc::new(Metrics::default());
    let (advertiser, backend) =
        BgpBackend::start(Arc::clone(&metrics), BgpBackendOptions::default());
    let mut speaker =
        Reconciler::new(SpeakerOptions::for_node("demo-node"), Arc::clone(&metrics)).with_protocol(
            BgpProtocol::new(SpeakerOptions::for_node("demo-node"), advertiser),
        );
    println!("speaker: node demo-node, AS64500, peering with 127.0.0.1:{port}");
    speaker.apply(SourceUpdate::snapshot(res.clone()));
    let bgp = speaker.protocol::<BgpProtocol<BgpAdvertiser>>();
    for (key, st) in bgp.into_iter().flat_map(BgpProtocol::statuses) {
        println!("speaker: {key:<10} {}", summary(st));
    }
    let mut rib = BTreeSet::new();
    await_rib(&mut events, &mut rib, &prefixes(&res), "the announcements").await?;

    let gone = SERVICES[0];
    println!("demo: deleting Service demo/{gone}");
    res.services
        .retain(|s| s.metadata.name.as_deref() != Some(gone));
    speaker.apply(SourceUpdate::snapshot(res.clone()));
    await_rib(&mut events, &mut rib, &prefixes(&res), "the withdraw").await?;

    println!(
        "demo: router holds {} prefixes; shutting down (Cease 6/2)",
        rib.len()
    );
    backend.shutdown().await;
    router.shutdown("demo done", Duration::from_secs(1)).await;
    println!("demo: done");
    Ok(())
}
