//! Bencoding and parsing `.torrent` bytes, through librqbit-bencode.

use librqbit_bencode::{
    bencode_serialize_to_writer, raw_value::RawValue, BencodeDeserializer, BencodeValue, ByteBuf,
    WithRawBytes,
};
use librqbit_core::hash_id::Id20;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::error::MetainfoError;
use super::scan::check_bencode;
use super::validate::{check_files, check_name, check_piece_length};
use super::{Geometry, ImageFile, Metainfo, MetainfoLimits};

/// Any bencode value, borrowed from the input; typed by hand below so every error
/// can name its key.
type Value<'a> = BencodeValue<ByteBuf<'a>>;

/// The top-level dictionary as decoded. Other keys (`comment`, `created by`, ...)
/// are ignored: they are outside the info hash.
/// Generic over the buffer type (used with `ByteBuf<'a>`), as librqbit-core's
/// `TorrentMetaV1` is, so the decoded values can borrow from the input.
#[derive(Deserialize)]
#[serde(bound(deserialize = "B: From<&'de [u8]> + Deserialize<'de> + std::hash::Hash + Eq"))]
struct TorrentDe<B: std::hash::Hash + Eq> {
    info: Option<WithRawBytes<BencodeValue<B>, B>>,
    announce: Option<BencodeValue<B>>,
}

/// The info dictionary as written: the canonical form (keys sorted by the serializer).
#[derive(Serialize)]
struct InfoSer<'a> {
    files: Vec<FileSer<'a>>,
    name: &'a str,
    #[serde(rename = "piece length")]
    piece_length: u32,
    pieces: ByteBuf<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private: Option<u8>,
}

#[derive(Serialize)]
struct FileSer<'a> {
    length: u64,
    path: &'a [String],
    sha256: ByteBuf<'a>,
}

/// The whole `.torrent`; the info dictionary is spliced in already encoded so its
/// bytes (and hash) are exactly [`info_bytes`]'s.
#[derive(Serialize)]
struct TorrentSer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    announce: Option<&'a str>,
    info: RawValue<&'a [u8]>,
}

/// Bencode a value into a new buffer.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and these structs only hold types bencode supports
    // (integers, byte strings, lists, structs), so the serializer has no error to give.
    bencode_serialize_to_writer(value, &mut out)
        .expect("bencoding metainfo into memory cannot fail");
    out
}

/// The canonical bencoded info dictionary for these fields.
pub(crate) fn info_bytes(
    name: &str,
    piece_length: u32,
    pieces: &[Id20],
    files: &[ImageFile],
    private: bool,
) -> Vec<u8> {
    let flat: Vec<u8> = pieces.iter().flat_map(|p| p.0).collect();
    encode(&InfoSer {
        files: files
            .iter()
            .map(|f| FileSer {
                length: f.length,
                path: &f.path,
                sha256: ByteBuf(&f.sha256),
            })
            .collect(),
        name,
        piece_length,
        pieces: ByteBuf(&flat),
        private: private.then_some(1),
    })
}

/// The whole `.torrent` for `info` (already encoded) and an optional announce URL.
pub(crate) fn torrent_bytes(info: &[u8], announce: Option<&str>) -> Vec<u8> {
    encode(&TorrentSer {
        announce,
        info: RawValue(info),
    })
}

/// SHA-1 of some bytes, as an [`Id20`].
pub(crate) fn sha1_id(bytes: &[u8]) -> Id20 {
    Id20::new(Sha1::digest(bytes).into())
}

/// Parse and validate a `.torrent`.
pub(crate) fn parse(bytes: &[u8], limits: &MetainfoLimits) -> Result<Metainfo, MetainfoError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(MetainfoError::InputTooLarge {
            len: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    // Proves the input is canonical bencode that librqbit-bencode decodes without
    // overflowing; see `scan`.
    check_bencode(bytes, limits.max_depth)?;
    if bytes.first() != Some(&b'd') {
        return Err(wrong_type("(top level)", "a dictionary"));
    }
    let mut de = BencodeDeserializer::new_from_buf(bytes).with_max_depth(limits.max_depth);
    let torrent =
        TorrentDe::<ByteBuf<'_>>::deserialize(&mut de).map_err(|e| MetainfoError::Decode {
            detail: e.to_string(),
        })?;
    let info = torrent.info.ok_or_else(|| missing("info"))?;
    let raw_info: &[u8] = info.raw_bytes.0;
    let mut meta = parse_info(&info.data, limits)?;
    if meta.info_bytes() != raw_info {
        return Err(MetainfoError::NonCanonicalInfo);
    }
    meta.info_hash = sha1_id(raw_info);
    meta.announce = match &torrent.announce {
        None => None,
        Some(v) => Some(utf8(bytes_of(v, "announce")?, "announce")?.to_owned()),
    };
    Ok(meta)
}

