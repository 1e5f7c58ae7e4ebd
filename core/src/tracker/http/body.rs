//! Bencoded announce and scrape bodies, through librqbit-bencode.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::BTreeMap;

use librqbit_bencode::{bencode_serialize_to_writer, from_bytes};
use librqbit_buffers::ByteBuf;
use serde::{Deserialize, Serialize};

use super::{AnnounceDecodeError, ScrapeDecodeError, MAX_BODY_LEN};
use crate::tracker::{AnnounceResponse, PeerAddr, SwarmStats};
use crate::Id20;

/// Deepest nesting accepted in a body (ours are at most 3 deep).
const MAX_DEPTH: usize = 16;

#[derive(Serialize)]
struct AnnounceOut<'a> {
    interval: u32,
    #[serde(rename = "min interval")]
    min_interval: u32,
    complete: u32,
    incomplete: u32,
    peers: ByteBuf<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers6: Option<ByteBuf<'a>>,
    #[serde(rename = "swarmhub epoch")]
    epoch: u64,
    #[serde(rename = "swarmhub revoked", skip_serializing_if = "<[_]>::is_empty")]
    revoked: &'a [String],
    #[serde(rename = "swarmhub site", skip_serializing_if = "Option::is_none")]
    site: Option<&'a str>,
    #[serde(rename = "swarmhub near", skip_serializing_if = "is_zero")]
    near: u32,
    #[serde(rename = "swarmhub near6", skip_serializing_if = "is_zero")]
    near6: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Deserialize)]
struct AnnounceIn<'a> {
    #[serde(rename = "failure reason", borrow)]
    failure: Option<ByteBuf<'a>>,
    interval: Option<i64>,
    #[serde(rename = "min interval")]
    min_interval: Option<i64>,
    complete: Option<i64>,
    incomplete: Option<i64>,
    #[serde(borrow)]
    peers: Option<ByteBuf<'a>>,
    #[serde(borrow)]
    peers6: Option<ByteBuf<'a>>,
    #[serde(rename = "swarmhub epoch")]
    epoch: Option<i64>,
    #[serde(rename = "swarmhub revoked", borrow)]
    revoked: Option<Vec<ByteBuf<'a>>>,
    #[serde(rename = "swarmhub site", borrow)]
    site: Option<ByteBuf<'a>>,
    #[serde(rename = "swarmhub near")]
    near: Option<i64>,
    #[serde(rename = "swarmhub near6")]
    near6: Option<i64>,
}

#[derive(Serialize)]
struct Failure<'a> {
    #[serde(rename = "failure reason")]
    reason: &'a str,
}

#[derive(Serialize)]
struct FileOut {
    complete: i64,
    incomplete: i64,
    downloaded: i64,
    #[serde(rename = "swarmhub uploaded bytes")]
    uploaded_bytes: i64,
    #[serde(rename = "swarmhub downloaded bytes")]
    downloaded_bytes: i64,
}

#[derive(Deserialize)]
struct FileIn {
    complete: Option<i64>,
    incomplete: Option<i64>,
    downloaded: Option<i64>,
    #[serde(rename = "swarmhub uploaded bytes")]
    uploaded_bytes: Option<i64>,
    #[serde(rename = "swarmhub downloaded bytes")]
    downloaded_bytes: Option<i64>,
}

#[derive(Serialize)]
struct ScrapeOut<'a> {
    files: BTreeMap<ByteBuf<'a>, FileOut>,
}

#[derive(Deserialize)]
struct ScrapeIn<'a> {
    #[serde(rename = "failure reason", borrow)]
    failure: Option<ByteBuf<'a>>,
    #[serde(borrow)]
    files: Option<BTreeMap<ByteBuf<'a>, FileIn>>,
}

