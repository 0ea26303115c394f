//! Cross-implementation check: packets our state machine sends, wrapped in IPv4/UDP to port
//! 3784, written to a pcap and decoded by tshark (Wireshark's BFD dissector), must carry the
//! fields we meant. Skips loudly when tshark is missing.

use std::time::Duration;

use ferrolb_bfd::packet::encode;
use ferrolb_bfd::session::{step, Action, Event, Session, SessionParams};
use ferrolb_bfd::{ControlPacket, Diag, State};
use ferrolb_e2e::pcap;

/// IPv4 (TTL 255, no options) + UDP (49152 -> 3784, checksum 0: none, allowed over IPv4)
/// around `payload`.
fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("small");
    let total = 20 + udp_len;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 255, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let csum = !u16::try_from((folded & 0xffff) + (folded >> 16)).expect("folded");
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    ip.extend_from_slice(&49152u16.to_be_bytes());
    ip.extend_from_slice(&3784u16.to_be_bytes());
    ip.extend_from_slice(&udp_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(payload);
    ip
}

const FIELDS: [&str; 11] = [
    "bfd.version",
    "bfd.diag",
    "bfd.sta",
    "bfd.flags.p",
    "bfd.flags.f",
    "bfd.detect_time_multiplier",
    "bfd.message_length",
    "bfd.my_discriminator",
    "bfd.your_discriminator",
    "bfd.desired_min_tx_interval",
    "bfd.required_min_rx_interval",
];

fn tshark(packets: &[ControlPacket]) -> Option<Vec<Vec<String>>> {
    if !pcap::tshark_available() {
        eprintln!("\n**********\nSKIPPED: tshark is not installed\n**********\n");
        return None;
    }
    let raw: Vec<Vec<u8>> = packets
        .iter()
        .map(|p| ipv4_udp(&encode(p).expect("encodes")))
        .collect();
    pcap::tshark_fields(pcap::LINKTYPE_RAW, &raw, &FIELDS)
}

#[test]
fn tshark_decodes_the_packets_of_a_handshake_as_intended() {
    let params = SessionParams {
        desired_min_tx: Duration::from_millis(50),
        required_min_rx: Duration::from_millis(70),
        detect_mult: 4,
        passive: false,
    };
    let peer = |state, poll| ControlPacket {
        diag: Diag::NONE,
        state,
        poll,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discr: 0xbeef,
        your_discr: 0x1234_5678,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
    };
    let s = Session::new(0x1234_5678, params, 9);
    let mut sent = Vec::new();
    let mut collect = |actions: Vec<Action>| {
        for a in actions {
            if let Action::Send(p) = a {
                sent.push(p);
            }
        }
    };
    let (s, a) = step(s, Event::Start);
    collect(a);
    let (s, a) = step(s, Event::Received(peer(State::INIT, true)));
    collect(a);
    let (_, a) = step(s, Event::AdminDown(Diag::ADMINISTRATIVELY_DOWN));
    collect(a);
    let Some(rows) = tshark(&sent) else { return };
    // Down (1 s floor, no discriminator yet); Up answering the peer's Poll with F, still
    // with 1 s (the Final answers the packet as received; our own Poll with 50 ms goes
    // with the next periodic packet); AdminDown with diag 7.
    // tshark prints Diag and Sta in hex.
    let want: Vec<Vec<&str>> = vec![
        vec![
            "1",
            "0x00",
            "0x01",
            "0",
            "0",
            "4",
            "24",
            "0x12345678",
            "0x00000000",
            "1000000",
            "70000",
        ],
        vec![
            "1",
            "0x00",
            "0x03",
            "0",
            "1",
            "4",
            "24",
            "0x12345678",
            "0x0000beef",
            "1000000",
            "70000",
        ],
        vec![
            "1",
            "0x07",
            "0x00",
            "0",
            "0",
            "4",
            "24",
            "0x12345678",
            "0x0000beef",
            "1000000",
            "70000",
        ],
    ];
    assert_eq!(rows.len(), want.len(), "{rows:?}");
    for (got, want) in rows.iter().zip(&want) {
        assert_eq!(got, want, "fields {FIELDS:?}");
    }
}
