//! Pieces of the OCI distribution API the mirror serves: request paths,
//! `Range` headers and error bodies.

use oci_spec::distribution::ErrorCode;

use super::digest::Sha256Digest;
use super::reference::{valid_repository, valid_tag};

/// What a `/v2/...` path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `/v2/`.
    Base,
    /// `/v2/NAME/manifests/REFERENCE`.
    Manifest {
        /// Repository.
        name: String,
        /// Tag or digest.
        reference: ManifestRef,
    },
    /// `/v2/NAME/blobs/DIGEST`.
    Blob {
        /// Repository.
        name: String,
        /// Digest.
        digest: Sha256Digest,
    },
}

/// A manifest by tag or by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestRef {
    /// By tag.
    Tag(String),
    /// By digest.
    Digest(Sha256Digest),
}

/// A refused request: status, OCI error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistError {
    /// HTTP status.
    pub status: u16,
    /// OCI code.
    pub code: ErrorCode,
    /// Message.
    pub message: String,
}

impl DistError {
    /// A new error.
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        DistError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The JSON body: `{"errors":[{"code":"...","message":"..."}]}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message }]
        }))
        .unwrap_or_default()
    }
}

/// Parse the path of a request (after the host, without the query).
pub fn parse_path(path: &str) -> Result<Request, DistError> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Err(DistError::new(
            404,
            ErrorCode::Unsupported,
            "only the /v2/ read API is served",
        ));
    };
    if rest.is_empty() {
        return Ok(Request::Base);
    }
    let split = |kind: &str| {
        rest.rfind(kind)
            .map(|i| (&rest[..i], &rest[i + kind.len()..]))
    };
    let bad_name = |name: &str| {
        DistError::new(
            400,
            ErrorCode::NameInvalid,
            format!("repository name {name:?} is not valid"),
        )
    };
    if let Some((name, reference)) = split("/manifests/") {
        if !valid_repository(name) {
            return Err(bad_name(name));
        }
        let reference = if reference.contains(':') {
            ManifestRef::Digest(
                reference
                    .parse()
                    .map_err(|e| DistError::new(400, ErrorCode::ManifestInvalid, format!("{e}")))?,
            )
        } else if valid_tag(reference) {
            ManifestRef::Tag(reference.to_owned())
        } else {
            return Err(DistError::new(
                400,
                ErrorCode::ManifestInvalid,
                format!("tag {reference:?} is not valid"),
            ));
        };
        return Ok(Request::Manifest {
            name: name.to_owned(),
            reference,
        });
    }
    if let Some((name, digest)) = split("/blobs/") {
        if !valid_repository(name) {
            return Err(bad_name(name));
        }
        let digest = digest
            .parse()
            .map_err(|e| DistError::new(400, ErrorCode::DigestInvalid, format!("{e}")))?;
        return Ok(Request::Blob {
            name: name.to_owned(),
            digest,
        });
    }
    if rest.contains("..") {
        return Err(bad_name(rest));
    }
    Err(DistError::new(
        404,
        ErrorCode::Unsupported,
        format!("/v2/{rest}: not part of the read API this mirror serves"),
    ))
}

/// A satisfiable byte range `first ..= last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
}

/// Why a Range header is not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Not a single `bytes=` range we understand: serve the whole blob.
    Ignore,
    /// Starts at or past the end: 416.
    Unsatisfiable,
}

/// Parse `Range: bytes=A-B`, `bytes=A-` or `bytes=-N` against a blob of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> Result<ByteRange, RangeError> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Ignore)?;
    if spec.contains(',') {
        return Err(RangeError::Ignore);
    }
    let (a, b) = spec.split_once('-').ok_or(RangeError::Ignore)?;
    let num = |s: &str| -> Result<Option<u64>, RangeError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(RangeError::Ignore);
        }
        // Digits that overflow name a position past any blob.
        Ok(Some(s.parse().unwrap_or(u64::MAX)))
    };
    match (num(a)?, num(b)?) {
        (Some(first), last) => {
            if first >= len {
                return Err(RangeError::Unsatisfiable);
            }
            let last = last.unwrap_or(u64::MAX).min(len - 1);
            if last < first {
                return Err(RangeError::Ignore);
            }
            Ok(ByteRange { first, last })
        }
        (None, Some(n)) => {
            if n == 0 || len == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            Ok(ByteRange {
                first: len.saturating_sub(n),
                last: len - 1,
            })
        }
        (None, None) => Err(RangeError::Ignore),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h| parse_range(h, 100);
        assert_eq!(r("bytes=0-9"), Ok(ByteRange { first: 0, last: 9 }));
        assert_eq!(
            r("bytes=90-"),
            Ok(ByteRange {
                first: 90,
                last: 99
            })
        );
        assert_eq!(
            r("bytes=90-500"),
            Ok(ByteRange {
                first: 90,
                last: 99
            })
        );
        assert_eq!(
            r("bytes=-10"),
            Ok(ByteRange {
                first: 90,
                last: 99
            })
        );
        assert_eq!(r("bytes=-1000"), Ok(ByteRange { first: 0, last: 99 }));
        assert_eq!(r("bytes=100-"), Err(RangeError::Unsatisfiable));
        assert_eq!(
            r("bytes=99999999999999999999999999-"),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(r("bytes=-0"), Err(RangeError::Unsatisfiable));
        assert_eq!(r("bytes=5-2"), Err(RangeError::Ignore));
        assert_eq!(r("bytes=0-1,5-6"), Err(RangeError::Ignore));
        assert_eq!(r("items=0-1"), Err(RangeError::Ignore));
        assert_eq!(r("bytes=a-b"), Err(RangeError::Ignore));
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/v2/"), Ok(Request::Base));
        let d = Sha256Digest::of(b"x");
        assert_eq!(
            parse_path(&format!("/v2/library/alpine/blobs/{d}")),
            Ok(Request::Blob {
                name: "library/alpine".into(),
                digest: d
            })
        );
        assert_eq!(
            parse_path("/v2/a/b/manifests/1.0"),
            Ok(Request::Manifest {
                name: "a/b".into(),
                reference: ManifestRef::Tag("1.0".into())
            })
        );
        let e = parse_path("/v2/../../etc/manifests/x").expect_err("dots");
        assert_eq!((e.status, e.code.clone()), (400, ErrorCode::NameInvalid));
        let e = parse_path("/v2/a/blobs/sha256:zz").expect_err("digest");
        assert_eq!(e.code, ErrorCode::DigestInvalid);
        let e = parse_path("/v2/a/manifests/sha256:../x").expect_err("digest");
        assert_eq!(e.code, ErrorCode::ManifestInvalid);
    }

    #[test]
    fn error_json_has_the_oci_shape() {
        let e = DistError::new(404, ErrorCode::BlobUnknown, "no such blob");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).expect("json");
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["message"], "no such blob");
        let e = DistError::new(404, ErrorCode::ManifestUnknown, "x");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).expect("json");
        assert_eq!(v["errors"][0]["code"], "MANIFEST_UNKNOWN");
    }
}