/// Serializes `value`; the types of this module always serialize, so an
/// error (which would be a bug) yields an empty body rather than a panic.
fn to_bencode<T: Serialize>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    if bencode_serialize_to_writer(value, &mut out).is_err() {
        debug_assert!(false, "bencode serialization failed");
        out.clear();
    }
    out
}

/// Bencodes a successful announce answer: IPv4 peers in `peers` (6 bytes
/// each), IPv6 peers in `peers6` (18 bytes each), plus `swarmhub epoch` and
/// (when non-empty) `swarmhub revoked`; when the hub knows the caller's site,
/// `swarmhub site` (its name) and `swarmhub near` / `swarmhub near6` (how many
/// of the first entries of `peers` / `peers6` are in that site). Stock
/// clients ignore the extra keys; the compact lists stay BEP 23.
pub fn encode_announce_response(resp: &AnnounceResponse) -> Vec<u8> {
    let mut v4 = Vec::with_capacity(resp.peers.len() * 6);
    let mut v6 = Vec::new();
    let (mut near, mut near6) = (0, 0);
    for (i, peer) in resp.peers.iter().enumerate() {
        let port = peer.port.to_be_bytes();
        let is_near = i < resp.near_peers as usize;
        match peer.ip {
            IpAddr::V4(ip) => {
                v4.extend_from_slice(&ip.octets());
                v4.extend_from_slice(&port);
                near += u32::from(is_near);
            }
            IpAddr::V6(ip) => {
                v6.extend_from_slice(&ip.octets());
                v6.extend_from_slice(&port);
                near6 += u32::from(is_near);
            }
        }
    }
    let out = AnnounceOut {
        interval: resp.interval_s,
        min_interval: resp.min_interval_s,
        complete: resp.complete,
        incomplete: resp.incomplete,
        peers: ByteBuf(&v4),
        peers6: (!v6.is_empty()).then_some(ByteBuf(&v6)),
        epoch: resp.revocation_epoch,
        revoked: &resp.revoked,
        site: resp.site.as_deref(),
        near,
        near6,
    };
    to_bencode(&out, 128 + v4.len() + v6.len())
}

/// Bencodes `{"failure reason": reason}`, the BEP 3 error answer.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    to_bencode(&Failure { reason }, reason.len() + 24)
}

/// Checks a body before librqbit-bencode sees it: size, nesting, one value
/// with nothing after it, and every integer and string length small enough
/// to parse without overflow (the library's digit parser does not check;
/// a hostile 25-digit number would panic in debug builds and wrap in
/// release). Only `i64` fields are deserialized afterwards, for the same
/// reason.
fn precheck(body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_BODY_LEN {
        return Err(format!(
            "{} bytes, over the {MAX_BODY_LEN} byte limit",
            body.len()
        ));
    }
    let mut i = 0;
    let mut depth = 0usize;
    loop {
        match body.get(i) {
            None => return Err("truncated".into()),
            Some(b'l' | b'd') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH}"));
                }
                i += 1;
                continue;
            }
            Some(b'e') if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            Some(b'i') => {
                let len = body[i + 1..]
                    .iter()
                    .position(|&b| b == b'e')
                    .ok_or("unterminated integer")?;
                let text = &body[i + 1..i + 1 + len];
                let digits = text.strip_prefix(b"-").unwrap_or(text);
                let fits = std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok());
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || fits.is_none() {
                    return Err(format!("bad integer at byte {i}"));
                }
                i += len + 2;
            }
            Some(b'0'..=b'9') => {
                let len = body[i..]
                    .iter()
                    .position(|&b| b == b':')
                    .ok_or("unterminated string length")?;
                let digits = &body[i..i + len];
                let n = std::str::from_utf8(digits)
                    .ok()
                    .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse::<usize>().ok())
                    .filter(|&n| n <= body.len() - (i + len + 1))
                    .ok_or_else(|| format!("bad string length at byte {i}"))?;
                i += len + 1 + n;
            }
            Some(&b) => return Err(format!("unexpected byte {b:#04x} at {i}")),
        }
        if depth == 0 {
            break;
        }
    }
    if i != body.len() {
        return Err(format!("{} trailing bytes", body.len() - i));
    }
    Ok(())
}

