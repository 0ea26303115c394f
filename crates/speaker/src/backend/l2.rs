//! The Layer 2 backend: [`L2Desired`] (the VIPs this node won, with their interfaces) onto
//! crates/arp's [`Responder`].
//!
//! ```text
//!  L2Advertiser::set_desired ──watch<L2Desired>──▶ backend task
//!      backend task: responder_vips(desired, interfaces) ──▶ Responder::set_vips (whole state)
//!        ├─ on every desired change
//!        └─ every `interface_refresh` (interfaces and their addresses come and go)
//!      Responder: one socket per interface; a VIP new on an interface is announced at once by
//!      gratuitous ARP / unsolicited NA (docs/l2.md), so neighbours move to this node's MAC
//!  L2Backend::shutdown ──cancel──▶ backend task: Responder::shutdown (sockets closed)
//! ```
//!
//! Interface choice per VIP is crates/arp's [`select_interfaces`](ferrolb_arp::iface::select_interfaces):
//! `Interfaces::All` means every interface that can answer ARP/NDP whatever its subnets
//! (MetalLB's announcer: up, not loopback, not a bridge port or bond member, not NOARP),
//! `Interfaces::Only` those of them that are named; never an excluded one. A VIP no interface
//! can carry is answered nowhere and logged once per change.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_arp::iface::{vips_by_interface, InterfaceInfo, InterfaceSelection};
use ferrolb_arp::{InterfaceState, Responder, ResponderConfig, VipCountsReader, VipsByInterface};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::advertiser::{Advertiser, AdvertiserError, Interfaces, L2Desired};

/// How the interfaces of the node are listed (`getifaddrs` in production).
pub type InterfaceLister = Arc<dyn Fn() -> io::Result<Vec<InterfaceInfo>> + Send + Sync>;

/// Backend settings.
#[derive(Debug, Clone)]
pub struct L2BackendOptions {
    /// Announcement count and spacing, socket reopen back-off.
    pub responder: ResponderConfig,
    /// Never answer on these interfaces.
    pub excluded_interfaces: Vec<String>,
    /// How often the interface list is read again.
    pub interface_refresh: Duration,
}

impl Default for L2BackendOptions {
    fn default() -> Self {
        Self {
            responder: ResponderConfig::default(),
            excluded_interfaces: Vec::new(),
            interface_refresh: Duration::from_secs(5),
        }
    }
}

/// What the responder must serve for `desired` on a node with `interfaces` (pure).
pub fn responder_vips(
    desired: &L2Desired,
    interfaces: &[InterfaceInfo],
    excluded: &[String],
) -> VipsByInterface {
    let selections: Vec<_> = desired
        .vips
        .iter()
        .map(|(vip, l2)| {
            let explicit = match &l2.interfaces {
                Interfaces::All => Vec::new(),
                Interfaces::Only(names) => names.iter().cloned().collect(),
            };
            (
                *vip,
                InterfaceSelection {
                    explicit,
                    excluded: excluded.to_vec(),
                },
            )
        })
        .collect();
    vips_by_interface(selections.iter().map(|(v, s)| (*v, s)), interfaces)
}

/// The handle the reconcile loop uses.
#[derive(Debug, Clone)]
pub struct L2Advertiser {
    tx: watch::Sender<Arc<L2Desired>>,
}

impl Advertiser for L2Advertiser {
    type Desired = L2Desired;

    fn set_desired(&mut self, desired: L2Desired) -> Result<(), AdvertiserError> {
        self.tx
            .send(Arc::new(desired))
            .map_err(|_| AdvertiserError::Closed { backend: "l2" })
    }
}

/// Owner of the backend task.
#[derive(Debug)]
pub struct L2Backend {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    states: watch::Receiver<BTreeMap<String, InterfaceState>>,
    vip_counts: VipCountsReader,
}

impl L2Backend {
    /// Starts on AF_PACKET sockets and the node's real interfaces. Needs `CAP_NET_RAW` once a
    /// VIP is won; must run inside a tokio runtime in the node's network namespace.
    pub fn start(opts: L2BackendOptions) -> (L2Advertiser, L2Backend) {
        let responder = Responder::spawn(opts.responder.clone());
        Self::start_with(
            opts,
            responder,
            Arc::new(ferrolb_arp::iface::list_interfaces),
        )
    }