/// The fields of the info dictionary, checked; `info_hash` and `announce` are left
/// for the caller.
fn parse_info(info: &Value<'_>, limits: &MetainfoLimits) -> Result<Metainfo, MetainfoError> {
    if !matches!(info, BencodeValue::Dict(_)) {
        return Err(wrong_type("info", "a dictionary"));
    }
    let name = utf8(
        bytes_of(required(info, "name", "info.name")?, "info.name")?,
        "info.name",
    )?;
    check_name(name, limits)?;
    let piece_length = check_piece_length(int_of(
        required(info, "piece length", "info.piece length")?,
        "info.piece length",
    )?)?;
    let files = parse_files(required(info, "files", "info.files")?, limits)?;
    let total_length = check_files(&files, limits)?;
    let pieces = parse_pieces(
        required(info, "pieces", "info.pieces")?,
        Geometry::new(total_length, piece_length),
        limits,
    )?;
    match get(info, "private") {
        None => return Err(MetainfoError::NotPrivate { value: None }),
        Some(v) => match int_of(v, "info.private")? {
            1 => {}
            other => return Err(MetainfoError::NotPrivate { value: Some(other) }),
        },
    }
    Ok(Metainfo {
        info_hash: Id20::default(),
        name: name.to_owned(),
        piece_length,
        pieces,
        files,
        announce: None,
        private: true,
    })
}

/// The `files` list: types, path text and sha256 size. Path rules and sizes are
/// checked afterwards by `check_files`, the same code the builder uses.
fn parse_files(
    value: &Value<'_>,
    limits: &MetainfoLimits,
) -> Result<Vec<ImageFile>, MetainfoError> {
    let BencodeValue::List(list) = value else {
        return Err(wrong_type("info.files", "a list"));
    };
    if list.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    if list.len() > limits.max_files {
        return Err(MetainfoError::TooManyFiles {
            count: list.len(),
            limit: limits.max_files,
        });
    }
    let mut files = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let key = |k: &str| format!("info.files[{i}].{k}");
        if !matches!(entry, BencodeValue::Dict(_)) {
            return Err(wrong_type(&format!("info.files[{i}]"), "a dictionary"));
        }
        let length = int_of(required(entry, "length", &key("length"))?, &key("length"))?;
        let length = u64::try_from(length)
            .map_err(|_| wrong_type(&key("length"), "a non-negative integer"))?;
        let BencodeValue::List(parts) = required(entry, "path", &key("path"))? else {
            return Err(wrong_type(&key("path"), "a list of strings"));
        };
        let mut path = Vec::with_capacity(parts.len());
        for part in parts {
            path.push(utf8(bytes_of(part, &key("path"))?, &key("path"))?.to_owned());
        }
        let sha = bytes_of(required(entry, "sha256", &key("sha256"))?, &key("sha256"))?;
        let sha256 = <[u8; 32]>::try_from(sha).map_err(|_| MetainfoError::BadSha256 {
            file_index: i,
            len: sha.len(),
        })?;
        files.push(ImageFile {
            path,
            length,
            sha256,
        });
    }
    Ok(files)
}

/// The `pieces` string, checked against the geometry and the piece limit.
fn parse_pieces(
    value: &Value<'_>,
    geometry: Geometry,
    limits: &MetainfoLimits,
) -> Result<Vec<Id20>, MetainfoError> {
    let raw = bytes_of(value, "info.pieces")?;
    let expected = geometry
        .total_length
        .div_ceil(u64::from(geometry.piece_length));
    if expected > limits.max_pieces {
        return Err(MetainfoError::TooManyPieces {
            count: expected,
            limit: limits.max_pieces,
        });
    }
    if raw.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20 { len: raw.len() });
    }
    let actual = (raw.len() / 20) as u64;
    if actual != expected {
        return Err(MetainfoError::PieceCountMismatch { expected, actual });
    }
    Ok(raw
        .chunks_exact(20)
        .map(|c| {
            let mut id = [0u8; 20];
            id.copy_from_slice(c);
            Id20::new(id)
        })
        .collect())
}

fn missing(key: &str) -> MetainfoError {
    MetainfoError::MissingKey {
        key: key.to_owned(),
    }
}

fn wrong_type(key: &str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        key: key.to_owned(),
        expected,
    }
}

/// `dict[key]` when `dict` is a dictionary.
fn get<'v, 'a>(dict: &'v Value<'a>, key: &str) -> Option<&'v Value<'a>> {
    match dict {
        BencodeValue::Dict(d) => d.get(key.as_bytes()),
        _ => None,
    }
}

/// `dict[key]`, or a `MissingKey` error naming `path`.
fn required<'v, 'a>(
    dict: &'v Value<'a>,
    key: &str,
    path: &str,
) -> Result<&'v Value<'a>, MetainfoError> {
    get(dict, key).ok_or_else(|| missing(path))
}

fn int_of(value: &Value<'_>, key: &str) -> Result<i64, MetainfoError> {
    match value {
        BencodeValue::Integer(i) => Ok(*i),
        _ => Err(wrong_type(key, "an integer")),
    }
}

fn bytes_of<'a>(value: &Value<'a>, key: &str) -> Result<&'a [u8], MetainfoError> {
    match value {
        BencodeValue::Bytes(b) => Ok(b.0),
        _ => Err(wrong_type(key, "a string")),
    }
}

fn utf8<'a>(bytes: &'a [u8], key: &str) -> Result<&'a str, MetainfoError> {
    std::str::from_utf8(bytes).map_err(|_| MetainfoError::NotUtf8 {
        key: key.to_owned(),
    })
}
