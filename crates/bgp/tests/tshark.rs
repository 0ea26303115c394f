//! An independent check of the encoder and packer: Wireshark's BGP dissector (`tshark`) reads
//! packed UPDATEs from a pcap this test writes (a synthetic TCP session on port 179) and must
//! report no malformed packet and no expert error or warning, and find exactly the prefixes we
//! packed. Skips loudly when tshark is missing (CI installs it: scripts/install-test-deps.sh).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ferrolb_bgp::rib::{NextHop, Route, Routes, SessionView};
use ferrolb_bgp::wire::{
    Capability, Community, DecodeCtx, Family, HoldTime, LargeCommunity, Message, Open,
};
use ferrolb_bgp::Packer;
use ferrolb_e2e::pcap;
use ipnet::IpNet;

/// Internet checksum (RFC 1071) over `data`.
fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let bytes: Vec<u8> = chunks.concat();
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One TCP segment in an Ethernet/IPv4 frame.
struct Segment<'a> {
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &'a [u8],
}

fn frame(s: &Segment) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + s.payload.len());
    tcp.extend_from_slice(&s.src.1.to_be_bytes());
    tcp.extend_from_slice(&s.dst.1.to_be_bytes());
    tcp.extend_from_slice(&s.seq.to_be_bytes());
    tcp.extend_from_slice(&s.ack.to_be_bytes());
    tcp.extend_from_slice(&[5 << 4, s.flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(s.payload);
    let tcp_len = u16::try_from(tcp.len()).expect("segment fits");
    let pseudo = [&s.src.0[..], &s.dst.0[..], &[0, 6], &tcp_len.to_be_bytes()].concat();
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());

    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&(20 + tcp_len).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&s.src.0);
    ip.extend_from_slice(&s.dst.0);
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());

    let mut eth = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    eth.extend_from_slice(&ip);
    eth.extend_from_slice(&tcp);
    eth
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

/// A TCP session from 192.0.2.1:40000 (us) to 192.0.2.2:179 (the router): handshake, our OPEN,
/// the router's OPEN, then `messages` from us, one per segment.
fn session(ours: &[u8], theirs: &[u8], messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let us = ([192, 0, 2, 1], 40000);
    let router = ([192, 0, 2, 2], 179);
    let (mut seq, mut rseq) = (1000u32, 5000u32);
    let mut frames = Vec::new();
    let mut seg = |src, dst, seq, ack, flags, payload: &[u8]| {
        frames.push(frame(&Segment {
            src,
            dst,
            seq,
            ack,
            flags,
            payload,
        }))
    };
    seg(us, router, seq, 0, SYN, &[]);
    seg(router, us, rseq, seq + 1, SYN | ACK, &[]);
    seq += 1;
    rseq += 1;
    seg(us, router, seq, rseq, ACK, &[]);
    seg(us, router, seq, rseq, PSH_ACK, ours);
    seq += u32::try_from(ours.len()).unwrap();
    seg(router, us, rseq, seq, PSH_ACK, theirs);
    rseq += u32::try_from(theirs.len()).unwrap();
    for m in messages {
        seg(us, router, seq, rseq, PSH_ACK, m);
        seq += u32::try_from(m.len()).unwrap();
    }
    frames
}

fn caps(asn: u32) -> Vec<Capability> {
    vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
    ]
}

fn attrs(asn: u32, community: u16) -> Route {
    Route {
        med: Some(0),
        communities: [Community::new(65000, community), Community::NO_EXPORT].into(),
        large_communities: [LargeCommunity {
            global_admin: asn,
            local_data_1: 1,
            local_data_2: u32::from(community),
        }]
        .into(),
        ..Route::default()
    }
}

/// Runs tshark with `args` on `file`; stdout.
fn tshark(file: &std::path::Path, args: &[&str]) -> String {
    // 4-octet AS numbers, as negotiated by the OPENs (the default "auto-detect" guesses).
    pcap::tshark(file, &[&["-o", "bgp.asn_len:4"], args].concat())
}

