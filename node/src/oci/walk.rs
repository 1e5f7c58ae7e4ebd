//! From an image's top manifest or index to every blob it needs: manifests
//! and indexes are fetched, checked against their digest and size, and
//! parsed; configs and layers are listed for the caller to fetch.

use std::collections::BTreeSet;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::digest::Sha256Digest;
use super::{media, MAX_INDEX_DEPTH, MAX_MANIFEST_BYTES};

/// Why walking an image failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// A descriptor's digest is not a sha256 digest (or is malformed).
    #[error("{what}: {source}")]
    Digest {
        /// Which descriptor.
        what: String,
        /// The parse error.
        source: super::digest::DigestError,
    },
    /// Bytes do not hash to their digest.
    #[error("{what}: content hashes to {actual}, not to its digest {expected}; refused")]
    Mismatch {
        /// Which blob.
        what: String,
        /// The digest it should have.
        expected: Sha256Digest,
        /// The digest it has.
        actual: Sha256Digest,
    },
    /// Bytes are not as long as their descriptor says.
    #[error("{what}: {actual} bytes, but its descriptor says {expected}; refused")]
    Size {
        /// Which blob.
        what: String,
        /// Size in the descriptor.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// A manifest or index is too large, too deep, or does not parse.
    #[error("{what}: {detail}")]
    BadManifest {
        /// Which manifest.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// `--platform` names no platform of the index.
    #[error("no manifest of the index matches --platform {wanted}; it has: {available}")]
    NoPlatform {
        /// Asked for.
        wanted: String,
        /// Present.
        available: String,
    },
    /// `--platform` is not `os/arch[/variant]`.
    #[error("--platform {0:?}: write OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64")]
    BadPlatform(String),
    /// The source could not deliver a manifest.
    #[error("{0}")]
    Source(String),
}

/// Where manifests come from (an OCI layout or a registry).
pub(crate) trait ManifestSource {
    /// The bytes of the manifest or index `digest` (at most `size` bytes
    /// plus one; the walker checks them).
    async fn manifest(&self, digest: &Sha256Digest, size: u64) -> Result<Vec<u8>, WalkError>;
}

/// One blob an image needs.
#[derive(Clone, Debug)]
pub struct Blob {
    /// Digest.
    pub digest: Sha256Digest,
    /// Size, bytes.
    pub size: u64,
    /// Its bytes, already checked, when it is a manifest or index.
    pub bytes: Option<Vec<u8>>,
}

/// What an image is made of.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The top manifest or index (rewritten when platforms were filtered).
    pub root: Descriptor,
    /// Every blob, manifests first, each once.
    pub blobs: Vec<Blob>,
}

/// `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFilter {
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub arch: String,
    /// `v8`.
    pub variant: Option<String>,
}

impl FromStr for PlatformFilter {
    type Err = WalkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(PlatformFilter {
                os: (*os).into(),
                arch: (*arch).into(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(PlatformFilter {
                os: (*os).into(),
                arch: (*arch).into(),
                variant: Some((*v).into()),
            }),
            _ => Err(WalkError::BadPlatform(s.to_owned())),
        }
    }
}

impl std::fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn platform_text(d: &Descriptor) -> String {
    match d.platform() {
        Some(p) => {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        }
        None => "(no platform)".into(),
    }
}

impl PlatformFilter {
    fn matches(&self, d: &Descriptor) -> bool {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == self.os
                && p.architecture().to_string() == self.arch
                && (self.variant.is_none() || p.variant().as_deref() == self.variant.as_deref())
        })
    }
}

/// The digest of a descriptor, strictly parsed.
pub fn descriptor_digest(d: &Descriptor, what: &str) -> Result<Sha256Digest, WalkError> {
    d.digest()
        .to_string()
        .parse()
        .map_err(|source| WalkError::Digest {
            what: what.to_owned(),
            source,
        })
}

/// Check `bytes` against a digest and size.
pub fn check_bytes(
    what: &str,
    expected: &Sha256Digest,
    size: u64,
    bytes: &[u8],
) -> Result<(), WalkError> {
    let actual = Sha256Digest::of(bytes);
    if actual != *expected {
        return Err(WalkError::Mismatch {
            what: what.to_owned(),
            expected: *expected,
            actual,
        });
    }
    if bytes.len() as u64 != size {
        return Err(WalkError::Size {
            what: what.to_owned(),
            expected: size,
            actual: bytes.len() as u64,
        });
    }
    Ok(())
}

