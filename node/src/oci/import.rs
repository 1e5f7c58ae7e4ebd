//! `hub image import`: an OCI image from a registry or an image layout into
//! the hub's cache, as a swarmhub image laid out as an OCI layout. Every blob
//! is checked against its digest on the way in; blobs the cache already holds
//! under the same digest are copied from there (and checked) rather than
//! fetched again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::digest::Sha256Digest;
use super::layout::{copy_verified, Layout, LayoutError};
use super::reference::{hub_name, valid_repository, ImageRef, ReferenceError};
use super::registry::{RegistryClient, RegistryError, RegistryOptions};
use super::walk::{self, descriptor_digest, Plan, PlatformFilter, WalkError};
use super::{blob_of_components, blob_rel_path, ANNOTATION_REF_NAME, ANNOTATION_REPOSITORY};
use crate::db::ImageRow;
use crate::hub::admin::{open_db, AdminError};
use crate::hub::HubSettings;
use crate::paths::HubPaths;
use crate::store;
use crate::util::{hex, random_hex};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Catalog or cache trouble.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A manifest or index is wrong.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// The layout is wrong.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A name is wrong.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A blob failed its checks, or another file problem.
    #[error("{0}")]
    Blob(String),
}

/// Where the image comes from.
#[derive(Clone, Debug)]
pub enum ImportSource {
    /// An OCI image layout folder, and the tag inside it.
    Layout {
        /// The folder.
        dir: PathBuf,
        /// `org.opencontainers.image.ref.name` to take.
        tag: Option<String>,
    },
    /// A registry.
    Registry {
        /// The image.
        reference: ImageRef,
        /// Transport and credentials.
        options: RegistryOptions,
    },
}

/// What to import and how to name it.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The source.
    pub source: ImportSource,
    /// `--as REPOSITORY:TAG`.
    pub as_name: Option<(String, String)>,
    /// `--platform` filters (empty: every platform).
    pub platforms: Vec<PlatformFilter>,
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The hub image (`library.alpine:3.19`).
    pub image: String,
    /// The repository it answers to in the mirror.
    pub repository: String,
    /// Its tag.
    pub tag: String,
    /// Digest of its top manifest or index.
    pub digest: String,
    /// Blobs, manifests included.
    pub blobs: usize,
    /// Bytes of all blobs.
    pub size: u64,
    /// Bytes fetched from the source.
    pub fetched_bytes: u64,
    /// Bytes copied from blobs the cache already held.
    pub reused_bytes: u64,
}

fn blob_err(e: impl std::fmt::Display) -> ImportError {
    ImportError::Blob(e.to_string())
}

/// Every blob in the cache, by digest (from the catalog's metainfo paths).
fn cached_blobs(
    paths: &HubPaths,
    db: &crate::db::Db,
) -> Result<BTreeMap<Sha256Digest, PathBuf>, ImportError> {
    let mut out = BTreeMap::new();
    for row in db.images().map_err(AdminError::from)? {
        let Ok(image) = row.name.parse::<crate::image::ImageName>() else {
            continue;
        };
        let Ok(meta) = crate::hub::admin::row_metainfo(&row) else {
            continue;
        };
        let dir = paths.image_dir(&image);
        for f in &meta.files {
            if let Some(d) = blob_of_components(&f.path) {
                out.entry(d).or_insert_with(|| dir.join(blob_rel_path(&d)));
            }
        }
    }
    Ok(out)
}

/// The repository and tag the image gets.
fn names(
    opts: &ImportOptions,
    layout_tag: Option<String>,
) -> Result<(String, String), ImportError> {
    if let Some((r, t)) = &opts.as_name {
        return Ok((r.clone(), t.clone()));
    }
    match &opts.source {
        ImportSource::Registry { reference, .. } => {
            let tag = match (&reference.tag, &reference.digest) {
                (Some(t), _) => t.clone(),
                (None, Some(d)) => format!("sha256-{}", &d.hex()[..32]),
                (None, None) => "latest".into(),
            };
            Ok((reference.repository.clone(), tag))
        }
        ImportSource::Layout { dir, .. } => {
            let base = std::fs::canonicalize(dir)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
                .unwrap_or_default();
            if !valid_repository(&base) {
                return Err(ReferenceError::BadRepository(base).into());
            }
            Ok((base, layout_tag.unwrap_or_else(|| "latest".into())))
        }
    }
}

