//! Prefix encoding shared by the NLRI and Withdrawn Routes fields (RFC 4271 §4.3) and by
//! MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §5).
//!
//! ```text
//! +---------------------------+
//! |   Length (1 octet)        |   prefix length in bits
//! +---------------------------+
//! |   Prefix (variable)       |   ceil(Length / 8) octets, trailing bits irrelevant
//! +---------------------------+
//! ```
//!
//! This is the hot path: one pass, no allocation beyond the output `Vec`, /32 and /128 handled
//! by a fixed-size fast path.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A prefix field that cannot be parsed: a length beyond the address width, or octets missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Prefix length greater than 32 (IPv4) or 128 (IPv6).
    #[error("prefix length {0} exceeds the address width")]
    LengthTooLong(u8),
    /// The field ends inside a prefix.
    #[error("prefix truncated: {needed} octets needed, {available} left")]
    Truncated {
        /// Octets the length octet asks for.
        needed: usize,
        /// Octets left in the field.
        available: usize,
    },
}

/// Encoded size of a prefix with `prefix_len` bits: the length octet plus the prefix octets.
#[inline]
pub fn prefix_encoded_len(prefix_len: u8) -> usize {
    1 + usize::from(prefix_len).div_ceil(8)
}

/// Encoded size of any prefix.
#[inline]
pub fn net_encoded_len(net: &IpNet) -> usize {
    prefix_encoded_len(net.prefix_len())
}

#[inline]
fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

#[inline]
fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// The address octets of a `len`-bit prefix (RFC 4271 §4.3: the fewest octets that hold
/// `len` bits) from the head of `input`, zero-padded to an `N`-octet address, and what follows.
#[inline]
fn prefix_octets<const N: usize>(len: u8, input: &[u8]) -> Result<([u8; N], &[u8]), PrefixError> {
    if usize::from(len) > N * 8 {
        return Err(PrefixError::LengthTooLong(len));
    }
    let n = usize::from(len).div_ceil(8);
    let Some((bytes, rest)) = input.split_at_checked(n) else {
        return Err(PrefixError::Truncated {
            needed: n,
            available: input.len(),
        });
    };
    let mut octets = [0u8; N];
    if let Some(dst) = octets.get_mut(..n) {
        dst.copy_from_slice(bytes);
    }
    Ok((octets, rest))
}

/// Decodes a sequence of IPv4 prefixes filling `input` exactly, appending to `out`. Host bits
/// beyond the prefix length are cleared (RFC 4271 §4.3: they are irrelevant).
pub fn decode_ipv4_prefixes(input: &[u8], out: &mut Vec<Ipv4Net>) -> Result<(), PrefixError> {
    // A /32 takes 5 octets: reserving for that case is exact for host routes (our main load)
    // and bounded by the input size.
    out.reserve(input.len() / 5);
    let mut rest = input;
    // Each iteration consumes at least one octet, so the loop is bounded by input.len().
    while let Some((&len, tail)) = rest.split_first() {
        if len == 32 {
            let Some((octets, tail)) = tail.split_first_chunk::<4>() else {
                return Err(PrefixError::Truncated {
                    needed: 4,
                    available: tail.len(),
                });
            };
            out.push(
                Ipv4Net::new(Ipv4Addr::from(*octets), 32)
                    .map_err(|_| PrefixError::LengthTooLong(len))?,
            );
            rest = tail;
            continue;
        }
        let (octets, tail) = prefix_octets::<4>(len, tail)?;
        let addr = u32::from_be_bytes(octets) & mask_v4(len);
        out.push(
            Ipv4Net::new(Ipv4Addr::from(addr), len).map_err(|_| PrefixError::LengthTooLong(len))?,
        );
        rest = tail;
    }
    Ok(())
}

