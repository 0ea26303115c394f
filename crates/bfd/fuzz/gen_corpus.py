#!/usr/bin/env python3
"""Writes the seed corpus of the crates/bfd fuzz targets (corpus/<target>/<name>) and
corpus/SHA256SUMS. Packets are packed by hand from the RFC 5880 section 4.1 layout."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
OUR_DISCR = 0x01020304  # the session of checks::check_session_step


def pkt(state, diag=0, flags=0, mult=3, length=24, my=0x2222, your=0, tx=1_000_000,
        rx=300_000, echo=0, version=1):
    """flags: P=0x20 F=0x10 C=0x08 A=0x04 D=0x02 M=0x01"""
    return struct.pack(">BBBBIIIII", (version << 5) | diag, (state << 6) | flags, mult,
                       length, my, your, tx, rx, echo)


DOWN, INIT, UP, ADMIN_DOWN = 1, 2, 3, 0
P, F, A, D, M = 0x20, 0x10, 0x04, 0x02, 0x01

decode_seeds = {
    "frr_down": pkt(DOWN, rx=300_000, echo=50_000, my=1),
    "up_poll": pkt(UP, flags=P, your=7, tx=50_000, rx=50_000),
    "up_final": pkt(UP, flags=F, your=7, tx=50_000, rx=50_000),
    "admin_down_diag7": pkt(ADMIN_DOWN, diag=7, your=7),
    "demand_up": pkt(UP, flags=D, your=7),
    "poll_and_final": pkt(UP, flags=P | F, your=7),
    "padded": pkt(INIT, your=7) + b"\xff" * 8,
    "auth_bit": pkt(DOWN, flags=A, length=26) + b"\x01\x02",
    "bad_version": pkt(DOWN, version=2),
    "short": pkt(DOWN)[:23],
    "length_exceeds_payload": pkt(DOWN, length=30),
    "zero_detect_mult": pkt(DOWN, mult=0),
    "m_bit": pkt(DOWN, flags=M),
    "zero_my_discriminator": pkt(DOWN, my=0),
}

ev_rx = lambda p: b"\x00" + p
TX, DETECT, START, ADMIN_UP = b"\x01", b"\x02", b"\x03", b"\x06"
params = lambda tx_ms, rx_ms, mult, passive: b"\x04" + struct.pack(
    ">HHBB", tx_ms // 10, rx_ms // 10, mult, passive)
admin_down = lambda diag: b"\x05" + bytes([diag])

handshake = (START + ev_rx(pkt(DOWN)) + ev_rx(pkt(INIT, your=OUR_DISCR))
             + ev_rx(pkt(UP, flags=F, your=OUR_DISCR, tx=50_000, rx=50_000)) + TX)
session_seeds = {
    "handshake_up": handshake,
    "up_then_detection_expiry": handshake + DETECT + TX,
    "up_then_profile_change_and_final": handshake + params(800, 100, 5, 0)
    + ev_rx(pkt(UP, flags=F, your=OUR_DISCR)) + TX,
    "profile_change_during_up_poll": START + ev_rx(pkt(INIT, your=OUR_DISCR))
    + params(800, 100, 5, 0) + ev_rx(pkt(UP, flags=F, your=OUR_DISCR)) + TX,
    "peer_poll_answered": handshake + ev_rx(pkt(UP, flags=P, your=OUR_DISCR)),
    "peer_admin_down": handshake + ev_rx(pkt(ADMIN_DOWN, diag=7, your=OUR_DISCR)),
    "admin_down_and_up": handshake + admin_down(7) + TX + ADMIN_UP + ev_rx(pkt(DOWN)),
    "passive_then_packet": params(300, 300, 3, 1) + START + TX + ev_rx(pkt(DOWN)) + TX,
    "remote_demand": handshake + ev_rx(pkt(UP, flags=D, your=OUR_DISCR)) + TX,
    "remote_rx_zero": START + ev_rx(pkt(DOWN, rx=0)) + TX,
}


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("decode_packet", decode_seeds)
write("session_step", session_seeds)
lines = []
for target in ("decode_packet", "session_step"):
    d = os.path.join(CORPUS, target)
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            lines.append(f"{hashlib.sha256(f.read()).hexdigest()}  corpus/{target}/{name}")
with open(os.path.join(CORPUS, "SHA256SUMS"), "w") as f:
    f.write("\n".join(lines) + "\n")