/// What a manifest document is.
enum Doc {
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

fn parse_doc(what: &str, bytes: &[u8]) -> Result<Doc, WalkError> {
    let bad = |detail: String| WalkError::BadManifest {
        what: what.to_owned(),
        detail,
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) != Some(2) {
        return Err(bad(
            "schemaVersion is not 2 (Docker schema 1 manifests are not supported)".into(),
        ));
    }
    if v.get("manifests").is_some() {
        serde_json::from_value(v)
            .map(|i| Doc::Index(Box::new(i)))
            .map_err(|e| bad(format!("not an image index: {e}")))
    } else if v.get("layers").is_some() {
        serde_json::from_value(v)
            .map(|m| Doc::Manifest(Box::new(m)))
            .map_err(|e| bad(format!("not an image manifest: {e}")))
    } else {
        Err(bad("neither an image index nor an image manifest".into()))
    }
}

/// The media type a manifest document declares, else the OCI type its shape says.
pub fn manifest_media_type(bytes: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    if let Some(t) = v
        .as_ref()
        .and_then(|v| v.get("mediaType"))
        .and_then(|t| t.as_str())
    {
        return t.to_owned();
    }
    if v.as_ref().is_some_and(|v| v.get("manifests").is_some()) {
        media::OCI_INDEX.into()
    } else {
        media::OCI_MANIFEST.into()
    }
}

/// Walk from `root` (whose bytes are `root_bytes`, checked here), keeping
/// only `platforms` of a top index when any are given.
pub(crate) async fn plan<S: ManifestSource>(
    src: &S,
    root: Descriptor,
    root_bytes: Vec<u8>,
    platforms: &[PlatformFilter],
) -> Result<Plan, WalkError> {
    let root_digest = descriptor_digest(&root, "the image's top manifest")?;
    check_bytes(
        &format!("top manifest {root_digest}"),
        &root_digest,
        root.size(),
        &root_bytes,
    )?;
    let mut root = root;
    let mut root_bytes = root_bytes;
    if !platforms.is_empty() {
        if let Doc::Index(mut index) = parse_doc(&format!("index {root_digest}"), &root_bytes)? {
            let available: Vec<String> = index.manifests().iter().map(platform_text).collect();
            let kept: Vec<Descriptor> = index
                .manifests()
                .iter()
                .filter(|d| platforms.iter().any(|p| p.matches(d)))
                .cloned()
                .collect();
            if kept.is_empty() {
                return Err(WalkError::NoPlatform {
                    wanted: platforms
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    available: available.join(", "),
                });
            }
            index.set_manifests(kept);
            root_bytes = serde_json::to_vec(&index).map_err(|e| WalkError::BadManifest {
                what: "filtered index".into(),
                detail: e.to_string(),
            })?;
            let d = Sha256Digest::of(&root_bytes);
            let digest = oci_spec::image::Digest::from_str(&d.to_string()).map_err(|e| {
                WalkError::BadManifest {
                    what: "filtered index".into(),
                    detail: e.to_string(),
                }
            })?;
            let mut new_root =
                Descriptor::new(MediaType::ImageIndex, root_bytes.len() as u64, digest);
            new_root.set_annotations(root.annotations().clone());
            root = new_root;
        }
    }
    let mut seen = BTreeSet::new();
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let top = descriptor_digest(&root, "the image's top manifest")?;
    let mut queue = vec![(top, root.size(), Some(root_bytes), 0usize)];
    while let Some((digest, size, bytes, depth)) = queue.pop() {
        if !seen.insert(digest) {
            continue;
        }
        let what = format!("manifest {digest}");
        if size > MAX_MANIFEST_BYTES {
            return Err(WalkError::BadManifest {
                what,
                detail: format!("{size} bytes is more than the {MAX_MANIFEST_BYTES} accepted"),
            });
        }
        let bytes = match bytes {
            Some(b) => b,
            None => {
                let b = src.manifest(&digest, size).await?;
                check_bytes(&what, &digest, size, &b)?;
                b
            }
        };
        match parse_doc(&what, &bytes)? {
            Doc::Index(index) => {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(WalkError::BadManifest {
                        what,
                        detail: format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
                    });
                }
                for child in index.manifests() {
                    let d = descriptor_digest(child, &format!("an entry of index {digest}"))?;
                    queue.push((d, child.size(), None, depth + 1));
                }
            }
            Doc::Manifest(m) => {
                for d in std::iter::once(m.config()).chain(m.layers().iter()) {
                    let dd = descriptor_digest(d, &format!("a blob of manifest {digest}"))?;
                    layers.push(Blob {
                        digest: dd,
                        size: d.size(),
                        bytes: None,
                    });
                }
            }
        }
        blobs.push(Blob {
            digest,
            size,
            bytes: Some(bytes),
        });
    }
    for b in layers {
        if seen.insert(b.digest) {
            blobs.push(b);
        }
    }
    Ok(Plan { root, blobs })
}