/// Decodes a sequence of IPv6 prefixes filling `input` exactly, appending to `out`.
pub fn decode_ipv6_prefixes(input: &[u8], out: &mut Vec<Ipv6Net>) -> Result<(), PrefixError> {
    out.reserve(input.len() / 17);
    let mut rest = input;
    // Each iteration consumes at least one octet: bounded by input.len().
    while let Some((&len, tail)) = rest.split_first() {
        let (octets, tail) = prefix_octets::<16>(len, tail)?;
        let addr = u128::from_be_bytes(octets) & mask_v6(len);
        out.push(
            Ipv6Net::new(Ipv6Addr::from(addr), len).map_err(|_| PrefixError::LengthTooLong(len))?,
        );
        rest = tail;
    }
    Ok(())
}

/// Appends a `len`-bit prefix: its length, then the fewest octets of the address `octets`
/// that hold it (RFC 4271 §4.3).
#[inline]
fn put_prefix(len: u8, octets: &[u8], buf: &mut BytesMut) {
    buf.put_u8(len);
    buf.put_slice(octets.get(..usize::from(len).div_ceil(8)).unwrap_or(octets));
}

/// Appends one IPv4 prefix.
#[inline]
pub fn encode_ipv4_prefix(net: &Ipv4Net, buf: &mut BytesMut) {
    put_prefix(net.prefix_len(), &net.addr().octets(), buf);
}

/// Appends a run of IPv4 prefixes. The hot path of UPDATE encoding: prefixes are staged in a
/// stack buffer, each written as a fixed 5-octet store and advanced by its real length, then
/// copied out in one call per 64 prefixes instead of one capacity check per prefix.
pub fn encode_ipv4_prefixes(nets: &[Ipv4Net], buf: &mut BytesMut) {
    const PER_CHUNK: usize = 64;
    let mut stage = [0u8; 5 * PER_CHUNK];
    for group in nets.chunks(PER_CHUNK) {
        let mut len = 0;
        for net in group {
            let plen = net.prefix_len();
            let [a, b, c, d] = net.addr().octets();
            // len <= 5 * 63 here, so the 5-octet window always exists.
            if let Some(dst) = stage.get_mut(len..len + 5) {
                dst.copy_from_slice(&[plen, a, b, c, d]);
            }
            len += prefix_encoded_len(plen);
        }
        buf.put_slice(stage.get(..len).unwrap_or_default());
    }
}

/// Appends one IPv6 prefix.
#[inline]
pub fn encode_ipv6_prefix(net: &Ipv6Net, buf: &mut BytesMut) {
    put_prefix(net.prefix_len(), &net.addr().octets(), buf);
}

/// Appends one prefix of either family.
#[inline]
pub fn encode_prefix(net: &IpNet, buf: &mut BytesMut) {
    match net {
        IpNet::V4(n) => encode_ipv4_prefix(n, buf),
        IpNet::V6(n) => encode_ipv6_prefix(n, buf),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_beyond_the_length_are_cleared() {
        let mut out = Vec::new();
        // 10.1.2.255/23 on the wire: length 23, three octets.
        decode_ipv4_prefixes(&[23, 10, 1, 3], &mut out).unwrap();
        assert_eq!(out, vec!["10.1.2.0/23".parse::<Ipv4Net>().unwrap()]);
    }

    #[test]
    fn length_33_and_truncation_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            decode_ipv4_prefixes(&[33, 1, 2, 3, 4, 5], &mut out),
            Err(PrefixError::LengthTooLong(33))
        );
        assert_eq!(
            decode_ipv4_prefixes(&[32, 1, 2, 3], &mut out),
            Err(PrefixError::Truncated {
                needed: 4,
                available: 3
            })
        );
        assert!(decode_ipv6_prefixes(&[129], &mut Vec::new()).is_err());
    }

    #[test]
    fn zero_length_prefix_is_the_default_route() {
        let mut out = Vec::new();
        decode_ipv6_prefixes(&[0], &mut out).unwrap();
        assert_eq!(out, vec!["::/0".parse::<Ipv6Net>().unwrap()]);
    }
}
