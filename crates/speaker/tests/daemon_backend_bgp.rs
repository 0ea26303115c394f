//! The BGP backend's translation of BGPPeers and routes into crates/bgp's terms.

use std::net::IpAddr;
use std::path::Path;

use ferrolb_api::model::BgpPeer;
use ferrolb_api::source::files::load_str;
use ferrolb_api::validate::validate;
use ferrolb_speaker::backend::bgp::{
    peer_config, speaker_config, BgpBackendOptions, GR_RESTART_TIME,
};

fn peer(spec: &str) -> BgpPeer {
    let text = format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p, namespace: metallb-system}}\nspec: {spec}\n"
    );
    let res = load_str(&text, Path::new("test")).expect("yaml");
    let config = validate(&res).expect("valid");
    config.bgp_peers.get("p").cloned().expect("peer p")
}

#[test]
fn session_settings_follow_the_bgppeer() {
    let p = peer(
        "{myASN: 64500, peerASN: 64512, peerAddress: 192.0.2.1, peerPort: 1179, holdTime: 30s, \
         keepaliveTime: 10s, sourceAddress: 192.0.2.10, ebgpMultiHop: true, password: s3cret, \
         routerID: 10.0.0.9, enableGracefulRestart: true}",
    );
    let c = peer_config(&p);
    assert_eq!(c.addr, "192.0.2.1".parse::<IpAddr>().expect("ip"));
    assert_eq!(c.port, 1179);
    assert_eq!(c.peer_as, Some(64512));
    assert_eq!(c.hold_time, 30);
    assert_eq!(c.keepalive, Some(10));
    assert_eq!(c.local_address, Some("192.0.2.10".parse().expect("ip")));
    assert_eq!(c.ebgp_multihop, Some(255));
    assert_eq!(c.md5_password.as_deref(), Some("s3cret"));
    assert!(!c.passive);
    let s = speaker_config(
        &p,
        &BgpBackendOptions {
            restarted: true,
            ..BgpBackendOptions::default()
        },
    );
    assert_eq!(s.local_as, 64500);
    assert_eq!(s.router_id, Some("10.0.0.9".parse().expect("ip")));
    let gr = s.graceful_restart.expect("GR on");
    assert_eq!(gr.restart_time, GR_RESTART_TIME);
    assert!(gr.restarted);
    assert!(s.listen.is_empty(), "the speaker only connects out");
}

#[test]
fn defaults_hold_90_no_multihop_no_gr_and_internal_asn_is_ours() {
    let p = peer("{myASN: 64500, peerASN: 64500, peerAddress: 192.0.2.1}");
    let c = peer_config(&p);
    assert_eq!((c.port, c.hold_time, c.keepalive), (179, 90, None));
    assert_eq!(c.ebgp_multihop, None);
    assert_eq!(c.peer_as, Some(64500));
    assert!(c.ipv4 && c.ipv6, "MP-BGP carries both families by default");
    assert!(speaker_config(&p, &BgpBackendOptions::default())
        .graceful_restart
        .is_none());
}

#[test]
fn frr_mode_local_asn_connect_time_and_vrf_reach_the_session() {
    let p = peer(
        "{myASN: 64500, peerASN: 64512, localASN: 64600, peerAddress: 192.0.2.1, \
         connectTime: 7s, vrf: red}",
    );
    let c = peer_config(&p);
    assert_eq!(c.local_as, Some(64600));
    assert_eq!(c.connect_retry, Some(std::time::Duration::from_secs(7)));
    assert_eq!(c.bind_device.as_deref(), Some("red"));
    // The speaker keeps myASN; the session speaks as localASN.
    assert_eq!(
        speaker_config(&p, &BgpBackendOptions::default()).local_as,
        64500
    );
    let internal =
        peer("{myASN: 64500, dynamicASN: internal, localASN: 64600, peerAddress: 192.0.2.1}");
    assert_eq!(
        peer_config(&internal).peer_as,
        Some(64600),
        "dynamicASN internal is the session's AS"
    );
    let plain = peer_config(&peer(
        "{myASN: 64500, peerASN: 64512, peerAddress: 192.0.2.1}",
    ));
    assert_eq!(
        (plain.local_as, plain.connect_retry, plain.bind_device),
        (None, None, None)
    );
}