/// Converts an optional wire integer, naming `key` on failure.
fn int<T: TryFrom<i64>>(value: Option<i64>, key: &'static str) -> Result<Option<T>, &'static str> {
    value.map(|v| T::try_from(v).map_err(|_| key)).transpose()
}

fn compact_peers(blob: &[u8], v6: bool) -> Option<impl Iterator<Item = PeerAddr> + '_> {
    let width = if v6 { 18 } else { 6 };
    if !blob.len().is_multiple_of(width) {
        return None;
    }
    Some(blob.chunks_exact(width).map(move |c| {
        let (ip, port) = c.split_at(width - 2);
        let ip = match <[u8; 16]>::try_from(ip) {
            Ok(octets) => IpAddr::V6(Ipv6Addr::from(octets)),
            Err(_) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        };
        PeerAddr {
            ip,
            port: u16::from_be_bytes([port[0], port[1]]),
        }
    }))
}

/// Decodes an announce answer (client side). A `failure reason` body is
/// [`AnnounceDecodeError::Failure`]; `interval` and `peers` (compact) are
/// required, the counters default to 0 and `min interval` to `interval`.
pub fn decode_announce_response(body: &[u8]) -> Result<AnnounceResponse, AnnounceDecodeError> {
    precheck(body).map_err(AnnounceDecodeError::Bencode)?;
    let wire: AnnounceIn<'_> =
        from_bytes(body).map_err(|e| AnnounceDecodeError::Bencode(e.to_string()))?;
    if let Some(reason) = wire.failure {
        return Err(AnnounceDecodeError::Failure {
            reason: String::from_utf8_lossy(reason.0).into_owned(),
        });
    }
    let bad = |key: &'static str| AnnounceDecodeError::BadValue {
        key,
        reason: "out of range",
    };
    let interval_s: u32 = int(wire.interval, "interval")
        .map_err(bad)?
        .ok_or(AnnounceDecodeError::Missing { key: "interval" })?;
    let peers4 = wire
        .peers
        .ok_or(AnnounceDecodeError::Missing { key: "peers" })?;
    let not_multiple = |key, width| AnnounceDecodeError::BadValue {
        key,
        reason: if width == 6 {
            "length is not a multiple of 6"
        } else {
            "length is not a multiple of 18"
        },
    };
    let v4: Vec<PeerAddr> = compact_peers(peers4.0, false)
        .ok_or_else(|| not_multiple("peers", 6))?
        .collect();
    let v6: Vec<PeerAddr> = match wire.peers6 {
        Some(blob) => compact_peers(blob.0, true)
            .ok_or_else(|| not_multiple("peers6", 18))?
            .collect(),
        None => Vec::new(),
    };
    let near_count = |n: Option<i64>, key: &'static str, len: usize| {
        int::<u32>(n, key).map_err(bad)?.map_or(Ok(0), |n| {
            (n as usize <= len)
                .then_some(n as usize)
                .ok_or(AnnounceDecodeError::BadValue {
                    key,
                    reason: "more near peers than peers",
                })
        })
    };
    let near = near_count(wire.near, "swarmhub near", v4.len())?;
    let near6 = near_count(wire.near6, "swarmhub near6", v6.len())?;
    // Same-site peers first, as the tracker listed them.
    let mut peers = Vec::with_capacity(v4.len() + v6.len());
    peers.extend_from_slice(&v4[..near]);
    peers.extend_from_slice(&v6[..near6]);
    peers.extend_from_slice(&v4[near..]);
    peers.extend_from_slice(&v6[near6..]);
    let site =
        match wire.site {
            None => None,
            Some(b) => Some(String::from_utf8(b.0.to_vec()).map_err(|_| {
                AnnounceDecodeError::BadValue {
                    key: "swarmhub site",
                    reason: "site name is not UTF-8",
                }
            })?),
        };
    let revoked = wire
        .revoked
        .unwrap_or_default()
        .into_iter()
        .map(|b| String::from_utf8(b.0.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| AnnounceDecodeError::BadValue {
            key: "swarmhub revoked",
            reason: "identity is not UTF-8",
        })?;
    Ok(AnnounceResponse {
        interval_s,
        min_interval_s: int(wire.min_interval, "min interval")
            .map_err(bad)?
            .unwrap_or(interval_s),
        complete: int(wire.complete, "complete").map_err(bad)?.unwrap_or(0),
        incomplete: int(wire.incomplete, "incomplete")
            .map_err(bad)?
            .unwrap_or(0),
        peers,
        near_peers: (near + near6) as u32,
        site,
        revocation_epoch: int(wire.epoch, "swarmhub epoch").map_err(bad)?.unwrap_or(0),
        revoked,
    })
}