    /// Starts on a given responder and interface lister (test doubles in tests).
    pub fn start_with(
        opts: L2BackendOptions,
        responder: Responder,
        lister: InterfaceLister,
    ) -> (L2Advertiser, L2Backend) {
        let (tx, rx) = watch::channel(Arc::new(L2Desired::default()));
        let cancel = CancellationToken::new();
        let states = responder.interfaces();
        let vip_counts = responder.vip_counts();
        let task = tokio::spawn(backend_task(rx, responder, lister, opts, cancel.clone()));
        (
            L2Advertiser { tx },
            L2Backend {
                cancel,
                task,
                states,
                vip_counts,
            },
        )
    }

    /// Per interface: opening, serving which VIPs with which MAC, or failed.
    pub fn interfaces(&self) -> watch::Receiver<BTreeMap<String, InterfaceState>> {
        self.states.clone()
    }

    /// The responder's per-VIP counts (MetalLB's `metallb_layer2_*{ip}`).
    pub fn vip_counts(&self) -> VipCountsReader {
        self.vip_counts.clone()
    }

    /// Stops answering and closes every socket.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, bug = true, "l2 backend task failed");
        }
    }
}

async fn backend_task(
    mut desired: watch::Receiver<Arc<L2Desired>>,
    responder: Responder,
    lister: InterfaceLister,
    opts: L2BackendOptions,
    cancel: CancellationToken,
) {
    let mut refresh = tokio::time::interval(opts.interface_refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interfaces: Vec<InterfaceInfo> = Vec::new();
    let mut last_unplaced = None;
    loop {
        let relist = tokio::select! {
            changed = desired.changed() => {
                if changed.is_err() {
                    break;
                }
                // A newly won VIP may sit on an interface that appeared since the last read.
                true
            }
            _ = refresh.tick() => true,
            () = cancel.cancelled() => break,
        };
        if relist {
            let lister = lister.clone();
            match tokio::task::spawn_blocking(move || lister()).await {
                Ok(Ok(list)) => interfaces = list,
                Ok(Err(error)) => {
                    tracing::error!(%error, "l2: cannot list interfaces; keeping the last list")
                }
                Err(error) => tracing::error!(%error, bug = true, "l2: interface listing failed"),
            }
        }
        let want = desired.borrow_and_update().clone();
        let vips = responder_vips(&want, &interfaces, &opts.excluded_interfaces);
        let unplaced: Vec<_> = want
            .vips
            .keys()
            .filter(|vip| !vips.values().any(|set| set.contains(vip)))
            .copied()
            .collect();
        if !unplaced.is_empty() && last_unplaced.as_ref() != Some(&unplaced) {
            tracing::warn!(vips = ?unplaced, "l2: won VIPs that no interface can carry (no usable interface, or `interfaces` names none)");
        }
        last_unplaced = Some(unplaced);
        responder.set_vips(vips);
    }
    responder.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::IpAddr;

    use super::*;
    use crate::advertiser::L2Vip;
    use crate::announce::input::ServiceKey;

    fn iface(name: &str, loopback: bool, addrs: &[&str]) -> InterfaceInfo {
        InterfaceInfo {
            name: name.into(),
            loopback,
            up: true,
            broadcast: !loopback,
            addrs: addrs.iter().map(|a| a.parse().expect("net")).collect(),
            ..InterfaceInfo::default()
        }
    }

    fn desired(vips: &[(&str, Interfaces)]) -> L2Desired {
        L2Desired {
            vips: vips
                .iter()
                .map(|(v, i)| {
                    (
                        v.parse::<IpAddr>().expect("ip"),
                        L2Vip {
                            interfaces: i.clone(),
                            services: BTreeSet::from([ServiceKey::new("ns", "s")]),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn all_means_every_usable_interface_only_means_the_named_ones_and_exclusions_always_apply() {
        let node = [
            iface("lo", true, &["127.0.0.1/8", "192.0.2.10/32"]),
            iface("eth0", false, &["192.0.2.5/24"]),
            iface("eth1", false, &["198.51.100.5/24"]),
            iface("eth2", false, &["192.0.2.6/24"]),
        ];
        let d = desired(&[
            ("192.0.2.10", Interfaces::All),
            (
                "203.0.113.1",
                Interfaces::Only(BTreeSet::from(["eth1".into()])),
            ),
        ]);
        let got = responder_vips(&d, &node, &["eth2".into()]);
        let v = |s: &str| s.parse::<IpAddr>().expect("ip");
        let want: VipsByInterface = BTreeMap::from([
            ("eth0".to_string(), BTreeSet::from([v("192.0.2.10")])),
            (
                "eth1".to_string(),
                BTreeSet::from([v("192.0.2.10"), v("203.0.113.1")]),
            ),
        ]);
        assert_eq!(got, want);
        assert!(responder_vips(&L2Desired::default(), &node, &[]).is_empty());
    }
}