/// Import as `opts` says; the image is in the catalog when this returns Ok.
pub async fn import(paths: &HubPaths, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let db = open_db(paths)?;
    if !HubSettings::load(&db).map_err(AdminError::from)?.cache {
        return Err(AdminError::CacheDisabled.into());
    }
    let (src, root, root_bytes, layout_tag) = match &opts.source {
        ImportSource::Layout { dir, tag } => {
            let layout = Layout::open(dir)?;
            let root = layout.select(tag.as_deref())?;
            let d = descriptor_digest(&root, "the layout's image")?;
            let bytes = layout.read_manifest(&d)?;
            let t = tag.clone().or_else(|| Layout::tag_of(&root));
            (Fetch::Layout(Box::new(layout)), root, bytes, t)
        }
        ImportSource::Registry { reference, options } => {
            let client = RegistryClient::new(reference, options)?;
            let (root, bytes) = client.top_manifest(&reference.reference()).await?;
            (Fetch::Registry(client), root, bytes, None)
        }
    };
    let (repository, tag) = names(opts, layout_tag)?;
    let image = hub_name(&repository, &tag)?;
    let dest = paths.image_dir(&image);
    if db
        .image(&image.to_string())
        .map_err(AdminError::from)?
        .is_some()
        || dest.exists()
    {
        return Err(AdminError::ImageExists(image.to_string()).into());
    }
    let plan = match &src {
        Fetch::Layout(l) => walk::plan(l.as_ref(), root, root_bytes, &opts.platforms).await?,
        Fetch::Registry(r) => walk::plan(r, root, root_bytes, &opts.platforms).await?,
    };
    let cached = cached_blobs(paths, &db)?;
    let tmp = paths
        .cache()
        .join(format!(".tmp-{}", random_hex(8).map_err(blob_err)?));
    let result = stage(&src, &plan, &cached, &tmp, &repository, &tag).await;
    let (fetched_bytes, reused_bytes) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let name = image.to_string();
    let (t, d) = (tmp.clone(), dest.clone());
    let published = tokio::task::spawn_blocking(move || publish(&name, &t, &d))
        .await
        .map_err(blob_err)?;
    let row = match published {
        Ok(row) => row,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    db.put_image(&row).map_err(AdminError::from)?;
    let digest = descriptor_digest(&plan.root, "the image")?;
    Ok(ImportReport {
        image: image.to_string(),
        repository,
        tag,
        digest: digest.to_string(),
        blobs: plan.blobs.len(),
        size: plan.blobs.iter().map(|b| b.size).sum(),
        fetched_bytes,
        reused_bytes,
    })
}

/// Where manifests and blobs are fetched from.
enum Fetch {
    Layout(Box<Layout>),
    Registry(RegistryClient),
}

/// Write the plan's blobs, `index.json` and `oci-layout` under `tmp`.
/// Returns (bytes fetched from the source, bytes reused from the cache).
async fn stage(
    src: &Fetch,
    plan: &Plan,
    cached: &BTreeMap<Sha256Digest, PathBuf>,
    tmp: &Path,
    repository: &str,
    tag: &str,
) -> Result<(u64, u64), ImportError> {
    let (mut fetched, mut reused) = (0u64, 0u64);
    for blob in &plan.blobs {
        let dest = tmp.join(blob_rel_path(&blob.digest));
        if let Some(bytes) = &blob.bytes {
            write_file(&dest, bytes)?;
            fetched += blob.size;
            continue;
        }
        if let Some(from) = cached.get(&blob.digest) {
            let (f, d, dg, size) = (from.clone(), dest.clone(), blob.digest, blob.size);
            let copied = tokio::task::spawn_blocking(move || copy_verified(&f, &d, &dg, size))
                .await
                .map_err(blob_err)?;
            match copied {
                Ok(()) => {
                    reused += blob.size;
                    continue;
                }
                Err(e) => tracing::warn!("cached blob {} not reused: {e}", blob.digest),
            }
        }
        match src {
            Fetch::Layout(l) => {
                let (f, d, dg, size) = (l.blob_path(&blob.digest), dest, blob.digest, blob.size);
                tokio::task::spawn_blocking(move || copy_verified(&f, &d, &dg, size))
                    .await
                    .map_err(blob_err)?
                    .map_err(ImportError::Blob)?;
            }
            Fetch::Registry(r) => r.blob_to(&blob.digest, blob.size, &dest).await?,
        }
        fetched += blob.size;
    }
    let mut root = serde_json::to_value(&plan.root).map_err(blob_err)?;
    let annotations = serde_json::json!({
        ANNOTATION_REF_NAME: tag,
        ANNOTATION_REPOSITORY: repository,
    });
    root["annotations"] = annotations;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": super::media::OCI_INDEX,
        "manifests": [root],
    });
    write_file(
        &tmp.join("index.json"),
        &serde_json::to_vec_pretty(&index).map_err(blob_err)?,
    )?;
    write_file(
        &tmp.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok((fetched, reused))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| blob_err(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| blob_err(format!("{}: {e}", path.display())))
}

/// Hash the staged folder into metainfo and move it into place.
fn publish(name: &str, tmp: &Path, dest: &Path) -> Result<ImageRow, ImportError> {
    let files = store::collect_dir(tmp).map_err(AdminError::from)?;
    let meta = store::build_metainfo(name, &files, None).map_err(AdminError::from)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| blob_err(format!("{}: {e}", parent.display())))?;
    }
    std::fs::rename(tmp, dest).map_err(|e| blob_err(format!("{}: {e}", dest.display())))?;
    Ok(ImageRow {
        name: name.to_owned(),
        info_hash: hex(&meta.info_hash.0),
        metainfo: meta.to_bytes(),
        stamps: store::stamps(dest, &meta).map_err(AdminError::from)?,
    })
}
