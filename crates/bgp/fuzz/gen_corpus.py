#!/usr/bin/env python3
"""Writes the seed corpus of the crates/bgp fuzz targets (see corpus/README.md).

Seeds are the messages of crates/bgp/testdata/demo.hex plus hand-made malformed ones, each
prefixed with the selector octet of fuzz/checks.rs (bit 0: 4-octet AS, bit 1: extended message,
bits 2..: read size - 1 for framing). Run from anywhere: python3 crates/bgp/fuzz/gen_corpus.py
"""
import hashlib, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "testdata", "demo.hex")

def msg(t, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), t) + body

def update(withdrawn=b"", attrs=b"", nlri=b""):
    return msg(2, struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri)

demo = [bytes.fromhex(l.strip()) for l in open(DEMO) if l.strip() and not l.lstrip().startswith("#")]
as2_path = bytes([0x40, 1, 1, 0, 0x40, 2, 4, 2, 1, 0xFD, 0xE9, 0x40, 3, 4, 192, 0, 2, 1])
malformed = {
    "bad_marker": b"\xff" * 3 + b"\x00" + b"\xff" * 12 + struct.pack("!HB", 19, 4),
    "length_18": b"\xff" * 16 + struct.pack("!HB", 18, 4),
    "bad_type": msg(9, b""),
    "open_v3": msg(1, bytes([3]) + struct.pack("!HH", 65000, 90) + bytes([192, 0, 2, 1, 0])),
    "open_hold_1": msg(1, bytes([4]) + struct.pack("!HH", 65000, 1) + bytes([192, 0, 2, 1, 0])),
    "open_ext_params": msg(1, bytes([4]) + struct.pack("!HH", 65000, 90) + bytes([192, 0, 2, 1, 255, 255]) + struct.pack("!H", 9) + bytes([2]) + struct.pack("!H", 6) + bytes([65, 4, 0, 0, 0xFD, 0xE8])),
    "withdrawn_overrun": msg(2, bytes([0, 9, 0, 0])),
    "nlri_len_33": update(attrs=as2_path, nlri=bytes([33, 10, 0, 0, 1, 1])),
    "origin_5": update(attrs=bytes([0x40, 1, 1, 5]) + as2_path[4:], nlri=bytes([32, 10, 1, 2, 3])),
    "attr_overrun": update(attrs=bytes([0x40, 1, 9, 0]), nlri=b""),
    "unknown_well_known": update(attrs=bytes([0x40, 99, 1, 7])),
    "mp_reach_bad_nh_len": update(attrs=bytes([0x80, 14, 6, 0, 2, 1, 3, 0, 0])),
    "notification_cease_bad_text": msg(3, bytes([6, 2, 40]) + b"short"),
    "route_refresh_long": msg(5, bytes([0, 1, 0, 1, 0])),
}

def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)

for i, m in enumerate(demo):
    write("decode_message", f"demo_{i:02}_as4", b"\x01" + m)
    write("decode_message", f"demo_{i:02}_as2", b"\x00" + m)
for name, m in malformed.items():
    write("decode_message", name, b"\x01" + m)
write("decode_message", "as2_update", b"\x00" + update(attrs=as2_path, nlri=bytes([32, 10, 1, 2, 3])))

stream = b"".join(demo)
for step in (1, 7, 19, 64):
    write("framing", f"demo_stream_read_{step}", bytes([0x01 | ((step - 1) << 2)]) + stream)
write("framing", "demo_then_bad_marker", b"\x05" + stream + malformed["bad_marker"] + demo[2])
write("framing", "demo_then_truncated", b"\x09" + stream + demo[3][:30])
write("framing", "length_18", b"\x01" + malformed["length_18"])
