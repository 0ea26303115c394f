//! Which interfaces announce a VIP (pure), as MetalLB's Layer 2 announcer
//! (`internal/layer2/announcer.go`, `updateInterfaces`): an interface can answer when it is up,
//! not loopback, not a bridge port or bond member, not NOARP, and not excluded by the operator;
//! for IPv4 it must carry broadcast (ARP), for IPv6 have a link-local address (NDP). Of those,
//! every one answers when the L2Advertisement lists no `interfaces`, whatever subnets it holds
//! (MetalLB answers on all of them), and only the listed ones otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use crate::sys::{list_interfaces, InterfaceInfo};

/// How one VIP's interfaces are chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceSelection {
    /// The L2Advertisement's `spec.interfaces`; empty = every interface that can answer.
    pub explicit: Vec<String>,
    /// Never announce on these (e.g. a node-level list of virtual interfaces).
    pub excluded: Vec<String>,
}

/// Whether `iface` can answer ARP (IPv4 `vip`) or NDP (IPv6 `vip`) at all: MetalLB creates a
/// responder only on such interfaces.
pub fn can_answer(iface: &InterfaceInfo, vip: IpAddr) -> bool {
    let usable = iface.up && !iface.loopback && !iface.enslaved && !iface.noarp;
    usable
        && match vip {
            IpAddr::V4(_) => iface.broadcast,
            IpAddr::V6(_) => iface.addrs.iter().any(|net| match net.addr() {
                // fe80::/10 (RFC 4291 §2.5.6): NDP needs a link-local source.
                IpAddr::V6(a) => a.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80),
                IpAddr::V4(_) => false,
            }),
        }
}

/// The interfaces that should answer for `vip`.
pub fn select_interfaces(
    vip: IpAddr,
    interfaces: &[InterfaceInfo],
    selection: &InterfaceSelection,
) -> BTreeSet<String> {
    interfaces
        .iter()
        .filter(|i| can_answer(i, vip) && !selection.excluded.contains(&i.name))
        .filter(|i| selection.explicit.is_empty() || selection.explicit.contains(&i.name))
        .map(|i| i.name.clone())
        .collect()
}

/// The desired state for [`crate::Responder::set_vips`]: for each interface, the VIPs it
/// answers for. Interfaces with no VIP are absent.
pub fn vips_by_interface<'a>(
    vips: impl IntoIterator<Item = (IpAddr, &'a InterfaceSelection)>,
    interfaces: &[InterfaceInfo],
) -> BTreeMap<String, BTreeSet<IpAddr>> {
    let mut out: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for (vip, selection) in vips {
        for name in select_interfaces(vip, interfaces, selection) {
            out.entry(name).or_default().insert(vip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn node() -> Vec<InterfaceInfo> {
        vec![
            iface("lo", true, &["127.0.0.1/8", "::1/128", "192.0.2.100/32"]),
            iface(
                "eth0",
                false,
                &["192.0.2.5/24", "2001:db8::5/64", "fe80::1/64"],
            ),
            iface("eth1", false, &["198.51.100.5/24"]),
            InterfaceInfo {
                noarp: true,
                ..iface("kube-ipvs0", false, &["192.0.2.100/32"])
            },
            InterfaceInfo {
                enslaved: true,
                ..iface("veth1", false, &["fe80::2/64"])
            },
            InterfaceInfo {
                up: false,
                ..iface("eth2", false, &["192.0.2.6/24", "fe80::3/64"])
            },
        ]
    }

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_default_every_interface_that_can_answer_whatever_its_subnet() {
        let sel = InterfaceSelection::default();
        for vip in ["192.0.2.100", "203.0.113.1"] {
            let vip: IpAddr = vip.parse().expect("ip");
            assert_eq!(
                select_interfaces(vip, &node(), &sel),
                names(&["eth0", "eth1"]),
                "{vip}: not lo, not NOARP kube-ipvs0, not the bridge port, not the down eth2"
            );
        }
        let vip6: IpAddr = "2001:db8::100".parse().expect("ip");
        assert_eq!(
            select_interfaces(vip6, &node(), &sel),
            names(&["eth0"]),
            "NDP needs a link-local address"
        );
    }

    #[test]
    fn excluded_interfaces_are_never_chosen() {
        let sel = InterfaceSelection {
            explicit: vec![],
            excluded: vec!["eth1".into()],
        };
        let vip: IpAddr = "192.0.2.100".parse().expect("ip");
        assert_eq!(select_interfaces(vip, &node(), &sel), names(&["eth0"]));
    }

    #[test]
    fn an_explicit_list_narrows_but_never_adds_an_interface_that_cannot_answer() {
        let sel = InterfaceSelection {
            explicit: vec![
                "eth1".into(),
                "lo".into(),
                "eth9".into(),
                "kube-ipvs0".into(),
            ],
            excluded: vec![],
        };
        let vip: IpAddr = "192.0.2.100".parse().expect("ip");
        assert_eq!(select_interfaces(vip, &node(), &sel), names(&["eth1"]));
    }

    #[test]
    fn vips_are_grouped_per_interface() {
        let sel = InterfaceSelection::default();
        let a: IpAddr = "192.0.2.100".parse().expect("ip");
        let b: IpAddr = "2001:db8::9".parse().expect("ip");
        let got = vips_by_interface([(a, &sel), (b, &sel)], &node());
        let want: BTreeMap<String, BTreeSet<IpAddr>> = [
            ("eth0".to_string(), [a, b].into()),
            ("eth1".to_string(), [a].into()),
        ]
        .into();
        assert_eq!(got, want);
    }
}
