//! The classic BPF program attached to each packet socket (`SO_ATTACH_FILTER`) so that only
//! ARP requests and ICMPv6 Neighbor Solicitations reach user space; everything else on the link
//! is dropped in the kernel. Pure data: [`ndp_arp_filter`] returns the instructions, and the
//! tests run them through a tiny interpreter of the opcodes used.
//!
//! ```text
//!  0: ld  [pkttype]          ; ancillary load (SKF_AD_OFF + SKF_AD_PKTTYPE)
//!  1: jeq #OUTGOING   12, 2  ; our own transmissions looped to the socket: drop
//!  2: ldh [12]               ; EtherType
//!  3: jeq #0x0806     4, 6
//!  4: ldh [20]               ; ARP operation (14 + 6)
//!  5: jeq #1          11, 12 ; REQUEST
//!  6: jeq #0x86dd     7, 12
//!  7: ldb [20]               ; IPv6 Next Header (14 + 6)
//!  8: jeq #58         9, 12  ; ICMPv6, no extension headers (RFC 4861 §7.1.1 hop-limit rule)
//!  9: ldb [54]               ; ICMPv6 Type (14 + 40)
//! 10: jeq #135        11, 12 ; Neighbor Solicitation
//! 11: ret #SNAPLEN           ; accept
//! 12: ret #0                 ; drop
//! ```

/// One classic BPF instruction, laid out as Linux's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true (relative to the next instruction).
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

// Opcodes from linux/filter.h (BPF_CLASS | BPF_SIZE | BPF_MODE, BPF_JMP | BPF_JEQ | BPF_K).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
/// SKF_AD_OFF (-0x1000) + SKF_AD_PKTTYPE (4): loads `skb->pkt_type`.
const AD_PKTTYPE: u32 = 0xffff_f000 + 4;
/// PACKET_OUTGOING from linux/if_packet.h.
const PACKET_OUTGOING: u32 = 4;
/// Octets of an accepted frame copied to the socket: all of it.
const SNAPLEN: u32 = 0x0004_0000;

const fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jeq(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter {
        code: JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The filter of the module doc. Jump offsets count from the next instruction.
pub fn ndp_arp_filter() -> Vec<SockFilter> {
    vec![
        stmt(LD_W_ABS, AD_PKTTYPE),  // 0
        jeq(PACKET_OUTGOING, 10, 0), // 1 -> 12 | 2
        stmt(LD_H_ABS, 12),          // 2
        jeq(0x0806, 0, 2),           // 3 -> 4 | 6
        stmt(LD_H_ABS, 20),          // 4
        jeq(1, 5, 6),                // 5 -> 11 | 12
        jeq(0x86dd, 0, 5),           // 6 -> 7 | 12
        stmt(LD_B_ABS, 20),          // 7
        jeq(58, 0, 3),               // 8 -> 9 | 12
        stmt(LD_B_ABS, 54),          // 9
        jeq(135, 0, 1),              // 10 -> 11 | 12
        stmt(RET_K, SNAPLEN),        // 11
        stmt(RET_K, 0),              // 12
    ]
}

/// A program accepting every frame, for diagnostic sockets (e.g. a test's client side).
pub fn accept_all() -> Vec<SockFilter> {
    vec![stmt(RET_K, SNAPLEN)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::announcements;
    use crate::wire::{encode_frame, MacAddr};

    /// Test double: runs the opcodes `ndp_arp_filter` uses, with the kernel's semantics for
    /// them (an out-of-bounds packet load returns 0, i.e. drops). Returns the accepted length.
    fn run(program: &[SockFilter], packet: &[u8], pkttype: u32) -> u32 {
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        // Bounded: classic BPF only jumps forward, so at most one pass over the program.
        for _ in 0..=program.len() {
            let Some(ins) = program.get(pc) else {
                return 0;
            };
            pc += 1;
            let load = |width: usize| -> Option<u32> {
                if ins.k == AD_PKTTYPE {
                    return Some(pkttype);
                }
                let start = usize::try_from(ins.k).ok()?;
                let bytes = packet.get(start..start.checked_add(width)?)?;
                Some(bytes.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
            };
            match ins.code {
                LD_W_ABS | LD_H_ABS | LD_B_ABS => {
                    let width = match ins.code {
                        LD_W_ABS => 4,
                        LD_H_ABS => 2,
                        _ => 1,
                    };
                    match load(width) {
                        Some(v) => acc = v,
                        None => return 0,
                    }
                }
                JEQ_K => {
                    let off = if acc == ins.k { ins.jt } else { ins.jf };
                    pc += usize::from(off);
                }
                RET_K => return ins.k,
                other => panic!("opcode {other:#x} not in the test interpreter"),
            }
        }
        panic!("program did not return");
    }

    fn ns_frame() -> Vec<u8> {
        // An unsolicited NA turned into an NS by its type octet; the filter does not check
        // checksums, so this is enough to reach the type test.
        let mut bytes = encode_frame(
            announcements(
                "2001:db8::1".parse().expect("addr"),
                MacAddr([2, 0, 0, 0, 0, 1]),
            )
            .first()
            .expect("one NA"),
        );
        if let Some(t) = bytes.get_mut(54) {
            *t = 135;
        }
        bytes
    }

    #[test]
    fn accepts_arp_requests_and_neighbor_solicitations_only() {
        let prog = ndp_arp_filter();
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let [request, reply] = announcements("192.0.2.1".parse().expect("addr"), mac)
            .iter()
            .map(encode_frame)
            .collect::<Vec<_>>()
            .try_into()
            .expect("two ARP frames");
        let na = encode_frame(
            announcements("2001:db8::1".parse().expect("addr"), mac)
                .first()
                .expect("one NA"),
        );
        let ns = ns_frame();
        let mut ipv4 = request.clone();
        if let Some(t) = ipv4.get_mut(12..14) {
            t.copy_from_slice(&[0x08, 0x00]);
        }
        let mut ns_with_hop_by_hop = ns.clone();
        if let Some(nh) = ns_with_hop_by_hop.get_mut(20) {
            *nh = 0;
        }
        const HOST: u32 = 0;
        let cases: [(&str, &[u8], u32, bool); 8] = [
            ("ARP request", &request, HOST, true),
            ("ARP reply", &reply, HOST, false),
            ("NS", &ns, HOST, true),
            ("NA", &na, HOST, false),
            ("IPv4", &ipv4, HOST, false),
            (
                "IPv6 with an extension header",
                &ns_with_hop_by_hop,
                HOST,
                false,
            ),
            ("our own NS going out", &ns, PACKET_OUTGOING, false),
            ("runt frame", &[0x08, 0x06], HOST, false),
        ];
        for (name, packet, pkttype, accept) in cases {
            let verdict = run(&prog, packet, pkttype);
            assert_eq!(verdict != 0, accept, "{name}: verdict {verdict}");
        }
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let prog = ndp_arp_filter();
        for (i, ins) in prog.iter().enumerate() {
            if ins.code == JEQ_K {
                for off in [ins.jt, ins.jf] {
                    assert!(i + 1 + usize::from(off) < prog.len(), "insn {i}");
                }
            }
        }
        assert_eq!(prog.last().map(|i| i.code), Some(RET_K));
    }
}
