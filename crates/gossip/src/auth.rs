//! The datagram envelope of the gossip (pure): a 4-octet header, foca's bytes, and with a shared
//! secret an HMAC-SHA256 tag (RFC 2104) over header and payload.
//!
//! ```text
//!   0      1      2         3
//!  +------+------+---------+-------+----------------------+---------------------------+
//!  | 'F'  | 'L'  | version | flags | foca payload ...     | tag (32 octets, if flag A) |
//!  +------+------+---------+-------+----------------------+---------------------------+
//!  flags: bit 0 (A) = authenticated; every other bit must be 0
//! ```
//!
//! The tag authenticates, it does not encrypt: gossip carries only node names, addresses and
//! incarnations, all of which the Node objects already publish. MetalLB's memberlist encrypts
//! with AES-GCM instead; the two do not interoperate either way (different wire formats).
//! A speaker with a secret drops every datagram without a valid tag, and a speaker without one
//! drops tagged datagrams, so a half-rolled-out secret partitions loudly (counted) instead of
//! letting unauthenticated members in.

// Datagrams come from the network: no unwrap, no indexing on them.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first two octets of every datagram.
pub const MAGIC: [u8; 2] = *b"FL";
/// The envelope version this code writes and reads.
pub const VERSION: u8 = 1;
/// Flag bit: a tag follows the payload.
pub const FLAG_AUTHENTICATED: u8 = 0x01;
/// Octets of the header.
pub const HEADER_LEN: usize = 4;
/// Octets of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret (`--memberlist-secret-file` or `METALLB_ML_SECRET_KEY`). Its `Debug`
/// never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Vec<u8>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({} octets)", self.0.len())
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret is empty (after trimming a trailing newline, as files usually end with one).
    #[error("memberlist secret from {source_name} is empty")]
    Empty {
        /// `--memberlist-secret-file <path>` or `METALLB_ML_SECRET_KEY`.
        source_name: String,
    },
}

impl SecretKey {
    /// The secret from raw bytes; a trailing `\n` / `\r\n` is not part of it.
    pub fn from_bytes(bytes: &[u8], source_name: &str) -> Result<Self, SecretError> {
        let trimmed = bytes
            .strip_suffix(b"\n")
            .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
            .unwrap_or(bytes);
        if trimmed.is_empty() {
            return Err(SecretError::Empty {
                source_name: source_name.to_string(),
            });
        }
        Ok(SecretKey(trimmed.to_vec()))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length (RFC 2104 §2: longer keys are hashed first).
        <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
    }
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than the header (plus the tag when one is announced).
    #[error("datagram of {len} octets is too short")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// Not our magic: some other protocol on the port.
    #[error("bad magic {found:02x?}")]
    BadMagic {
        /// The first two octets.
        found: [u8; 2],
    },
    /// A version this code does not read.
    #[error("unsupported envelope version {version}")]
    UnsupportedVersion {
        /// The version octet.
        version: u8,
    },
    /// Reserved flag bits set.
    #[error("unknown flags {flags:#04x}")]
    UnknownFlags {
        /// The flags octet.
        flags: u8,
    },
    /// We have a secret; the datagram carries no tag.
    #[error("unauthenticated datagram while a secret is configured")]
    MissingTag,
    /// We have no secret; the datagram carries a tag (the sender has one).
    #[error("authenticated datagram while no secret is configured")]
    UnexpectedTag,
    /// The tag does not verify: another secret, or tampering.
    #[error("bad authentication tag")]
    BadTag,
}

impl EnvelopeError {
    /// A stable word for a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            EnvelopeError::TooShort { .. } => "too_short",
            EnvelopeError::BadMagic { .. } => "bad_magic",
            EnvelopeError::UnsupportedVersion { .. } => "unsupported_version",
            EnvelopeError::UnknownFlags { .. } => "unknown_flags",
            EnvelopeError::MissingTag => "missing_tag",
            EnvelopeError::UnexpectedTag => "unexpected_tag",
            EnvelopeError::BadTag => "bad_tag",
        }
    }

    /// Whether this is an authentication failure (as opposed to a malformed datagram).
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            EnvelopeError::MissingTag | EnvelopeError::UnexpectedTag | EnvelopeError::BadTag
        )
    }
}

