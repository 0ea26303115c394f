//! Pure parsers for the string-typed fields of the CRDs: address ranges (`spec.addresses`),
//! BGP communities and Go durations. No allocation proportional to input beyond the input.

// Config input is untrusted: no panics on any of it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::net::IpAddr;
use std::time::Duration;

use crate::model::{AddressRange, BgpCommunity, IpFamily};

/// Why an `spec.addresses` entry is not a CIDR or a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Neither `a/len` nor `a-b`.
    #[error("expected a CIDR (10.0.0.0/24) or a range (10.0.0.1-10.0.0.9)")]
    Syntax,
    /// The address part does not parse.
    #[error("invalid IP address {0:?}")]
    BadIp(String),
    /// The prefix length does not parse or exceeds the family's width.
    #[error("invalid prefix length {0:?}")]
    BadPrefixLen(String),
    /// `a-b` with an IPv4 and an IPv6 end.
    #[error("range ends are of different address families")]
    MixedFamilies,
    /// `a-b` with `a > b`.
    #[error("range start is after range end")]
    Reversed,
}

/// Parses one `spec.addresses` entry: a CIDR (host bits are masked off, as Go's
/// `net.ParseCIDR` does, which MetalLB uses) or an inclusive range `start-end` (spaces around
/// the ends allowed).
pub fn parse_address_range(s: &str) -> Result<AddressRange, AddressError> {
    if let Some((start, end)) = s.split_once('-') {
        let start = parse_ip(start.trim())?;
        let end = parse_ip(end.trim())?;
        if IpFamily::of(&start) != IpFamily::of(&end) {
            return Err(AddressError::MixedFamilies);
        }
        if start > end {
            return Err(AddressError::Reversed);
        }
        return Ok(AddressRange {
            start,
            end,
            cidr_len: None,
        });
    }
    let (addr, len) = s.split_once('/').ok_or(AddressError::Syntax)?;
    let ip = parse_ip(addr)?;
    let width = family_width(IpFamily::of(&ip));
    // Go's ParseCIDR accepts only decimal digits here (no sign, no spaces).
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::BadPrefixLen(len.to_string()));
    }
    let len: u8 = len
        .parse()
        .map_err(|_| AddressError::BadPrefixLen(len.to_string()))?;
    if len > width {
        return Err(AddressError::BadPrefixLen(len.to_string()));
    }
    let (start, end) = prefix_bounds(ip, len);
    Ok(AddressRange {
        start,
        end,
        cidr_len: Some(len),
    })
}

fn parse_ip(s: &str) -> Result<IpAddr, AddressError> {
    s.parse().map_err(|_| AddressError::BadIp(s.to_string()))
}

fn family_width(f: IpFamily) -> u8 {
    match f {
        IpFamily::V4 => 32,
        IpFamily::V6 => 128,
    }
}

fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(family: IpFamily, bits: u128) -> IpAddr {
    match family {
        // Callers only pass values derived from an IPv4 address, so the truncation is exact.
        IpFamily::V4 => IpAddr::V4(std::net::Ipv4Addr::from(bits as u32)),
        IpFamily::V6 => IpAddr::V6(std::net::Ipv6Addr::from(bits)),
    }
}

/// Host-part mask of a `len`-bit prefix in a `width`-bit family.
fn host_mask(width: u8, len: u8) -> u128 {
    let host_bits = u32::from(width.saturating_sub(len));
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

/// First and last address of the prefix `ip/len`.
fn prefix_bounds(ip: IpAddr, len: u8) -> (IpAddr, IpAddr) {
    let family = IpFamily::of(&ip);
    let mask = host_mask(family_width(family), len);
    let bits = to_bits(ip);
    (
        from_bits(family, bits & !mask),
        from_bits(family, bits | mask),
    )
}

/// Whether two ranges share at least one address.
pub fn ranges_overlap(a: &AddressRange, b: &AddressRange) -> bool {
    a.family() == b.family() && a.start <= b.end && b.start <= a.end
}

/// The minimal list of CIDR prefixes exactly covering `range`, in address order (Go's
/// `ipaddr.Summarize`, which MetalLB applies to `a-b` ranges). At most 2 × width entries.
pub fn range_to_prefixes(range: &AddressRange) -> Vec<(IpAddr, u8)> {
    let family = range.family();
    let width = family_width(family);
    let mut out = Vec::new();
    let mut cur = to_bits(range.start);
    let end = to_bits(range.end);
    // Each iteration emits the largest aligned block starting at `cur` that fits; there are
    // at most two blocks per prefix length, so the loop is bounded by 2 * width + 1.
    for _ in 0..=(2 * usize::from(width)) {
        let mut len = width;
        while len > 0 {
            let bigger = host_mask(width, len - 1);
            if cur & bigger != 0 || cur | bigger > end {
                break;
            }
            len -= 1;
        }
        out.push((from_bits(family, cur), len));
        let last = cur | host_mask(width, len);
        if last >= end {
            break;
        }
        cur = last + 1;
    }
    out
}

/// The shortest prefix length among the CIDRs covering `range` (its own length for a CIDR).
pub fn shortest_prefix_len(range: &AddressRange) -> u8 {
    match range.cidr_len {
        Some(len) => len,
        None => range_to_prefixes(range)
            .iter()
            .map(|(_, len)| *len)
            .min()
            .unwrap_or(family_width(range.family())),
    }
}

/// Why a community string is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// Not of the form `AA:NN` or `large:A:B:C` (could be an alias name instead).
    #[error("expected AA:NN, large:A:B:C or the name of a Community alias")]
    Format,
    /// The form is right but a number is out of range.
    #[error("{0:?} is out of range (AA:NN takes 16-bit numbers, large:A:B:C 32-bit ones)")]
    Value(String),
}

