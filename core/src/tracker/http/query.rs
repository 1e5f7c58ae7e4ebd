//! Announce and scrape query strings (the part after `?`): percent-decoding
//! straight into fixed buffers, no allocation on the announce path.

use core::net::IpAddr;
use std::fmt::Write as _;

use super::{AnnounceParseError, ScrapeParseError, MAX_ANNOUNCE_QUERY_LEN, MAX_SCRAPE_QUERY_LEN};
use crate::tracker::{AnnounceEvent, AnnounceRequest};
use crate::Id20;

/// Longest decoded key or small value we look at; longer keys are unknown.
const SMALL: usize = 24;

/// Percent-decodes one query component; `+` is a space
/// (application/x-www-form-urlencoded). `Err` on a broken `%` escape.
fn decoded(raw: &[u8]) -> impl Iterator<Item = Result<u8, ()>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let &b = raw.get(i)?;
        i += 1;
        Some(match b {
            b'%' => {
                let hi = raw.get(i).and_then(|c| (*c as char).to_digit(16));
                let lo = raw.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                i += 2;
                match (hi, lo) {
                    (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
                    _ => Err(()),
                }
            }
            b'+' => Ok(b' '),
            b => Ok(b),
        })
    })
}

/// Decodes into a small stack buffer; `None` if broken or longer than `SMALL`.
fn decode_small(raw: &[u8], buf: &mut [u8; SMALL]) -> Option<usize> {
    let mut n = 0;
    for b in decoded(raw) {
        *buf.get_mut(n)? = b.ok()?;
        n += 1;
    }
    Some(n)
}

/// Decodes a 20-byte binary value (info hash, peer id).
fn decode_id20(raw: &[u8]) -> Result<Id20, IdError> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for b in decoded(raw) {
        let b = b.map_err(|()| IdError::Escape)?;
        if let Some(slot) = out.get_mut(n) {
            *slot = b;
        }
        n += 1;
    }
    if n == 20 {
        Ok(Id20::new(out))
    } else {
        Err(IdError::Length(n))
    }
}

enum IdError {
    Escape,
    Length(usize),
}

/// Decodes a decimal number: ASCII digits only, no sign, in range.
fn decode_number(raw: &[u8]) -> Option<u64> {
    let mut buf = [0u8; SMALL];
    let n = decode_small(raw, &mut buf)?;
    let digits = &buf[..n];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Splits a query into raw (still encoded) key/value pairs.
fn pairs(query: &str) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .as_bytes()
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (part, &part[part.len()..]),
        })
}

/// The announce keys we interpret, in the order of the `seen` bit mask.
const KEYS: [&str; 9] = [
    "info_hash",
    "peer_id",
    "port",
    "uploaded",
    "downloaded",
    "left",
    "event",
    "numwant",
    "compact",
];

/// Parses an announce query string (without the `?`). The peer address is
/// `remote_ip` (an `ip` key is ignored: a client cannot announce for another
/// host); `compact=0` is accepted but the answer is compact anyway. Unknown
/// keys are ignored.
pub fn parse_announce_query(
    query: &str,
    remote_ip: IpAddr,
) -> Result<AnnounceRequest, AnnounceParseError> {
    if query.len() > MAX_ANNOUNCE_QUERY_LEN {
        return Err(AnnounceParseError::TooLong {
            len: query.len(),
            max: MAX_ANNOUNCE_QUERY_LEN,
        });
    }
    let mut req = AnnounceRequest {
        info_hash: Id20::new([0; 20]),
        peer_id: Id20::new([0; 20]),
        ip: remote_ip.to_canonical(),
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: AnnounceEvent::Periodic,
        numwant: None,
        compact: true,
    };
    let mut seen = 0u16;
    for (raw_key, raw_value) in pairs(query) {
        let mut key_buf = [0u8; SMALL];
        let Some(key_len) = decode_small(raw_key, &mut key_buf) else {
            continue;
        };
        let Some(index) = KEYS
            .iter()
            .position(|k| k.as_bytes() == &key_buf[..key_len])
        else {
            continue;
        };
        let key = KEYS[index];
        if seen & (1 << index) != 0 {
            return Err(AnnounceParseError::Duplicate { key });
        }
        seen |= 1 << index;
        apply_announce_key(&mut req, key, raw_value)?;
    }
    for (index, key) in KEYS.iter().enumerate().take(6) {
        if seen & (1 << index) == 0 {
            return Err(AnnounceParseError::Missing { key });
        }
    }
    Ok(req)
}

