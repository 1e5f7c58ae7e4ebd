//! Container images (OCI) as swarmhub images.
//!
//! An imported image is stored as an OCI image layout: `oci-layout`,
//! `index.json` (one entry: the image's top manifest or index, annotated with
//! its repository and tag) and every blob under `blobs/sha256/HEX`. Those
//! files are the swarmhub image, so the swarm, the cache and the tracker carry
//! it like any other; the mirror ([`crate::client::mirror`]) serves it back
//! over the OCI distribution API.
//!
//! - [`digest`]: `sha256:HEX` digests and verification.
//! - [`reference`]: image references and the hub name of a repository.
//! - [`walk`]: manifests and indexes, the blobs they name, platform filters.
//! - [`layout`]: reading an OCI image layout on disk.
//! - [`registry`]: a registry client (distribution API v2, token auth).
//! - [`import`]: `hub image import`, from either source into the cache.
//! - [`dist`]: distribution-API pieces the mirror needs (Range, error JSON).

pub mod digest;
pub mod dist;
pub mod import;
pub mod layout;
pub mod reference;
pub mod registry;
pub mod walk;

use std::path::{Path, PathBuf};

use crate::image::ImageName;

/// Annotation naming the tag (OCI image layout).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation naming the repository an image answers to in the mirror.
pub const ANNOTATION_REPOSITORY: &str = "io.swarmhub.oci.repository";
/// Largest manifest or index accepted, bytes.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Deepest nesting of indexes accepted.
pub const MAX_INDEX_DEPTH: usize = 4;

/// Media types of manifests and indexes, OCI and Docker.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker image manifest (schema 2).
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Every manifest type we accept, for `Accept` headers.
    pub const ALL_MANIFESTS: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];
}

/// Where a blob lives inside an image folder.
pub fn blob_rel_path(d: &digest::Sha256Digest) -> PathBuf {
    Path::new("blobs").join("sha256").join(d.hex())
}

/// The metainfo path components of a blob.
pub fn blob_components(d: &digest::Sha256Digest) -> Vec<String> {
    vec!["blobs".into(), "sha256".into(), d.hex()]
}

/// The blob a metainfo path names, if it names one.
pub fn blob_of_components(path: &[String]) -> Option<digest::Sha256Digest> {
    match path {
        [a, b, hex] if a == "blobs" && b == "sha256" => format!("sha256:{hex}").parse().ok(),
        _ => None,
    }
}

/// The top descriptor of a stored image (its `index.json` entry), with the
/// repository it answers to.
#[derive(Clone, Debug)]
pub struct StoredRoot {
    /// The top manifest or index.
    pub descriptor: oci_spec::image::Descriptor,
    /// Its digest.
    pub digest: digest::Sha256Digest,
    /// Repository (`library/alpine`), from the annotation.
    pub repository: Option<String>,
}

/// Read the `index.json` of an image folder made by [`import`].
pub fn stored_root(dir: &Path) -> Option<StoredRoot> {
    parse_stored_root(&std::fs::read(dir.join("index.json")).ok()?)
}

/// [`stored_root`] from the bytes of an `index.json`.
pub fn parse_stored_root(text: &[u8]) -> Option<StoredRoot> {
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return None;
    }
    let index: oci_spec::image::ImageIndex = serde_json::from_slice(text).ok()?;
    let descriptor = index.manifests().first()?.clone();
    let digest = descriptor.digest().to_string().parse().ok()?;
    let repository = descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REPOSITORY).cloned());
    Some(StoredRoot {
        descriptor,
        digest,
        repository,
    })
}

/// The digest of a hub-cached image, when it is an imported OCI image.
pub fn hub_image_digest(paths: &crate::paths::HubPaths, image: &str) -> Option<String> {
    let name: ImageName = image.parse().ok()?;
    stored_root(&paths.image_dir(&name)).map(|r| r.digest.to_string())
}
