//! AS_PATH (type 2, RFC 4271 §5.1.2, §4.3) and AS4_PATH (type 17, RFC 6793 §3).
//!
//! ```text
//! +-----------------+------------------+--------------------------------+
//! | segment type(1) | segment length(1)| ASNs (2 or 4 octets each) ...  |  repeated
//! +-----------------+------------------+--------------------------------+
//! ```
//! ASNs are 4 octets in AS_PATH when both sides have the 4-octet AS capability, else 2; in
//! AS4_PATH always 4.

use bytes::{BufMut, BytesMut};

use crate::wire::iana::AS_TRANS;

/// Path segment type (RFC 4271 §4.3, RFC 5065 §3 for the confederation types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum AsSegmentType {
    /// 1: AS_SET, unordered.
    AsSet,
    /// 2: AS_SEQUENCE, ordered.
    AsSequence,
    /// 3: AS_CONFED_SEQUENCE (RFC 5065).
    AsConfedSequence,
    /// 4: AS_CONFED_SET (RFC 5065).
    AsConfedSet,
}

impl AsSegmentType {
    /// The wire value.
    pub fn value(self) -> u8 {
        match self {
            AsSegmentType::AsSet => 1,
            AsSegmentType::AsSequence => 2,
            AsSegmentType::AsConfedSequence => 3,
            AsSegmentType::AsConfedSet => 4,
        }
    }

    fn from_value(v: u8) -> Option<Self> {
        match v {
            1 => Some(AsSegmentType::AsSet),
            2 => Some(AsSegmentType::AsSequence),
            3 => Some(AsSegmentType::AsConfedSequence),
            4 => Some(AsSegmentType::AsConfedSet),
            _ => None,
        }
    }
}

/// One path segment: 1 to 255 ASNs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AsSegment {
    /// Set or sequence.
    pub kind: AsSegmentType,
    /// The ASNs, in wire order.
    pub asns: Vec<u32>,
}

