//! Independent decoding of what our encoders write: packets into a classic pcap file, read
//! back by `tshark` (Wireshark's dissectors). Callers skip loudly when
//! [`tshark_available`] says no.

use std::path::Path;
use std::process::Command;

/// Link type of packets that start with an Ethernet header.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Link type of packets that start with the IP header.
pub const LINKTYPE_RAW: u32 = 101;

/// A classic little-endian pcap file (version 2.4) of `packets` with link type `linktype`,
/// one packet per millisecond from a fixed time (the tests decode fields, not times).
pub fn pcap(linktype: u32, packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    // Magic, version 2.4, thiszone, sigfigs, snaplen, link type.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let len = u32::try_from(p.len()).expect("packet fits a pcap record");
        let micros = u32::try_from(i % 1000).expect("below 1000") * 1000;
        let secs = 1_700_000_000u32 + u32::try_from(i / 1000).expect("few packets");
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&micros.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// True if `tshark --version` runs and succeeds.
pub fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `tshark -r file args…`; its stdout. Panics, with tshark's stderr, if it fails.
pub fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The values of `fields`, one row per packet, that tshark decodes from `packets` (written to
/// a temporary pcap of link type `linktype`); `None` if tshark is not available.
pub fn tshark_fields(
    linktype: u32,
    packets: &[Vec<u8>],
    fields: &[&str],
) -> Option<Vec<Vec<String>>> {
    if !tshark_available() {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("packets.pcap");
    std::fs::write(&file, pcap(linktype, packets)).expect("write pcap");
    let mut args = vec!["-T", "fields", "-E", "separator=|"];
    for f in fields {
        args.extend(["-e", f]);
    }
    Some(
        tshark(&file, &args)
            .lines()
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_records_carry_each_packet_with_its_length() {
        let file = pcap(LINKTYPE_RAW, &[vec![1, 2, 3], vec![4]]);
        assert_eq!(file.len(), 24 + 16 + 3 + 16 + 1);
        assert_eq!(file[20..24], 101u32.to_le_bytes());
        assert_eq!(file[32..36], 3u32.to_le_bytes());
        assert_eq!(file[40..43], [1, 2, 3]);
        assert_eq!(file[43 + 4..43 + 8], 1000u32.to_le_bytes());
    }
}
