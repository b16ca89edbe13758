//! Stream entry ids (`<milliseconds>-<sequence>`), ordered as Redis orders them.

use std::fmt;
use std::str::FromStr;

/// A Redis stream entry id such as `1704556800000-0`.
///
/// Ordered by milliseconds, then sequence, like Redis. Parses the full form; a bare
/// `<milliseconds>` reads as sequence 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EntryId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl EntryId {
    /// `0-0`, before every entry.
    pub const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    /// The id from its parts.
    pub fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }
}

/// The text is not a stream entry id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a stream entry id (expected <milliseconds>-<sequence>)")]
pub struct BadEntryId(pub String);

impl FromStr for EntryId {
    type Err = BadEntryId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadEntryId(s.to_owned());
        let (ms, seq) = match s.split_once('-') {
            Some((ms, seq)) => (ms, seq),
            None => (s, "0"),
        };
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_orders_and_prints_like_redis() {
        let a: EntryId = "1704556800000-0".parse().unwrap();
        let b: EntryId = "1704556800000-1".parse().unwrap();
        let c: EntryId = "1704556800001-0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1704556800000-1");
        assert_eq!("17".parse::<EntryId>().unwrap(), EntryId::new(17, 0));
        assert_eq!("0-0".parse::<EntryId>().unwrap(), EntryId::ZERO);
        assert!("x-1".parse::<EntryId>().is_err());
        assert!("1-".parse::<EntryId>().is_err());
        assert!("$".parse::<EntryId>().is_err());
    }
}
