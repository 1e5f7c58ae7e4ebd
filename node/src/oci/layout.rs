//! Reading an OCI image layout (`oci-layout`, `index.json`, `blobs/`), as
//! `skopeo copy ... oci:DIR:TAG` and `docker buildx --output type=oci` write.
//! Blob paths come from parsed digests only, so no name leaves the folder.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex};

use super::digest::{Hasher, Sha256Digest};
use super::walk::{ManifestSource, WalkError};
use super::{blob_rel_path, ANNOTATION_REF_NAME, MAX_MANIFEST_BYTES};

/// Why a layout could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A file of the layout is missing or unreadable.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// Not a layout, or a malformed one.
    #[error("{path}: {detail}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The tag asked for is not in `index.json`, or none was asked of several.
    #[error("{dir}: {detail}")]
    Selection {
        /// The layout.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// An opened layout.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
    index: ImageIndex,
}

/// `DIR[:TAG]`: the folder and the tag, when one is named (a folder that
/// exists with the colon in its name wins).
pub fn split_dir_tag(s: &str) -> (PathBuf, Option<String>) {
    if Path::new(s).is_dir() {
        return (PathBuf::from(s), None);
    }
    match s.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => {
            (PathBuf::from(dir), Some(tag.to_owned()))
        }
        _ => (PathBuf::from(s), None),
    }
}

fn read_small(path: &Path) -> Result<Vec<u8>, LayoutError> {
    let io = |detail: String| LayoutError::Io {
        path: path.to_owned(),
        detail,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| io(e.to_string()))?;
    if !meta.is_file() {
        return Err(io("not a regular file".into()));
    }
    let mut out = Vec::new();
    std::fs::File::open(path)
        .map_err(|e| io(e.to_string()))?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| io(e.to_string()))?;
    if out.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(io(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
    }
    Ok(out)
}

impl Layout {
    /// Open `dir`: `oci-layout` must say version 1.x, `index.json` must parse.
    pub fn open(dir: &Path) -> Result<Layout, LayoutError> {
        if !dir.is_dir() {
            return Err(LayoutError::Io {
                path: dir.to_owned(),
                detail: "no such folder".into(),
            });
        }
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            return Err(LayoutError::Bad {
                path: dir.to_owned(),
                detail: "not an OCI image layout (it has no oci-layout file); make one with \
                         `skopeo copy docker://IMAGE oci:DIR:TAG`"
                    .into(),
            });
        }
        let text = read_small(&marker)?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| LayoutError::Bad {
            path: marker.clone(),
            detail: format!("not JSON: {e}"),
        })?;
        let version = v
            .get("imageLayoutVersion")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        if !version.starts_with("1.") {
            return Err(LayoutError::Bad {
                path: marker,
                detail: format!("imageLayoutVersion {version:?}: only 1.x layouts are read"),
            });
        }
        let index_path = dir.join("index.json");
        let index =
            serde_json::from_slice(&read_small(&index_path)?).map_err(|e| LayoutError::Bad {
                path: index_path,
                detail: format!("not an image index: {e}"),
            })?;
        Ok(Layout {
            dir: dir.to_owned(),
            index,
        })
    }

    /// The image `tag` names (its `org.opencontainers.image.ref.name`), or the
    /// only image when no tag is given.
    pub fn select(&self, tag: Option<&str>) -> Result<Descriptor, LayoutError> {
        let tags: Vec<String> = self
            .index
            .manifests()
            .iter()
            .filter_map(|d| d.annotations().as_ref()?.get(ANNOTATION_REF_NAME).cloned())
            .collect();
        let sel = |detail: String| LayoutError::Selection {
            dir: self.dir.clone(),
            detail,
        };
        match tag {
            Some(t) => self
                .index
                .manifests()
                .iter()
                .find(|d| {
                    d.annotations()
                        .as_ref()
                        .and_then(|a| a.get(ANNOTATION_REF_NAME))
                        .is_some_and(|n| n == t)
                })
                .cloned()
                .ok_or_else(|| sel(format!("no image tagged {t:?}; tags here: {tags:?}"))),
            None => match self.index.manifests().as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(sel("index.json lists no image".into())),
                _ => Err(sel(format!(
                    "holds {} images: name one as DIR:TAG (tags: {tags:?})",
                    self.index.manifests().len()
                ))),
            },
        }
    }

    /// The tag of a descriptor in this layout, if it has one.
    pub fn tag_of(d: &Descriptor) -> Option<String> {
        d.annotations().as_ref()?.get(ANNOTATION_REF_NAME).cloned()
    }

    /// Where blob `d` is.
    pub fn blob_path(&self, d: &Sha256Digest) -> PathBuf {
        self.dir.join(blob_rel_path(d))
    }

    /// Read a manifest-sized blob (the caller checks its digest).
    pub fn read_manifest(&self, d: &Sha256Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(d);
        if !path.exists() {
            return Err(LayoutError::Io {
                path,
                detail: format!("blob {d} is named by the image but missing from the layout"),
            });
        }
        read_small(&path)
    }
}

impl ManifestSource for Layout {
    async fn manifest(&self, digest: &Sha256Digest, _size: u64) -> Result<Vec<u8>, WalkError> {
        let d = *digest;
        let dir = self.dir.clone();
        let layout = Layout {
            dir,
            index: self.index.clone(),
        };
        tokio::task::spawn_blocking(move || layout.read_manifest(&d))
            .await
            .map_err(|e| WalkError::Source(e.to_string()))?
            .map_err(|e| WalkError::Source(e.to_string()))
    }
}

/// Copy `src` to `dest` while hashing; refuse (and remove `dest`) unless the
/// content is `size` bytes hashing to `digest`. Blocking.
pub fn copy_verified(
    src: &Path,
    dest: &Path,
    digest: &Sha256Digest,
    size: u64,
) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", src.display());
    let meta = std::fs::symlink_metadata(src).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "blob {digest} is named by the image but missing ({})",
                src.display()
            )
        } else {
            fail(e)
        }
    })?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", src.display()));
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let result = (|| {
        let mut input = std::fs::File::open(src).map_err(fail)?;
        let mut out =
            std::fs::File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        let mut h = Hasher::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = input.read(&mut buf).map_err(fail)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            if h.len() > size {
                return Err(format!(
                    "blob {digest} ({}) is longer than the {size} bytes its descriptor says; refused",
                    src.display()
                ));
            }
            out.write_all(&buf[..n])
                .map_err(|e| format!("{}: {e}", dest.display()))?;
        }
        let (actual, len) = h.finish();
        if len != size {
            return Err(format!(
                "blob {digest} ({}) is {len} bytes, its descriptor says {size}; refused",
                src.display()
            ));
        }
        if actual != *digest {
            return Err(format!(
                "blob {} hashes to {actual}, not to its digest {digest}; refused",
                src.display()
            ));
        }
        out.sync_all()
            .map_err(|e| format!("{}: {e}", dest.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}
