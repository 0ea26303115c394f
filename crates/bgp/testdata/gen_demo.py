#!/usr/bin/env python3
# Generates crates/bgp/testdata/demo.hex from the RFC 4271 §4 wire formats (no BGP library):
#   python3 crates/bgp/testdata/gen_demo.py > crates/bgp/testdata/demo.hex
import struct, ipaddress
def msg(t, body): return b'\xff'*16 + struct.pack('!HB', 19+len(body), t) + body
def cap(code, val): return bytes([code, len(val)]) + val
def open_(asn2, hold, bgpid, caps):
    params = b''.join(bytes([2, len(c)]) + c for c in caps)
    return msg(1, bytes([4]) + struct.pack('!HH', asn2, hold) + ipaddress.IPv4Address(bgpid).packed + bytes([len(params)]) + params)
def attr(flags, code, val):
    if len(val) > 255: return bytes([flags|0x10, code]) + struct.pack('!H', len(val)) + val
    return bytes([flags, code, len(val)]) + val
def pfx(s):
    n = ipaddress.ip_network(s); l = n.prefixlen
    return bytes([l]) + n.network_address.packed[:(l+7)//8]
def update(withdrawn=b'', attrs=b'', nlri=b''):
    return msg(2, struct.pack('!H', len(withdrawn)) + withdrawn + struct.pack('!H', len(attrs)) + attrs + nlri)
mp4 = cap(1, struct.pack('!HBB', 1, 0, 1)); mp6 = cap(1, struct.pack('!HBB', 2, 0, 1))
rr = cap(2, b''); as4 = lambda a: cap(65, struct.pack('!I', a))
gr = cap(64, struct.pack('!H', 120) + struct.pack('!HBB', 1, 1, 0x80) + struct.pack('!HBB', 2, 1, 0x80))
fqdn = cap(73, bytes([len(b'node-a')]) + b'node-a' + bytes([len(b'example.net')]) + b'example.net')
out = []
out.append(("OPEN from FerroLB: AS 4200000001 (My AS = AS_TRANS), hold 90, MP IPv4+IPv6, Route Refresh, Graceful Restart, 4-octet AS, FQDN",
  open_(23456, 90, '192.0.2.1', [mp4, mp6, rr, gr, as4(4200000001), fqdn])))
out.append(("OPEN from the router: AS 65000, hold 180, MP IPv4+IPv6, Route Refresh, 4-octet AS. The pair sets the context: 4-octet AS on, IPv4+IPv6",
  open_(65000, 180, '192.0.2.254', [mp4, mp6, rr, as4(65000)])))
out.append(("KEEPALIVE", msg(4, b'')))
aspath = attr(0x40, 2, bytes([2, 1]) + struct.pack('!I', 4200000001))
a4 = attr(0x40,1,b'\x00') + aspath + attr(0x40,3,ipaddress.IPv4Address('192.0.2.1').packed) + attr(0x80,4,struct.pack('!I',0)) \
   + attr(0xc0,8,struct.pack('!I',(65000<<16)|100) + struct.pack('!I',0xFFFFFF01)) \
   + attr(0xc0,32,struct.pack('!III',4200000001,1,2))
out.append(("UPDATE IPv4: two VIPs /32 with ORIGIN IGP, AS_PATH 4200000001, NEXT_HOP, MED 0, COMMUNITIES 65000:100 NO_EXPORT, LARGE_COMMUNITY 4200000001:1:2",
  update(attrs=a4, nlri=pfx('198.51.100.10/32')+pfx('198.51.100.11/32'))))
mpr = attr(0x80,14, struct.pack('!HBB',2,1,32) + ipaddress.IPv6Address('2001:db8::1').packed + ipaddress.IPv6Address('fe80::1').packed + b'\x00' + pfx('2001:db8:100::10/128') + pfx('2001:db8:100::11/128'))
a6 = mpr + attr(0x40,1,b'\x00') + aspath + attr(0xc0,8,struct.pack('!I',(65000<<16)|100))
out.append(("UPDATE IPv6: MP_REACH_NLRI with next hop 2001:db8::1 + link-local fe80::1, two VIP /128s", update(attrs=a6)))
mpu = attr(0x80,15, struct.pack('!HB',2,1) + pfx('2001:db8:100::11/128'))
out.append(("UPDATE withdraw: 198.51.100.11/32 (Withdrawn Routes) and 2001:db8:100::11/128 (MP_UNREACH_NLRI)",
  update(withdrawn=pfx('198.51.100.11/32'), attrs=mpu)))
out.append(("UPDATE End-of-RIB for IPv4 unicast (RFC 4724 §2): an empty UPDATE", update()))
out.append(("UPDATE End-of-RIB for IPv6 unicast: an empty MP_UNREACH_NLRI", update(attrs=attr(0x80,15,struct.pack('!HB',2,1)))))
txt = "maintenance: node-a drained".encode()
out.append(("NOTIFICATION Cease / Administrative Shutdown with a Shutdown Communication (RFC 9003)", msg(3, bytes([6,2,len(txt)]) + txt)))
print("# Sample BGP messages for scripts/demo.sh: `ferrolb-bgp decode --reencode < crates/bgp/testdata/demo.hex`.")
print("# One whole message per line in hex (marker included); `#` starts a comment. Written by hand")
print("# from the RFC 4271 §4 wire formats (generator: crates/bgp/testdata/README.md).")
for c, m in out:
    print("# " + c); print(m.hex())
