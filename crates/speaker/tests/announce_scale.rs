//! The computation at the scale (10k announced VIPs) stays correct. Timings are measured
//! elsewhere (docs/), never asserted here.

mod announce_fixtures;

use std::net::{IpAddr, Ipv4Addr};

use announce_fixtures::*;
use ferrolb_speaker::announce::bgp::{compute_bgp, ServiceStatus};
use ferrolb_speaker::announce::input::TrafficPolicy;
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::compute_l2;

const SERVICES: u32 = 10_000;

#[test]
fn ten_thousand_services_are_all_planned() {
    let base = u32::from(Ipv4Addr::new(100, 64, 0, 0));
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..SERVICES {
        let name = format!("s{i}");
        let mut s = svc(&name, &[]);
        s.ips = vec![IpAddr::V4(Ipv4Addr::from(base + i))];
        // Odd Services are Local with their endpoint on n2: not announced from n1.
        if i % 2 == 1 {
            s.traffic_policy = TrafficPolicy::Local;
        }
        let node = if i % 2 == 1 { "n2" } else { "n1" };
        slices.push(slice(&name, "a", vec![ep("10.0.0.1", node)]));
        services.push(s);
    }
    let cfg = config(
        vec![pool("big", "100.64.0.0/18")],
        vec![peer("r1", "198.51.100.1", 64501)],
        vec![bgp_adv("a", &["big"])],
        vec![l2_adv("l2", &["big"])],
    );
    let c = cluster(services, slices, vec![node("n1", &[]), node("n2", &[])]);
    let opts = SpeakerOptions::for_node("n1");

    let plan = compute_bgp(&cfg, &c, &opts);
    assert_eq!(plan.services.len(), SERVICES as usize);
    assert_eq!(
        plan.desired.peers["r1"].routes.len(),
        (SERVICES / 2) as usize
    );
    let skipped = plan
        .services
        .values()
        .filter(|s| matches!(s, ServiceStatus::Skipped(_)))
        .count();
    assert_eq!(skipped, (SERVICES / 2) as usize);

    // Layer 2: n1 and n2 split the Cluster-policy VIPs, n2 owns every Local one.
    let n1 = compute_l2(&cfg, &c, &opts, None).desired.vips.len();
    let n2 = compute_l2(&cfg, &c, &SpeakerOptions::for_node("n2"), None)
        .desired
        .vips
        .len();
    assert_eq!(
        n1 + n2,
        SERVICES as usize,
        "every VIP has exactly one owner"
    );
    assert!(n2 > (SERVICES / 2) as usize && n1 > 0, "n1 {n1}, n2 {n2}");
}
