//! FRR-mode peering settings of a BGPPeer that depend on the node, checked before its session
//! starts: today the VRF device of `spec.vrf`.
//!
//! A session in a VRF is bound to the VRF's device (SO_BINDTODEVICE, see
//! [`ferrolb_bgp::net::SocketOptions::bind_device`]), so its source address, its route to the
//! peer and the next hop it announces (the session's local address) are the VRF's. It must
//! never fall back to the default VRF: when the device does not exist the bind fails, the
//! session stays down and retries with its backoff, and comes up once the device appears. This
//! module says so clearly, once per start of the peer, rather than as one of many failed
//! connects.
//!
//! Pure decisions over a `sys/class/net` directory, so they are tested on a temporary one.

use std::path::Path;

use ferrolb_api::model::BgpPeer;

/// Where the kernel lists the network devices of the process's namespace.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

/// Why a peer cannot have its session on this node now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeeringProblem {
    /// `spec.vrf` names a device this node does not have.
    #[error(
        "spec.vrf: VRF device {vrf:?} does not exist on this node; the session stays down (it is \
         never made in the default VRF instead) and retries until the device exists"
    )]
    VrfMissing {
        /// The VRF name.
        vrf: String,
    },
    /// `spec.vrf` is not a device name (it would escape `sys/class/net`).
    #[error("spec.vrf: {vrf:?} is not a network device name; the session stays down")]
    BadVrfName {
        /// The VRF name.
        vrf: String,
    },
}

/// Whether `name` can be a network device name (Linux: 1 to 15 bytes, no `/`, no whitespace,
/// not `.` or `..`).
fn is_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(char::is_whitespace)
}

/// What stops `peer`'s session on this node, looking up devices in `sys_class_net`; `None`
/// when nothing does (no VRF, or its device exists).
pub fn check(peer: &BgpPeer, sys_class_net: &Path) -> Option<PeeringProblem> {
    let vrf = peer.vrf.as_deref()?;
    if !is_device_name(vrf) {
        return Some(PeeringProblem::BadVrfName {
            vrf: vrf.to_owned(),
        });
    }
    if sys_class_net.join(vrf).exists() {
        None
    } else {
        Some(PeeringProblem::VrfMissing {
            vrf: vrf.to_owned(),
        })
    }
}

/// The Warning Event about `problem` on BGPPeer `name` (in the daemon's namespace; the
/// Event's reporting instance names the node).
pub fn warning(name: &str, problem: &PeeringProblem) -> ferrolb_runtime::events::Warning {
    ferrolb_runtime::events::Warning {
        kind: "BGPPeer".into(),
        namespace: String::new(),
        name: name.to_owned(),
        uid: None,
        reason: ferrolb_runtime::events::REASON_PEER_DOWN,
        note: problem.to_string(),
    }
}

/// Whether a connect failure reported by crates/bgp is the VRF bind failing (the device is
/// gone), which is worth a warning rather than a debug line.
pub fn is_bind_device_failure(error: &str) -> bool {
    error.contains("SO_BINDTODEVICE")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(vrf: Option<&str>) -> BgpPeer {
        let yaml = format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p, namespace: m}}\n\
             spec: {{myASN: 1, peerASN: 2, peerAddress: 192.0.2.1{}}}\n",
            vrf.map(|v| format!(", vrf: {v}")).unwrap_or_default()
        );
        let res = ferrolb_api::source::files::load_str(&yaml, Path::new("t")).expect("yaml");
        let cfg = ferrolb_api::validate::validate(&res).expect("valid");
        cfg.bgp_peers.get("p").cloned().expect("peer")
    }

    #[test]
    fn a_peer_without_vrf_has_no_problem() {
        assert_eq!(check(&peer(None), Path::new("/nonexistent")), None);
    }

    #[test]
    fn a_vrf_device_that_exists_is_fine_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("red")).expect("red");
        assert_eq!(check(&peer(Some("red")), dir.path()), None);
        let problem = check(&peer(Some("blue")), dir.path()).expect("blue is missing");
        assert_eq!(problem, PeeringProblem::VrfMissing { vrf: "blue".into() });
        assert!(problem.to_string().contains("\"blue\" does not exist"));
    }

    #[test]
    fn a_vrf_name_that_is_a_path_is_refused_without_looking() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(
            check(&peer(Some("..")), dir.path()),
            Some(PeeringProblem::BadVrfName { .. })
        ));
    }

    #[test]
    fn a_missing_vrf_is_a_peer_down_warning_on_the_bgppeer() {
        let problem = PeeringProblem::VrfMissing { vrf: "red".into() };
        let w = warning("p", &problem);
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("BGPPeer", "p"));
        assert_eq!(w.reason, ferrolb_runtime::events::REASON_PEER_DOWN);
        assert_eq!(w.note, problem.to_string());
    }

    #[test]
    fn only_the_bind_failure_is_a_vrf_failure() {
        assert!(is_bind_device_failure(
            "setsockopt(SO_BINDTODEVICE) 192.0.2.1:179: No such device (os error 19)"
        ));
        assert!(!is_bind_device_failure(
            "connect 192.0.2.1:179: Connection refused"
        ));
    }
}