fn apply_announce_key(
    req: &mut AnnounceRequest,
    key: &'static str,
    raw: &[u8],
) -> Result<(), AnnounceParseError> {
    let number = || decode_number(raw).ok_or(AnnounceParseError::BadNumber { key });
    let id = || {
        decode_id20(raw).map_err(|e| match e {
            IdError::Escape => AnnounceParseError::BadEscape { key },
            IdError::Length(len) => AnnounceParseError::BadLength { key, len },
        })
    };
    match key {
        "info_hash" => req.info_hash = id()?,
        "peer_id" => req.peer_id = id()?,
        "port" => {
            let port =
                u16::try_from(number()?).map_err(|_| AnnounceParseError::BadNumber { key })?;
            if port == 0 {
                return Err(AnnounceParseError::BadValue {
                    key,
                    reason: "port 0 cannot be connected to",
                });
            }
            req.port = port;
        }
        "uploaded" => req.uploaded = number()?,
        "downloaded" => req.downloaded = number()?,
        "left" => req.left = number()?,
        "numwant" => {
            let n = u32::try_from(number()?).map_err(|_| AnnounceParseError::BadNumber { key })?;
            req.numwant = Some(n);
        }
        "compact" => {
            req.compact = match number() {
                Ok(0) => false,
                Ok(1) => true,
                _ => {
                    return Err(AnnounceParseError::BadValue {
                        key,
                        reason: "expected 0 or 1",
                    })
                }
            }
        }
        _ => req.event = decode_event(raw)?,
    }
    Ok(())
}

fn decode_event(raw: &[u8]) -> Result<AnnounceEvent, AnnounceParseError> {
    let mut buf = [0u8; SMALL];
    let n = decode_small(raw, &mut buf);
    match n.map(|n| &buf[..n]) {
        Some(b"started") => Ok(AnnounceEvent::Started),
        Some(b"completed") => Ok(AnnounceEvent::Completed),
        Some(b"stopped") => Ok(AnnounceEvent::Stopped),
        Some(b"") => Ok(AnnounceEvent::Periodic),
        _ => Err(AnnounceParseError::UnknownEvent {
            value: String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned(),
        }),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn push_encoded(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Builds the announce query string for `req` (client side; without `?`).
/// `ip` is not sent: the tracker uses the connection's address.
pub fn announce_query(req: &AnnounceRequest) -> String {
    let mut q = String::with_capacity(200);
    q.push_str("info_hash=");
    push_encoded(&mut q, &req.info_hash.0);
    q.push_str("&peer_id=");
    push_encoded(&mut q, &req.peer_id.0);
    // Writing to a String cannot fail.
    let _ = write!(
        q,
        "&port={}&uploaded={}&downloaded={}&left={}&compact={}",
        req.port,
        req.uploaded,
        req.downloaded,
        req.left,
        u8::from(req.compact)
    );
    let event = match req.event {
        AnnounceEvent::Started => Some("started"),
        AnnounceEvent::Completed => Some("completed"),
        AnnounceEvent::Stopped => Some("stopped"),
        AnnounceEvent::Periodic => None,
    };
    if let Some(event) = event {
        q.push_str("&event=");
        q.push_str(event);
    }
    if let Some(n) = req.numwant {
        let _ = write!(q, "&numwant={n}");
    }
    q
}

/// Parses a scrape query: zero or more `info_hash` keys (zero = all swarms);
/// other keys are ignored.
pub fn parse_scrape_query(query: &str) -> Result<Vec<Id20>, ScrapeParseError> {
    if query.len() > MAX_SCRAPE_QUERY_LEN {
        return Err(ScrapeParseError::TooLong {
            len: query.len(),
            max: MAX_SCRAPE_QUERY_LEN,
        });
    }
    let mut hashes = Vec::new();
    for (raw_key, raw_value) in pairs(query) {
        let mut key_buf = [0u8; SMALL];
        let Some(n) = decode_small(raw_key, &mut key_buf) else {
            continue;
        };
        if &key_buf[..n] != b"info_hash" {
            continue;
        }
        let key = "info_hash";
        hashes.push(decode_id20(raw_value).map_err(|e| match e {
            IdError::Escape => ScrapeParseError::BadEscape { key },
            IdError::Length(len) => ScrapeParseError::BadLength { key, len },
        })?);
    }
    Ok(hashes)
}

/// Builds a scrape query for `info_hashes` (client side; without `?`).
pub fn scrape_query(info_hashes: &[Id20]) -> String {
    let mut q = String::with_capacity(info_hashes.len() * 72);
    for (i, hash) in info_hashes.iter().enumerate() {
        if i > 0 {
            q.push('&');
        }
        q.push_str("info_hash=");
        push_encoded(&mut q, &hash.0);
    }
    q
}
