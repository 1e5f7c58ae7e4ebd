//! The tracker's HTTP wire format as pure functions: BEP 3 announce with
//! BEP 23 compact peer lists (and `peers6` for IPv6), BEP 48 scrape.
//!
//! Hub side: [`parse_announce_query`] → [`Tracker::handle_announce`] →
//! [`encode_announce_response`] or [`encode_failure`] (with the status of
//! [`AnnounceError::http_status`]); [`parse_scrape_query`] →
//! [`Tracker::scrape`] → [`encode_scrape_response`].
//! Client side: [`announce_query`] / [`decode_announce_response`],
//! [`scrape_query`] / [`decode_scrape_response`].
//!
//! Our additions to the announce answer: `swarmhub epoch` (revocation epoch)
//! and `swarmhub revoked` (list of revoked identities); to the scrape answer:
//! `swarmhub uploaded bytes` and `swarmhub downloaded bytes`. Stock clients
//! ignore unknown keys. All bencode goes through librqbit-bencode.
//!
//! [`Tracker::handle_announce`]: super::Tracker::handle_announce
//! [`Tracker::scrape`]: super::Tracker::scrape
//! [`AnnounceError::http_status`]: super::AnnounceError::http_status

mod body;
mod query;

#[cfg(test)]
mod tests;

pub use body::{
    decode_announce_response, decode_scrape_response, encode_announce_response, encode_failure,
    encode_scrape_response,
};
pub use query::{announce_query, parse_announce_query, parse_scrape_query, scrape_query};

/// Longest announce query string accepted (bytes after `?`).
pub const MAX_ANNOUNCE_QUERY_LEN: usize = 4 * 1024;
/// Longest scrape query string accepted (room for ~250 info hashes).
pub const MAX_SCRAPE_QUERY_LEN: usize = 16 * 1024;
/// Largest announce or scrape body a client decodes.
pub const MAX_BODY_LEN: usize = 1024 * 1024;

/// Why an announce query string was rejected; [`AnnounceParseError::key`]
/// names the offending key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceParseError {
    /// The query string is longer than [`MAX_ANNOUNCE_QUERY_LEN`].
    #[error("announce query is {len} bytes, over the {max} byte limit")]
    TooLong {
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A required key is absent.
    #[error("announce query lacks the {key:?} key")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// A key appears twice.
    #[error("announce query repeats the {key:?} key")]
    Duplicate {
        /// The repeated key.
        key: &'static str,
    },
    /// A value has a broken `%` escape.
    #[error("{key:?} has a broken percent-escape")]
    BadEscape {
        /// The key of the value.
        key: &'static str,
    },
    /// A 20-byte value (info hash, peer id) has another length once decoded.
    #[error("{key:?} is {len} bytes once decoded, expected 20")]
    BadLength {
        /// The key of the value.
        key: &'static str,
        /// Decoded length.
        len: usize,
    },
    /// A value is not a decimal number in range.
    #[error("{key:?} is not a decimal number in range")]
    BadNumber {
        /// The key of the value.
        key: &'static str,
    },
    /// A value is well-formed but not allowed.
    #[error("{key:?}: {reason}")]
    BadValue {
        /// The key of the value.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// `event` is none of started, completed, stopped or empty.
    #[error("unknown event {value:?}: expected started, completed or stopped")]
    UnknownEvent {
        /// The value received (truncated).
        value: String,
    },
}

impl AnnounceParseError {
    /// The query key the error is about, if it is about one.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            AnnounceParseError::TooLong { .. } => None,
            AnnounceParseError::Missing { key }
            | AnnounceParseError::Duplicate { key }
            | AnnounceParseError::BadEscape { key }
            | AnnounceParseError::BadLength { key, .. }
            | AnnounceParseError::BadNumber { key }
            | AnnounceParseError::BadValue { key, .. } => Some(key),
            AnnounceParseError::UnknownEvent { .. } => Some("event"),
        }
    }
}

/// Why a scrape query string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeParseError {
    /// The query string is longer than [`MAX_SCRAPE_QUERY_LEN`].
    #[error("scrape query is {len} bytes, over the {max} byte limit")]
    TooLong {
        /// Length received.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A value has a broken `%` escape.
    #[error("{key:?} has a broken percent-escape")]
    BadEscape {
        /// The key of the value.
        key: &'static str,
    },
    /// An info hash is not 20 bytes once decoded.
    #[error("{key:?} is {len} bytes once decoded, expected 20")]
    BadLength {
        /// The key of the value.
        key: &'static str,
        /// Decoded length.
        len: usize,
    },
}

impl ScrapeParseError {
    /// The query key the error is about, if it is about one.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ScrapeParseError::TooLong { .. } => None,
            ScrapeParseError::BadEscape { key } | ScrapeParseError::BadLength { key, .. } => {
                Some(key)
            }
        }
    }
}

/// Why an announce answer could not be used (client side).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceDecodeError {
    /// The tracker refused the announce.
    #[error("tracker refused the announce: {reason}")]
    Failure {
        /// The tracker's `failure reason`.
        reason: String,
    },
    /// The body is not acceptable bencode (too large, malformed, too deep).
    #[error("announce answer is not valid bencode: {0}")]
    Bencode(String),
    /// A required key is absent.
    #[error("announce answer lacks the {key:?} key")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// A value is out of range or malformed.
    #[error("announce answer key {key:?}: {reason}")]
    BadValue {
        /// The key of the value.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Why a scrape answer could not be used (client side).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScrapeDecodeError {
    /// The tracker refused the scrape.
    #[error("tracker refused the scrape: {reason}")]
    Failure {
        /// The tracker's `failure reason`.
        reason: String,
    },
    /// The body is not acceptable bencode (too large, malformed, too deep).
    #[error("scrape answer is not valid bencode: {0}")]
    Bencode(String),
    /// A required key is absent.
    #[error("scrape answer lacks the {key:?} key")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// A value is out of range or malformed.
    #[error("scrape answer key {key:?}: {reason}")]
    BadValue {
        /// The key of the value.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}