/// Parses a community: RFC 1997 `AA:NN` (two 16-bit numbers) or RFC 8092 `large:A:B:C` (three
/// 32-bit numbers).
pub fn parse_community(s: &str) -> Result<BgpCommunity, CommunityError> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["large", a, b, c] => Ok(BgpCommunity::Large(
            parse_num::<u32>(a)?,
            parse_num::<u32>(b)?,
            parse_num::<u32>(c)?,
        )),
        [aa, nn] => {
            let aa = parse_num::<u16>(aa)?;
            let nn = parse_num::<u16>(nn)?;
            Ok(BgpCommunity::Standard(u32::from(aa) << 16 | u32::from(nn)))
        }
        _ => Err(CommunityError::Format),
    }
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, CommunityError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommunityError::Format);
    }
    s.parse().map_err(|_| CommunityError::Value(s.to_string()))
}

/// Formats a community the way [`parse_community`] reads it.
pub fn format_community(c: &BgpCommunity) -> String {
    match c {
        BgpCommunity::Standard(v) => format!("{}:{}", v >> 16, v & 0xffff),
        BgpCommunity::Large(a, b, c) => format!("large:{a}:{b}:{c}"),
    }
}

/// Parses a Go duration (`metav1.Duration`: `90s`, `1m30s`, `500ms`); negative ones are
/// rejected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: kube::core::Duration = s.parse().map_err(|e| format!("{e}"))?;
    if d.is_negative() {
        return Err("must not be negative".into());
    }
    Ok(d.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_is_masked_like_go_parse_cidr() {
        let r = parse_address_range("192.168.10.7/24").unwrap();
        assert_eq!(r.start, ip("192.168.10.0"));
        assert_eq!(r.end, ip("192.168.10.255"));
        assert_eq!(r.cidr_len, Some(24));
        let r = parse_address_range("fc00:f853:ccd:e799::/124").unwrap();
        assert_eq!(r.end, ip("fc00:f853:ccd:e799::f"));
        let r = parse_address_range("0.0.0.0/0").unwrap();
        assert_eq!(r.end, ip("255.255.255.255"));
        let r = parse_address_range("::/0").unwrap();
        assert_eq!(r.end, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn bad_address_entries_are_rejected_with_a_reason() {
        use AddressError::*;
        let cases = [
            ("10.0.0.0", Syntax),
            ("10.0.0.0/33", BadPrefixLen("33".into())),
            ("10.0.0.0/+8", BadPrefixLen("+8".into())),
            ("10.0.0.0/", BadPrefixLen("".into())),
            ("::/129", BadPrefixLen("129".into())),
            ("10.0.0.300/8", BadIp("10.0.0.300".into())),
            ("10.0.0.2-10.0.0.1", Reversed),
            ("10.0.0.1-::1", MixedFamilies),
            ("10.0.0.1-", BadIp("".into())),
            ("", Syntax),
        ];
        for (input, want) in cases {
            assert_eq!(parse_address_range(input), Err(want), "{input}");
        }
    }

    #[test]
    fn ranges_accept_spaces_and_single_addresses() {
        let r = parse_address_range("192.168.9.1 - 192.168.9.5").unwrap();
        assert_eq!(
            (r.start, r.end, r.cidr_len),
            (ip("192.168.9.1"), ip("192.168.9.5"), None)
        );
        let r = parse_address_range("::1-::1").unwrap();
        assert_eq!(r.start, r.end);
    }

    #[test]
    fn range_summarizes_into_minimal_prefixes() {
        let r = parse_address_range("192.168.9.1-192.168.9.5").unwrap();
        let got: Vec<String> = range_to_prefixes(&r)
            .iter()
            .map(|(a, l)| format!("{a}/{l}"))
            .collect();
        assert_eq!(got, ["192.168.9.1/32", "192.168.9.2/31", "192.168.9.4/31"]);
        assert_eq!(shortest_prefix_len(&r), 31);
    }

    #[test]
    fn communities() {
        assert_eq!(
            parse_community("65535:65282"),
            Ok(BgpCommunity::Standard(0xffff_ff02))
        );
        assert_eq!(
            parse_community("large:1:2:4294967295"),
            Ok(BgpCommunity::Large(1, 2, u32::MAX))
        );
        assert_eq!(parse_community("NO_ADVERTISE"), Err(CommunityError::Format));
        assert_eq!(parse_community("1:2:3"), Err(CommunityError::Format));
        assert_eq!(parse_community("large:1:2"), Err(CommunityError::Format));
        assert_eq!(parse_community("-1:2"), Err(CommunityError::Format));
        assert_eq!(
            parse_community("65536:1"),
            Err(CommunityError::Value("65536".into()))
        );
        assert_eq!(
            parse_community("large:1:2:4294967296"),
            Err(CommunityError::Value("4294967296".into()))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("9m0s"), Ok(Duration::from_secs(540)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("-3s").is_err());
        assert!(parse_duration("3").is_err());
        assert!(parse_duration("soon").is_err());
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
            any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        ]
    }

    fn small_v4_range() -> impl Strategy<Value = AddressRange> {
        // Ranges inside 10.0.0.0/24 so that overlaps are frequent.
        (0u32..256, 0u32..256).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            AddressRange {
                start: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + a)),
                end: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + b)),
                cidr_len: None,
            }
        })
    }

    proptest! {
        #[test]
        fn any_cidr_parses_and_contains_its_address(ip in any_ip(), len in 0u8..=128) {
            let len = len.min(family_width(IpFamily::of(&ip)));
            let r = parse_address_range(&format!("{ip}/{len}")).unwrap();
            prop_assert!(r.contains(&ip));
            prop_assert!(r.start <= r.end);
            prop_assert_eq!(shortest_prefix_len(&r), len);
            // The masked form parses to the same range.
            let again = parse_address_range(&format!("{}/{len}", r.start)).unwrap();
            prop_assert_eq!(again, r);
        }

        #[test]
        fn any_ordered_range_parses_and_prefixes_cover_it_exactly(a in any_ip(), b in any_ip()) {
            prop_assume!(IpFamily::of(&a) == IpFamily::of(&b));
            let (lo, hi) = (a.min(b), a.max(b));
            let r = parse_address_range(&format!("{lo}-{hi}")).unwrap();
            prop_assert_eq!((r.start, r.end), (lo, hi));
            prop_assert_eq!(parse_address_range(&format!("{hi}-{lo}")).is_err(), lo != hi);
            let prefixes = range_to_prefixes(&r);
            prop_assert!(prefixes.len() <= 2 * usize::from(family_width(r.family())));
            // Contiguous, aligned and exactly from start to end.
            let mut next = to_bits(lo);
            for (p, len) in &prefixes {
                let (s, e) = prefix_bounds(*p, *len);
                prop_assert_eq!(to_bits(s), next);
                prop_assert_eq!(to_bits(*p), to_bits(s));
                next = to_bits(e).wrapping_add(1);
                if e == hi { break; }
            }
            let (last, last_len) = prefixes[prefixes.len() - 1];
            prop_assert_eq!(prefix_bounds(last, last_len).1, hi);
        }

        #[test]
        fn overlap_matches_brute_force(a in small_v4_range(), b in small_v4_range()) {
            let brute = (0u32..256)
                .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
                .any(|ip| a.contains(&ip) && b.contains(&ip));
            prop_assert_eq!(ranges_overlap(&a, &b), brute);
            prop_assert_eq!(ranges_overlap(&a, &b), ranges_overlap(&b, &a));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_address_range(&s);
            let _ = parse_community(&s);
            let _ = parse_duration(&s);
        }
    }
}
