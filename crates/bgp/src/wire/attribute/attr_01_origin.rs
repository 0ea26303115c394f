//! ORIGIN (type 1, RFC 4271 §5.1.1): well-known mandatory, one octet.

/// Where the route came from (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Origin {
    /// 0: interior to the originating AS.
    Igp,
    /// 1: learned via EGP.
    Egp,
    /// 2: learned some other way.
    Incomplete,
}

impl Origin {
    /// The wire value.
    pub fn value(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }

    /// Parses the one-octet value; RFC 7606 §7.1: length other than 1 or an undefined value is
    /// malformed (treat-as-withdraw, decided by the caller).
    pub fn parse(value: &[u8]) -> Option<Origin> {
        match value {
            [0] => Some(Origin::Igp),
            [1] => Some(Origin::Egp),
            [2] => Some(Origin::Incomplete),
            _ => None,
        }
    }
}
