//! Fuzz target: the reply decision never panics, and every reply it makes parses back and
//! comes from our MAC. The first octet picks which VIPs we own, so the owned branch is reached.
#![no_main]

use std::collections::BTreeSet;
use std::net::IpAddr;

use ferrolb_arp::respond::respond;
use ferrolb_arp::wire::{encode_frame, parse_frame, Frame, MacAddr};
use libfuzzer_sys::fuzz_target;

const OUR_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 1]);

fuzz_target!(|data: &[u8]| {
    let Some((selector, frame_bytes)) = data.split_first() else {
        return;
    };
    let Ok(frame) = parse_frame(frame_bytes) else {
        return;
    };
    // Own the frame's target when the low bit is set, so replies are exercised.
    let mut vips = BTreeSet::new();
    if selector & 1 == 1 {
        match &frame {
            Frame::Arp { arp, .. } => {
                vips.insert(IpAddr::V4(arp.target_ip));
            }
            Frame::Ndp { msg, .. } => {
                let target = match msg {
                    ferrolb_arp::wire::NdpMessage::NeighborSolicitation(ns) => ns.target,
                    ferrolb_arp::wire::NdpMessage::NeighborAdvertisement(na) => na.target,
                };
                vips.insert(IpAddr::V6(target));
            }
        }
    }
    if let Some(reply) = respond(&frame, &vips, OUR_MAC) {
        assert_eq!(reply.eth().src, OUR_MAC);
        assert_eq!(parse_frame(&encode_frame(&reply)).as_ref(), Ok(&reply));
    }
});