/// Bencode integers are signed; larger figures saturate.
fn wire_int<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// Bencodes a scrape answer: `files` keyed by raw info hash with BEP 48
/// `complete` / `incomplete` / `downloaded` (completions), plus our
/// `swarmhub uploaded bytes` / `swarmhub downloaded bytes` sums.
pub fn encode_scrape_response(files: &[(Id20, SwarmStats)]) -> Vec<u8> {
    let files: BTreeMap<ByteBuf<'_>, FileOut> = files
        .iter()
        .map(|(hash, s)| {
            let stats = FileOut {
                complete: wire_int(s.seeders),
                incomplete: wire_int(s.leechers),
                downloaded: wire_int(s.completed),
                uploaded_bytes: wire_int(s.uploaded),
                downloaded_bytes: wire_int(s.downloaded),
            };
            (ByteBuf(&hash.0[..]), stats)
        })
        .collect();
    let capacity = 16 + files.len() * 160;
    to_bencode(&ScrapeOut { files }, capacity)
}

/// Decodes a scrape answer (client side), sorted by info hash. Missing
/// counters are 0; a `failure reason` body is [`ScrapeDecodeError::Failure`].
pub fn decode_scrape_response(body: &[u8]) -> Result<Vec<(Id20, SwarmStats)>, ScrapeDecodeError> {
    precheck(body).map_err(ScrapeDecodeError::Bencode)?;
    let wire: ScrapeIn<'_> =
        from_bytes(body).map_err(|e| ScrapeDecodeError::Bencode(e.to_string()))?;
    if let Some(reason) = wire.failure {
        return Err(ScrapeDecodeError::Failure {
            reason: String::from_utf8_lossy(reason.0).into_owned(),
        });
    }
    let files = wire
        .files
        .ok_or(ScrapeDecodeError::Missing { key: "files" })?;
    let bad = |key: &'static str| ScrapeDecodeError::BadValue {
        key,
        reason: "out of range",
    };
    files
        .into_iter()
        .map(|(hash, f)| {
            let hash = <[u8; 20]>::try_from(hash.0).map_err(|_| ScrapeDecodeError::BadValue {
                key: "files",
                reason: "info hash key is not 20 bytes",
            })?;
            let stats = SwarmStats {
                seeders: int(f.complete, "complete").map_err(bad)?.unwrap_or(0),
                leechers: int(f.incomplete, "incomplete").map_err(bad)?.unwrap_or(0),
                completed: int(f.downloaded, "downloaded").map_err(bad)?.unwrap_or(0),
                uploaded: int(f.uploaded_bytes, "swarmhub uploaded bytes")
                    .map_err(bad)?
                    .unwrap_or(0),
                downloaded: int(f.downloaded_bytes, "swarmhub downloaded bytes")
                    .map_err(bad)?
                    .unwrap_or(0),
            };
            Ok((Id20::new(hash), stats))
        })
        .collect()
}
