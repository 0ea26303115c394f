//! Which interfaces announce a VIP (pure): by default every interface with an address in the
//! VIP's subnet; when the L2Advertisement lists `interfaces`, exactly those; never loopback and
//! never an interface the operator excludes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use crate::sys::{list_interfaces, InterfaceInfo};

/// How one VIP's interfaces are chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceSelection {
    /// The L2Advertisement's `spec.interfaces`; empty = by subnet.
    pub explicit: Vec<String>,
    /// Never announce on these (e.g. a node-level list of virtual interfaces).
    pub excluded: Vec<String>,
}

/// The interfaces that should answer for `vip`.
pub fn select_interfaces(
    vip: IpAddr,
    interfaces: &[InterfaceInfo],
    selection: &InterfaceSelection,
) -> BTreeSet<String> {
    interfaces
        .iter()
        .filter(|i| !i.loopback && !selection.excluded.contains(&i.name))
        .filter(|i| {
            if selection.explicit.is_empty() {
                // MetalLB semantics: the interface has an address whose subnet holds the VIP.
                i.addrs.iter().any(|net| net.contains(&vip))
            } else {
                selection.explicit.contains(&i.name)
            }
        })
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
            addrs: addrs.iter().map(|a| a.parse().expect("net")).collect(),
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
            iface("kube-ipvs0", false, &["192.0.2.100/32"]),
        ]
    }

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_default_the_interfaces_whose_subnet_holds_the_vip_never_loopback() {
        let sel = InterfaceSelection::default();
        let vip4: IpAddr = "192.0.2.100".parse().expect("ip");
        assert_eq!(
            select_interfaces(vip4, &node(), &sel),
            names(&["eth0", "kube-ipvs0"])
        );
        let vip6: IpAddr = "2001:db8::100".parse().expect("ip");
        assert_eq!(select_interfaces(vip6, &node(), &sel), names(&["eth0"]));
        let elsewhere: IpAddr = "203.0.113.1".parse().expect("ip");
        assert!(select_interfaces(elsewhere, &node(), &sel).is_empty());
    }

    #[test]
    fn excluded_interfaces_are_never_chosen() {
        let sel = InterfaceSelection {
            explicit: vec![],
            excluded: vec!["kube-ipvs0".into()],
        };
        let vip: IpAddr = "192.0.2.100".parse().expect("ip");
        assert_eq!(select_interfaces(vip, &node(), &sel), names(&["eth0"]));
    }

    #[test]
    fn an_explicit_list_wins_over_subnets_but_not_over_loopback_or_missing_interfaces() {
        let sel = InterfaceSelection {
            explicit: vec!["eth1".into(), "lo".into(), "eth9".into()],
            excluded: vec![],
        };
        let vip: IpAddr = "192.0.2.100".parse().expect("ip");
        assert_eq!(select_interfaces(vip, &node(), &sel), names(&["eth1"]));
    }

    #[test]
    fn vips_are_grouped_per_interface() {
        let sel = InterfaceSelection::default();
        let a: IpAddr = "192.0.2.100".parse().expect("ip");
        let b: IpAddr = "198.51.100.9".parse().expect("ip");
        let got = vips_by_interface([(a, &sel), (b, &sel)], &node());
        let want: BTreeMap<String, BTreeSet<IpAddr>> = [
            ("eth0".to_string(), [a].into()),
            ("eth1".to_string(), [b].into()),
            ("kube-ipvs0".to_string(), [a].into()),
        ]
        .into();
        assert_eq!(got, want);
    }
}