#[test]
fn wireshark_reads_packed_updates_without_errors_and_finds_every_prefix() {
    if !pcap::tshark_available() {
        eprintln!("SKIPPED tshark test: tshark is not installed (apt-get install tshark)");
        return;
    }
    let asn = 4_200_000_001;
    let ctx = DecodeCtx::modern();
    let ours = Message::Open(Open::new(
        asn,
        HoldTime::DEFAULT,
        Ipv4Addr::new(192, 0, 2, 1),
        caps(asn),
    ))
    .to_bytes(&ctx)
    .unwrap();
    let theirs = Message::Open(Open::new(
        65000,
        HoldTime::DEFAULT,
        Ipv4Addr::new(192, 0, 2, 2),
        caps(65000),
    ))
    .to_bytes(&ctx)
    .unwrap();

    // 3,000 IPv4 /32s and 600 IPv6 /128s in three attribute sets, plus withdrawals of both.
    let mut announce = Routes::new();
    for i in 0..3000u32 {
        let [_, _, a, b] = i.to_be_bytes();
        let net: IpNet = format!("10.{}.{a}.{b}/32", i % 3).parse().unwrap();
        announce.insert(net, Arc::new(attrs(asn, u16::try_from(i % 3).unwrap())));
    }
    for i in 0..600u32 {
        let net: IpNet = format!("2001:db8:{}::{:x}/128", i % 2, i).parse().unwrap();
        let route = Route {
            next_hop: NextHop::Explicit("2001:db8::1".parse::<Ipv6Addr>().unwrap().into()),
            ..attrs(asn, 100 + u16::try_from(i % 2).unwrap())
        };
        announce.insert(net, Arc::new(route));
    }
    let withdraw: BTreeSet<IpNet> = (0..400u32)
        .map(|i| format!("172.16.{}.0/24", i % 256).parse::<IpNet>().unwrap())
        .chain((0..200u32).map(|i| format!("2001:db8:ff::{i:x}/128").parse().unwrap()))
        .collect();
    // Our session over IPv4 towards eBGP: AS_PATH is our AS, NEXT_HOP our address.
    let view = SessionView {
        local_as: asn,
        ibgp: false,
        local_addr: Ipv4Addr::new(192, 0, 2, 1).into(),
        families: ctx.families,
        ipv4_via_ipv6: false,
    };
    let updates = Packer::new(ctx, view).pack(&announce, &withdraw).unwrap();
    let mut messages: Vec<Vec<u8>> = updates
        .iter()
        .map(|u| Message::Update(u.clone()).to_bytes(&ctx).unwrap().to_vec())
        .collect();
    for eor in Packer::end_of_rib(ctx.families) {
        messages.push(Message::Update(eor).to_bytes(&ctx).unwrap().to_vec());
    }
    messages.push(Message::Keepalive.to_bytes(&ctx).unwrap().to_vec());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("packed.pcap");
    std::fs::write(
        &file,
        pcap::pcap(pcap::LINKTYPE_ETHERNET, &session(&ours, &theirs, &messages)),
    )
    .unwrap();

    // No malformed packet and no expert info of severity warning or error.
    let expert = tshark(&file, &["-q", "-z", "expert,warn"]);
    assert!(
        !expert.contains("Errors (") && !expert.contains("Warnings ("),
        "tshark expert info:\n{expert}"
    );
    let fields = tshark(
        &file,
        &[
            "-Y",
            "bgp",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=;",
            "-e",
            "bgp.nlri_prefix",
            "-e",
            "bgp.mp_reach_nlri_ipv6_prefix",
            "-e",
            "bgp.withdrawn_prefix",
            "-e",
            "bgp.mp_unreach_nlri_ipv6_prefix",
            "-e",
            "_ws.malformed",
            "-e",
            "bgp.type",
        ],
    );
    let mut sets: [BTreeSet<String>; 4] = Default::default();
    let mut bgp_messages = 0;
    for line in fields.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 6, "unexpected tshark line: {line}");
        assert!(cols[4].is_empty(), "malformed packet: {line}");
        bgp_messages += cols[5].split(';').filter(|t| !t.is_empty()).count();
        for (set, col) in sets.iter_mut().zip(&cols[..4]) {
            set.extend(col.split(';').filter(|p| !p.is_empty()).map(String::from));
        }
    }
    let [nlri, mp_reach, withdrawn, mp_unreach] = sets;
    let host = |n: &IpNet| n.addr().to_string();
    let v4: BTreeSet<String> = announce
        .keys()
        .filter(|n| n.addr().is_ipv4())
        .map(host)
        .collect();
    let v6: BTreeSet<String> = announce
        .keys()
        .filter(|n| n.addr().is_ipv6())
        .map(host)
        .collect();
    assert_eq!(nlri.len(), 3000, "IPv4 NLRI prefix count");
    // tshark prints the prefix address alone (the length is a separate field).
    assert_eq!(nlri, v4);
    assert_eq!(mp_reach.len(), 600, "MP_REACH_NLRI prefix count");
    assert_eq!(mp_reach, v6);
    let count = |v4: bool| withdraw.iter().filter(|n| n.addr().is_ipv4() == v4).count();
    assert_eq!(withdrawn.len(), count(true), "withdrawn prefix count");
    assert_eq!(
        mp_unreach.len(),
        count(false),
        "MP_UNREACH_NLRI prefix count"
    );
    // Two OPENs, every UPDATE (packed + two End-of-RIB), one KEEPALIVE.
    assert_eq!(bgp_messages, 2 + updates.len() + 2 + 1);
}
