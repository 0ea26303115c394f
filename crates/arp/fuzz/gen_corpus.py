#!/usr/bin/env python3
"""Writes the hand-made seed corpus for the fuzz targets (see corpus/README.md).

Run from crates/arp/fuzz: python3 gen_corpus.py. Deterministic; re-running rewrites the
same files.
"""
import ipaddress
import os
import struct

OUR = bytes([0x02, 0xFE, 0, 0, 0, 1])
CLIENT = bytes([0x02, 0xC1, 0, 0, 0, 2])
BCAST = b"\xff" * 6


def v6(s):
    return ipaddress.IPv6Address(s).packed


def v4(s):
    return ipaddress.IPv4Address(s).packed


def csum(src, dst, msg):
    data = src + dst + struct.pack("!I", len(msg)) + b"\0\0\0\x3a" + msg
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def arp(op, sha, spa, tha, tpa, dst=BCAST):
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + v4(spa) + tha + v4(tpa)
    return dst + sha + b"\x08\x06" + body


def ndp(icmp_type, src, dst, flags, target, options, hop=255, eth_dst=None):
    msg = struct.pack("!BBHI", icmp_type, 0, 0, flags) + v6(target) + options
    c = csum(v6(src), v6(dst), msg)
    msg = msg[:2] + struct.pack("!H", c) + msg[4:]
    ip = struct.pack("!IHBB", 6 << 28, len(msg), 58, hop) + v6(src) + v6(dst)
    if eth_dst is None:
        eth_dst = b"\x33\x33" + v6(dst)[12:]
    return eth_dst + CLIENT + b"\x86\xdd" + ip + msg


def slla(mac):
    return bytes([1, 1]) + mac


def tlla(mac):
    return bytes([2, 1]) + mac


SEEDS = {
    "arp_request": arp(1, CLIENT, "192.0.2.7", b"\0" * 6, "192.0.2.100"),
    "arp_request_padded": arp(1, CLIENT, "192.0.2.7", b"\0" * 6, "192.0.2.100") + b"\0" * 18,
    "arp_reply": arp(2, CLIENT, "192.0.2.7", OUR, "192.0.2.100", dst=OUR),
    "arp_probe": arp(1, CLIENT, "0.0.0.0", b"\0" * 6, "192.0.2.100"),
    "arp_announcement": arp(1, CLIENT, "192.0.2.100", b"\0" * 6, "192.0.2.100"),
    "ns_resolution": ndp(135, "2001:db8::7", "ff02::1:ff00:100", 0, "2001:db8::100", slla(CLIENT)),
    "ns_nud_no_slla": ndp(135, "2001:db8::7", "2001:db8::100", 0, "2001:db8::100", b"", eth_dst=OUR),
    "ns_dad": ndp(135, "::", "ff02::1:ff00:100", 0, "2001:db8::100", b""),
    "ns_unknown_option": ndp(135, "fe80::7", "ff02::1:ff00:100", 0, "2001:db8::100",
                             bytes([14, 1, 1, 2, 3, 4, 5, 6]) + slla(CLIENT)),
    "na_unsolicited": ndp(136, "2001:db8::100", "ff02::1", 1 << 29, "2001:db8::100", tlla(OUR)),
    "ns_zero_length_option": ndp(135, "2001:db8::7", "ff02::1:ff00:100", 0, "2001:db8::100",
                                 bytes([1, 0, 0, 0, 0, 0, 0, 0])),
    "ns_bad_hop_limit": ndp(135, "2001:db8::7", "ff02::1:ff00:100", 0, "2001:db8::100",
                            slla(CLIENT), hop=64),
    "truncated_ipv6_header": ndp(135, "2001:db8::7", "ff02::1:ff00:100", 0, "2001:db8::100",
                                 slla(CLIENT))[:50],
    "short_ipv6_payload": ndp(135, "2001:db8::7", "ff02::1:ff00:100", 0, "2001:db8::100",
                              slla(CLIENT))[:70],
}

for target in ("parse_frame", "respond"):
    os.makedirs(os.path.join("corpus", target), exist_ok=True)
    for name, data in SEEDS.items():
        # respond takes one selector octet first (low bit 1 = own the frame's target).
        payload = data if target == "parse_frame" else b"\x01" + data
        with open(os.path.join("corpus", target, name), "wb") as f:
            f.write(payload)
