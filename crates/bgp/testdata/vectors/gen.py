#!/usr/bin/env python3
"""Writes the BGP wire vectors in this folder from hand-written RFC wire formats.

Run from this folder: python3 gen.py. Each vector is one file holding one whole message as
a single hex line (marker included). Valid vectors decode and re-encode byte for byte;
malformed ones list their expected NOTIFICATION in malformed/EXPECTED.tsv.
"""
import hashlib
import os


def msg(msg_type, body_hex, length=None):
    body = bytes.fromhex("".join(body_hex.split()))
    total = length if length is not None else len(body) + 19
    return b"\xff" * 16 + total.to_bytes(2, "big") + bytes([msg_type]) + body


VALID = {
    # RFC 4271 §4.4
    "keepalive": msg(4, ""),
    # RFC 4271 §4.2 + RFC 5492 capabilities: MP v4/v6 (RFC 4760), route refresh (RFC 2918),
    # extended message (RFC 8654), graceful restart (RFC 4724), 4-octet AS (RFC 6793), FQDN.
    "open_capabilities": msg(1, """04 fde9 005a c0000201 40
        02060104000100 01 02060104000200 01 02020200 02020600
        020c400a8078000101800002 0100 0206410400 00fde9
        020a4908056e6f6465310178 0204800 2abcd""".replace(" ", "")),
    # RFC 9072 extended optional parameters length.
    "open_rfc9072": msg(1, "04fde9005ac0000201 ffff 010d 020006 41040000fde9 020101 c8ff" + "5a" * 255),
    # RFC 4271 §4.3 with every IPv4 attribute, 4-octet AS_PATH.
    "update_ipv4_all_attributes": msg(2, """0002080a 005e 40010100 400 20a02020000fde90000fdea
        400304c0000201 80040400000064 40050400 0000c8 400600 c007080000fde9c0000201
        c00808ffffff01fde90064 c010080002fde900000064 c0200c0000fde90000000100000002
        c09602abcd 20cb007107 18c63364"""),
    # RFC 4760 MP_REACH (global + link-local next hop) and MP_UNREACH, IPv6 unicast.
    "update_ipv6_mp": msg(2, """0000 005c 800e3d 000201 20 20010db8000000000000000000000001
        fe800000000000000000000000000001 00 8020010db8000000000000000000000a01 3020010db80001
        800f0c 000201 4020010db800020000 40010100 40020602010000fde9"""),
    # RFC 6793 §4.2.2 towards a 2-octet peer: AS_TRANS, AS4_PATH, AS4_AGGREGATOR.
    "update_as2_as4_path": msg(2, """0000 0035 40010102 400206020 25ba0fde9 4003040a000001
        c007065ba00a000001 c0110a0202fa56ea000000fde9 c01208fa56ea000a000001 180a0101"""),
    # Extended Length attribute (70 communities, 280 octets).
    "update_extended_length": msg(2, "0000 011c d0080118" + "".join("fde8%04x" % i for i in range(70))),
    # RFC 4724 §2 End-of-RIB.
    "update_eor_ipv4": msg(2, "0000 0000"),
    "update_eor_ipv6": msg(2, "0000 0006 800f03000201"),
    # RFC 9003 Cease / Administrative Shutdown with a Shutdown Communication.
    "notification_cease_shutdown": msg(3, "0602 0b 6d61696e74656e616e6365"),
    # RFC 2918 ROUTE-REFRESH.
    "route_refresh_ipv6": msg(5, "0002 00 01"),
}

MALFORMED = {
    # name: (message, code, subcode, data hex)
    "bad_marker": (b"\xfe" + msg(4, "")[1:], 1, 1, ""),
    "length_below_19": (msg(4, "", length=18), 1, 2, "0012"),
    "keepalive_length_20": (msg(4, "00"), 1, 2, "0014"),
    "bad_type_6": (msg(6, ""), 1, 3, "06"),
    "open_version_3": (msg(1, "03 fde9 005a c0000201 00"), 2, 1, "0004"),
    "open_hold_time_1": (msg(1, "04 fde9 0001 c0000201 00"), 2, 6, ""),
    "open_bgp_id_zero": (msg(1, "04 fde9 005a 00000000 00"), 2, 3, ""),
    "open_unsupported_parameter": (msg(1, "04 fde9 005a c0000201 04 0102abcd"), 2, 4, ""),
    "update_withdrawn_overrun": (msg(2, "0010 0000"), 3, 1, ""),
    "update_unknown_well_known": (msg(2, "0000 0005 40c802abcd"), 3, 2, "40c802abcd"),
    "update_nlri_length_33": (msg(2, "0000 0000 210a00000100"), 3, 10, ""),
    "update_mp_reach_bad_next_hop": (msg(2, "0000 000e 800e0b000201050102030405 0000"), 3, 9, "800e0b0002010501020304050000"),
    "update_mp_unreach_twice": (msg(2, "0000 000c 800f03000201 800f03000201"), 3, 1, ""),
}


def main():
    os.makedirs("valid", exist_ok=True)
    os.makedirs("malformed", exist_ok=True)
    sums = []
    for name, data in VALID.items():
        path = f"valid/{name}.hex"
        with open(path, "w") as f:
            f.write(data.hex() + "\n")
        sums.append(path)
    rows = ["name\tcode\tsubcode\tdata"]
    for name, (data, code, sub, ndata) in MALFORMED.items():
        path = f"malformed/{name}.hex"
        with open(path, "w") as f:
            f.write(data.hex() + "\n")
        rows.append(f"{name}\t{code}\t{sub}\t{ndata}")
        sums.append(path)
    # ROUTE-REFRESH of the wrong length: RFC 7313 §5 wants the whole message as data.
    rr = msg(5, "0001 0001 ff")
    with open("malformed/route_refresh_length_24.hex", "w") as f:
        f.write(rr.hex() + "\n")
    rows.append(f"route_refresh_length_24\t7\t1\t{rr.hex()}")
    sums.append("malformed/route_refresh_length_24.hex")
    with open("malformed/EXPECTED.tsv", "w") as f:
        f.write("\n".join(rows) + "\n")
    with open("SHA256SUMS", "w") as f:
        for path in sorted(sums):
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
            f.write(f"{digest}  {path}\n")


if __name__ == "__main__":
    main()
