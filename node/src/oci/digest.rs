//! `sha256:HEX` digests: parsing (strict, so a digest is safe as a file
//! name) and verification of bytes and files.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

/// Why a digest string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    /// Not `ALGORITHM:HEX`.
    #[error("digest {0:?} is not of the form sha256:<64 lowercase hex digits>")]
    Malformed(String),
    /// An algorithm other than SHA-256.
    #[error("digest {0:?}: only sha256 digests are supported")]
    Unsupported(String),
}

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(Sha256::digest(bytes).into())
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> String {
        crate::util::hex(&self.0)
    }

    /// Digest and length of a file.
    pub fn of_file(path: &Path) -> std::io::Result<(Self, u64)> {
        let mut f = std::fs::File::open(path)?;
        let mut h = Hasher::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finish())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_owned()));
        };
        if alg != "sha256" {
            let known = alg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'));
            return Err(if known && !alg.is_empty() {
                DigestError::Unsupported(s.to_owned())
            } else {
                DigestError::Malformed(s.to_owned())
            });
        }
        let lower = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let bytes = crate::util::unhex(hex).filter(|_| lower);
        match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            Some(b) => Ok(Sha256Digest(b)),
            None => Err(DigestError::Malformed(s.to_owned())),
        }
    }
}

/// A running SHA-256 with a byte count.
#[derive(Default)]
pub struct Hasher {
    h: Sha256,
    len: u64,
}

impl Hasher {
    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.h.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest and length.
    pub fn finish(self) -> (Sha256Digest, u64) {
        (Sha256Digest(self.h.finalize().into()), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_strict_sha256() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(d.to_string().parse::<Sha256Digest>(), Ok(d));
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
            "sha256:ba78",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "sha256:",
            "",
        ] {
            assert!(
                matches!(bad.parse::<Sha256Digest>(), Err(DigestError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            "sha512:abcd".parse::<Sha256Digest>(),
            Err(DigestError::Unsupported(_))
        ));
    }
}