/// Wraps `payload` for the wire, tagged when `key` is set.
pub fn seal(key: Option<&SecretKey>, payload: &[u8]) -> Vec<u8> {
    let flags = if key.is_some() { FLAG_AUTHENTICATED } else { 0 };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(payload);
    if let Some(key) = key {
        let mut mac = key.mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Checks a received datagram and returns foca's payload inside it.
pub fn open<'a>(key: Option<&SecretKey>, datagram: &'a [u8]) -> Result<&'a [u8], EnvelopeError> {
    let too_short = EnvelopeError::TooShort {
        len: datagram.len(),
    };
    let (header, rest) = datagram
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(too_short.clone())?;
    let [m0, m1, version, flags] = *header;
    if [m0, m1] != MAGIC {
        return Err(EnvelopeError::BadMagic { found: [m0, m1] });
    }
    if version != VERSION {
        return Err(EnvelopeError::UnsupportedVersion { version });
    }
    if flags & !FLAG_AUTHENTICATED != 0 {
        return Err(EnvelopeError::UnknownFlags { flags });
    }
    let tagged = flags & FLAG_AUTHENTICATED != 0;
    match (key, tagged) {
        (None, false) => Ok(rest),
        (None, true) => Err(EnvelopeError::UnexpectedTag),
        (Some(_), false) => Err(EnvelopeError::MissingTag),
        (Some(key), true) => {
            let signed_len = datagram
                .len()
                .checked_sub(TAG_LEN)
                .ok_or(too_short.clone())?;
            let (signed, tag) = datagram
                .split_at_checked(signed_len)
                .ok_or(too_short.clone())?;
            let payload = signed.get(HEADER_LEN..).ok_or(too_short)?;
            let mut mac = key.mac();
            mac.update(signed);
            // verify_slice compares in constant time.
            mac.verify_slice(tag).map_err(|_| EnvelopeError::BadTag)?;
            Ok(payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SecretKey {
        SecretKey::from_bytes(s.as_bytes(), "test").expect("non-empty")
    }

    #[test]
    fn sealed_payload_opens_with_the_same_key_and_without_one_when_unkeyed() {
        let k = key("s3cret");
        assert_eq!(open(Some(&k), &seal(Some(&k), b"ping")), Ok(&b"ping"[..]));
        assert_eq!(open(None, &seal(None, b"ping")), Ok(&b"ping"[..]));
        assert_eq!(open(Some(&k), &seal(Some(&k), b"")), Ok(&b""[..]));
    }

    #[test]
    fn another_key_or_a_flipped_bit_fails_the_tag() {
        let sealed = seal(Some(&key("a")), b"ping");
        assert_eq!(open(Some(&key("b")), &sealed), Err(EnvelopeError::BadTag));
        for i in HEADER_LEN..sealed.len() {
            let mut bad = sealed.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x01;
            }
            assert_eq!(
                open(Some(&key("a")), &bad),
                Err(EnvelopeError::BadTag),
                "bit in octet {i}"
            );
        }
    }

    #[test]
    fn a_secret_on_one_side_only_is_refused_both_ways() {
        let k = key("a");
        assert_eq!(
            open(Some(&k), &seal(None, b"x")),
            Err(EnvelopeError::MissingTag)
        );
        assert_eq!(
            open(None, &seal(Some(&k), b"x")),
            Err(EnvelopeError::UnexpectedTag)
        );
        assert!(EnvelopeError::MissingTag.is_authentication());
    }

    #[test]
    fn malformed_headers_are_named() {
        let k = key("a");
        assert_eq!(
            open(None, b"FL\x01"),
            Err(EnvelopeError::TooShort { len: 3 })
        );
        assert_eq!(
            open(None, b"XX\x01\x00"),
            Err(EnvelopeError::BadMagic { found: *b"XX" })
        );
        assert_eq!(
            open(None, b"FL\x02\x00"),
            Err(EnvelopeError::UnsupportedVersion { version: 2 })
        );
        assert_eq!(
            open(None, b"FL\x01\x02"),
            Err(EnvelopeError::UnknownFlags { flags: 2 })
        );
        // Tag announced but the datagram ends early.
        assert_eq!(
            open(Some(&k), b"FL\x01\x01short"),
            Err(EnvelopeError::TooShort { len: 9 })
        );
    }

    #[test]
    fn secrets_drop_one_trailing_newline_and_refuse_empty() {
        assert_eq!(key("abc\n"), key("abc"));
        assert_eq!(key("abc\r\n"), key("abc"));
        assert!(SecretKey::from_bytes(b"\n", "file").is_err());
        assert!(!format!("{:?}", key("hunter2")).contains("hunter2"));
    }

    proptest::proptest! {
        #[test]
        fn open_never_panics_and_accepts_only_what_seal_wrote(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..128),
        ) {
            let k = key("k");
            let _ = open(None, &data);
            let _ = open(Some(&k), &data);
            let sealed = seal(Some(&k), &data);
            proptest::prop_assert_eq!(open(Some(&k), &sealed), Ok(&data[..]));
        }
    }
}