/// An AS_PATH or AS4_PATH value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AsPath {
    /// Segments in wire order. Empty for a route originated inside the AS (iBGP).
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty path if `asns` is empty).
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let asns: Vec<u32> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: AsSegmentType::AsSequence,
                asns,
            }],
        }
    }

    /// Whether any ASN needs 4 octets.
    pub fn has_four_octet_asn(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)))
    }

    /// The path a 2-octet peer sees in AS_PATH: every 4-octet ASN replaced by AS_TRANS
    /// (RFC 6793 §4.2.2). The original goes into AS4_PATH.
    pub fn with_as_trans(&self) -> AsPath {
        AsPath {
            segments: self
                .segments
                .iter()
                .map(|s| AsSegment {
                    kind: s.kind,
                    asns: s
                        .asns
                        .iter()
                        .map(|&a| {
                            if a > u32::from(u16::MAX) {
                                u32::from(AS_TRANS)
                            } else {
                                a
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The path length for the RFC 6793 §4.2.3 comparison: each ASN of an AS_SEQUENCE counts
    /// one, an AS_SET counts one, confederation segments count zero.
    pub fn count(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                AsSegmentType::AsSequence => s.asns.len(),
                AsSegmentType::AsSet => 1,
                _ => 0,
            })
            .sum()
    }

    /// RFC 6793 §4.2.3: if AS_PATH is shorter than AS4_PATH, AS4_PATH is ignored; otherwise
    /// the leading `count(AS_PATH) - count(AS4_PATH)` ASNs of AS_PATH followed by AS4_PATH.
    pub fn merged_with_as4_path(&self, as4_path: &AsPath) -> AsPath {
        let (n, m) = (self.count(), as4_path.count());
        if n < m {
            return self.clone();
        }
        let mut remaining = n - m;
        let mut segments: Vec<AsSegment> = Vec::new();
        for s in &self.segments {
            match s.kind {
                AsSegmentType::AsSequence if remaining > 0 => {
                    let take = remaining.min(s.asns.len());
                    remaining -= take;
                    segments.push(AsSegment {
                        kind: s.kind,
                        asns: s.asns.iter().take(take).copied().collect(),
                    });
                }
                AsSegmentType::AsSet if remaining > 0 => {
                    remaining -= 1;
                    segments.push(s.clone());
                }
                AsSegmentType::AsConfedSequence | AsSegmentType::AsConfedSet => {
                    segments.push(s.clone())
                }
                _ => {}
            }
        }
        for s in &as4_path.segments {
            // Join a leading AS_SEQUENCE of AS4_PATH to a trailing one kept from AS_PATH.
            match segments.last_mut() {
                Some(last)
                    if last.kind == AsSegmentType::AsSequence
                        && s.kind == AsSegmentType::AsSequence
                        && last.asns.len() + s.asns.len() <= 255 =>
                {
                    last.asns.extend_from_slice(&s.asns)
                }
                _ => segments.push(s.clone()),
            }
        }
        AsPath { segments }
    }

    /// Value length on the wire with 2- or 4-octet ASNs.
    pub fn value_len(&self, four_octet: bool) -> usize {
        let width = if four_octet { 4 } else { 2 };
        self.segments.iter().map(|s| 2 + width * s.asns.len()).sum()
    }

    /// Parses a value; `None` if malformed per RFC 7606 §7.2: an unrecognised segment type, a
    /// segment length of zero, or a segment overrunning / underrunning the attribute.
    pub fn parse(value: &[u8], four_octet: bool) -> Option<AsPath> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        let mut rest = value;
        // Each segment consumes at least 3 octets: bounded by value.len().
        while !rest.is_empty() {
            let (&[kind, count], tail) = rest.split_first_chunk::<2>()?;
            let kind = AsSegmentType::from_value(kind)?;
            if count == 0 {
                return None;
            }
            let (asn_bytes, tail) = tail.split_at_checked(usize::from(count) * width)?;
            let asns = if four_octet {
                asn_bytes
                    .chunks_exact(4)
                    .map(|c| c.try_into().map(u32::from_be_bytes).unwrap_or_default())
                    .collect()
            } else {
                asn_bytes
                    .chunks_exact(2)
                    .map(|c| {
                        c.try_into()
                            .map(u16::from_be_bytes)
                            .map(u32::from)
                            .unwrap_or_default()
                    })
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
            rest = tail;
        }
        Some(AsPath { segments })
    }

    /// Appends the value. The caller checked with [`AsPath::check`] first.
    pub fn encode(&self, four_octet: bool, buf: &mut BytesMut) {
        for s in &self.segments {
            buf.put_u8(s.kind.value());
            buf.put_u8(u8::try_from(s.asns.len()).unwrap_or(u8::MAX));
            for &asn in &s.asns {
                if four_octet {
                    buf.put_u32(asn);
                } else {
                    buf.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                }
            }
        }
    }

    /// Checks the value can be encoded: segment lengths 1..=255, ASNs fitting the width.
    pub fn check(
        &self,
        four_octet: bool,
        field: &'static str,
    ) -> Result<(), crate::wire::EncodingError> {
        for s in &self.segments {
            if s.asns.is_empty() {
                return Err(crate::wire::EncodingError::Invalid {
                    field,
                    reason: "empty AS path segment (RFC 7606 §7.2)",
                });
            }
            if s.asns.len() > 255 {
                return Err(crate::wire::EncodingError::TooLong {
                    field,
                    actual: s.asns.len(),
                    max: 255,
                });
            }
        }
        if !four_octet && self.has_four_octet_asn() {
            return Err(crate::wire::EncodingError::Invalid {
                field,
                reason: "4-octet ASN towards a 2-octet peer: use with_as_trans() and AS4_PATH (RFC 6793 §4.2.2)",
            });
        }
        Ok(())
    }
}
