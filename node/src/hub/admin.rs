//! Hub administration on the database and the cache folder: images, users,
//! settings. Safe to run while `hub serve` runs: it picks changes up.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use swarmhub_core::metainfo::Metainfo;

use super::{HubSettings, SETTING_CACHE, SETTING_P2P, SETTING_SEED};
use crate::db::{Db, DbError, ImageRow};
use crate::image::{ImageName, ImageNameError};
use crate::paths::HubPaths;
use crate::store::{self, StoreError};
use crate::util::{hex, random_hex, secret_hash};

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// File trouble.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Bad image name.
    #[error(transparent)]
    Name(#[from] ImageNameError),
    /// The image exists.
    #[error("image {0} is already in the cache; remove it first with `swarmhub hub image rm {0}`")]
    ImageExists(String),
    /// No such image.
    #[error("no image {0} in the cache")]
    NoSuchImage(String),
    /// The cache is switched off.
    #[error(
        "the hub image cache is disabled; enable it with `swarmhub hub config --enable=cache`"
    )]
    CacheDisabled,
    /// A stored metainfo does not parse.
    #[error("stored metainfo of {name} is corrupt: {detail}")]
    CorruptMetainfo {
        /// Image.
        name: String,
        /// Parse error.
        detail: String,
    },
    /// Bad user name.
    #[error("user name {0:?}: use 1-64 ASCII letters, digits, '.', '_' or '-'")]
    BadUserName(String),
    /// I/O.
    #[error("{0}")]
    Io(String),
}

/// Open the hub database in `paths`.
pub fn open_db(paths: &HubPaths) -> Result<Db, AdminError> {
    std::fs::create_dir_all(&paths.root)
        .map_err(|e| AdminError::Io(format!("{}: {e}", paths.root.display())))?;
    Ok(Db::open(&paths.db())?)
}

/// Parse a stored row's metainfo.
pub fn row_metainfo(row: &ImageRow) -> Result<Metainfo, AdminError> {
    Metainfo::from_bytes(&row.metainfo).map_err(|e| AdminError::CorruptMetainfo {
        name: row.name.clone(),
        detail: e.to_string(),
    })
}

fn make_row(
    name: &ImageName,
    meta: &Metainfo,
    dir: &std::path::Path,
) -> Result<ImageRow, AdminError> {
    Ok(ImageRow {
        name: name.to_string(),
        info_hash: hex(&meta.info_hash.0),
        metainfo: meta.to_bytes(),
        stamps: store::stamps(dir, meta)?,
    })
}

/// `hub image add NAME:TAG PATH...`: copy the files into the cache while hashing
/// them, then publish the image (rename into place, catalog row).
pub fn image_add(paths: &HubPaths, name: &str, inputs: &[PathBuf]) -> Result<Metainfo, AdminError> {
    let image: ImageName = name.parse()?;
    let db = open_db(paths)?;
    if !HubSettings::load(&db)?.cache {
        return Err(AdminError::CacheDisabled);
    }
    let dest = paths.image_dir(&image);
    if db.image(&image.to_string())?.is_some() || dest.exists() {
        return Err(AdminError::ImageExists(image.to_string()));
    }
    let files = store::collect_inputs(inputs)?;
    let tmp = paths.cache().join(format!(
        ".tmp-{}",
        random_hex(8).map_err(|e| AdminError::Io(e.to_string()))?
    ));
    let result = store::build_metainfo(&image.to_string(), &files, Some(&tmp));
    let meta = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| AdminError::Io(format!("{}: {e}", parent.display())))?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| AdminError::Io(format!("{}: {e}", dest.display())))?;
    db.put_image(&make_row(&image, &meta, &dest)?)?;
    Ok(meta)
}

/// `hub image rm NAME:TAG`.
pub fn image_rm(paths: &HubPaths, name: &str) -> Result<(), AdminError> {
    let image: ImageName = name.parse()?;
    let db = open_db(paths)?;
    if !db.remove_image(&image.to_string())? {
        return Err(AdminError::NoSuchImage(image.to_string()));
    }
    let dir = paths.image_dir(&image);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| AdminError::Io(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// One line of `hub image list`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageInfo {
    /// `NAME:TAG`.
    pub name: String,
    /// Info hash, hex.
    pub info_hash: String,
    /// Bytes.
    pub size: u64,
    /// Pieces.
    pub pieces: u32,
    /// Files.
    pub files: usize,
    /// Seeders now (when the hub is running).
    pub seeders: Option<u32>,
    /// Leechers now (when the hub is running).
    pub leechers: Option<u32>,
}

/// The catalog, without live counts.
pub fn image_list(db: &Db) -> Result<Vec<ImageInfo>, AdminError> {
    db.images()?
        .iter()
        .map(|row| {
            let meta = row_metainfo(row)?;
            Ok(ImageInfo {
                name: row.name.clone(),
                info_hash: row.info_hash.clone(),
                size: meta.total_length(),
                pieces: meta.num_pieces(),
                files: meta.files.len(),
                seeders: None,
                leechers: None,
            })
        })
        .collect()
}

/// What `cache update` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CacheReport {
    /// Images hashed (new or changed).
    pub hashed: Vec<String>,
    /// Those of `hashed` that were not in the catalog before.
    pub added: Vec<String>,
    /// Images unchanged.
    pub unchanged: Vec<String>,
    /// Catalog entries dropped (folder gone).
    pub dropped: Vec<String>,
    /// Folders skipped, with the reason.
    pub skipped: Vec<String>,
}

/// `hub cache update`: build metainfo for image folders put in the cache by
/// hand or changed, drop catalog entries whose folder is gone. Also used by
/// `hub serve` at start (only changed images are re-hashed).
pub fn cache_update(paths: &HubPaths, db: &Db) -> Result<CacheReport, AdminError> {
    let mut report = CacheReport::default();
    let mut seen = std::collections::BTreeSet::new();
    let cache = paths.cache();
    let names = match std::fs::read_dir(&cache) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    for name_dir in names {
        let Some(n) = name_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        if n.starts_with('.') || !name_dir.is_dir() {
            continue;
        }
        let Ok(tags) = std::fs::read_dir(&name_dir) else {
            continue;
        };
        for tag_dir in tags.filter_map(Result::ok).map(|e| e.path()) {
            let Some(t) = tag_dir
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            if !tag_dir.is_dir() {
                continue;
            }
            let image: ImageName = match format!("{n}:{t}").parse() {
                Ok(i) => i,
                Err(e) => {
                    report.skipped.push(format!("{}: {e}", tag_dir.display()));
                    continue;
                }
            };
            seen.insert(image.to_string());
            let known = db.image(&image.to_string())?.is_some();
            match refresh(db, &image, &tag_dir) {
                Ok(true) if !known => {
                    report.hashed.push(image.to_string());
                    report.added.push(image.to_string());
                }
                Ok(true) => report.hashed.push(image.to_string()),
                Ok(false) => report.unchanged.push(image.to_string()),
                Err(e) => report.skipped.push(format!("{image}: {e}")),
            }
        }
    }
    for row in db.images()? {
        if !seen.contains(&row.name) {
            db.remove_image(&row.name)?;
            report.dropped.push(row.name);
        }
    }
    Ok(report)
}

/// Re-hash `image` if its files changed since the catalog row; true if hashed.
fn refresh(db: &Db, image: &ImageName, dir: &std::path::Path) -> Result<bool, AdminError> {
    if let Some(row) = db.image(&image.to_string())? {
        if let Ok(meta) = row_metainfo(&row) {
            let same_files = store::collect_dir(dir)
                .map(|f| f.iter().map(|s| s.rel.join("/")).collect::<Vec<_>>())
                .ok()
                == Some(meta.files.iter().map(|f| f.path.join("/")).collect());
            if same_files && store::stamps(dir, &meta).ok().as_ref() == Some(&row.stamps) {
                return Ok(false);
            }
        }
    }
    let files = store::collect_dir(dir)?;
    let meta = store::build_metainfo(&image.to_string(), &files, None)?;
    db.put_image(&make_row(image, &meta, dir)?)?;
    Ok(true)
}

/// `hub user add NAME`: returns the one-time enrollment key.
pub fn user_add(paths: &HubPaths, name: &str) -> Result<String, AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok || name == "hub" {
        return Err(AdminError::BadUserName(name.to_owned()));
    }
    let db = open_db(paths)?;
    let key = format!(
        "shk_{}",
        random_hex(20).map_err(|e| AdminError::Io(e.to_string()))?
    );
    db.add_user(name, &secret_hash(&key))?;
    Ok(key)
}

/// `hub user rm NAME`: revoke.
pub fn user_rm(paths: &HubPaths, name: &str) -> Result<(), AdminError> {
    Ok(open_db(paths)?.revoke_user(name)?)
}

/// A change of hub settings, as `hub config` flags or the console's Storage
/// form give it; [`config`] applies it.
#[derive(Clone, Debug, Default)]
pub struct ConfigChange {
    /// Switches to turn on: cache, p2p, seed.
    pub enable: Vec<String>,
    /// Switches to turn off.
    pub disable: Vec<String>,
    /// Peer TLS: `on` or `off`.
    pub peer_tls: Option<String>,
    /// Seeder settings, `KEY=VALUE` (named as a scenario's `[hub]` keys).
    pub set: Vec<String>,
    /// Host names of the hub certificate, comma-separated (`default`: the default).
    pub hostname: Option<String>,
    /// Sites: `CIDR=SITE` entries, comma-separated (`none`: no sites).
    pub sites: Option<String>,
}

/// `hub config` (and the console's Save): apply `change` and return the
/// settings. Every value is checked before any is stored.
pub fn config(paths: &HubPaths, change: &ConfigChange) -> Result<HubSettings, AdminError> {
    let db = open_db(paths)?;
    let mut seeder = HubSettings::load(&db)?.seeder;
    let mut pairs = Vec::new();
    for item in &change.set {
        let Some((key, value)) = item.split_once('=') else {
            return Err(AdminError::Io(format!(
                "--set {item:?}: write KEY=VALUE, e.g. --set upload=\"10 Gbit/s\""
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        super::apply_seeder_setting(&mut seeder, key, value).map_err(AdminError::Io)?;
        pairs.push((key, value));
    }
    let peer_tls = match change.peer_tls.as_deref() {
        None => None,
        Some("on") => Some("1"),
        Some("off") => Some("0"),
        Some(other) => return Err(AdminError::Io(format!("--peer-tls={other}: use on or off"))),
    };
    let mut switches = Vec::new();
    for (list, value) in [(&change.enable, "1"), (&change.disable, "0")] {
        for item in list {
            let key = match item.as_str() {
                "cache" => SETTING_CACHE,
                "p2p" => SETTING_P2P,
                "seed" => SETTING_SEED,
                other => {
                    return Err(AdminError::Io(format!(
                        "unknown hub setting {other:?}: use cache, p2p or seed"
                    )))
                }
            };
            switches.push((key, value));
        }
    }
    let hostname = match &change.hostname {
        None => None,
        Some(h) => Some(
            super::hostnames::parse_list(h)
                .map_err(AdminError::Io)?
                .map(|l| super::hostnames::list_text(&l)),
        ),
    };
    let sites = match &change.sites {
        None => None,
        Some(text) => Some(
            swarmhub_core::sites::SiteMap::parse(text)
                .map_err(|e| AdminError::Io(format!("--sites: {e}")))?,
        ),
    };
    for (key, value) in pairs {
        db.set_setting(key, value)?;
    }
    match sites {
        Some(map) if map.is_empty() => db.remove_setting(super::SETTING_SITES)?,
        Some(map) => db.set_setting(super::SETTING_SITES, &map.to_string())?,
        None => {}
    }
    if let Some(value) = peer_tls {
        db.set_setting(super::SETTING_PEER_TLS, value)?;
    }
    for (key, value) in switches {
        db.set_setting(key, value)?;
    }
    match hostname {
        Some(Some(list)) => db.set_setting(super::hostnames::SETTING_HOSTNAME, &list)?,
        Some(None) => db.remove_setting(super::hostnames::SETTING_HOSTNAME)?,
        None => {}
    }
    Ok(HubSettings::load(&db)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_update_hashes_hand_placed_images_and_drops_stale_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = HubPaths::new(tmp.path().join("hub"));
        let db = open_db(&paths).expect("db");
        let dir = paths.cache().join("tools").join("1.0");
        std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
        std::fs::write(dir.join("bin/tool"), vec![7u8; 300_000]).expect("write");
        std::fs::create_dir_all(paths.cache().join("bad name").join("x")).expect("mkdir");

        let r = cache_update(&paths, &db).expect("update");
        assert_eq!(r.hashed, vec!["tools:1.0".to_owned()]);
        assert_eq!(r.added, vec!["tools:1.0".to_owned()]);
        assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
        let listed = image_list(&db).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, 300_000);

        let r = cache_update(&paths, &db).expect("update");
        assert_eq!(r.unchanged, vec!["tools:1.0".to_owned()]);
        assert!(r.hashed.is_empty());

        std::fs::write(dir.join("bin/tool"), vec![8u8; 1000]).expect("rewrite");
        let r = cache_update(&paths, &db).expect("update");
        assert_eq!(r.hashed, vec!["tools:1.0".to_owned()]);
        assert!(r.added.is_empty(), "a changed image is not new");
        assert_eq!(image_list(&db).expect("list")[0].size, 1000);

        std::fs::remove_dir_all(&dir).expect("rm");
        let r = cache_update(&paths, &db).expect("update");
        assert_eq!(r.dropped, vec!["tools:1.0".to_owned()]);
        assert!(image_list(&db).expect("list").is_empty());
    }

    #[test]
    fn image_add_and_rm_round_trip_and_refuse_duplicates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = HubPaths::new(tmp.path().join("hub"));
        let src = tmp.path().join("f.bin");
        std::fs::write(&src, b"hello").expect("write");
        let meta = image_add(&paths, "a:1", std::slice::from_ref(&src)).expect("add");
        assert_eq!(meta.total_length(), 5);
        assert!(paths.cache().join("a/1/f.bin").exists());
        assert!(matches!(
            image_add(&paths, "a:1", std::slice::from_ref(&src)),
            Err(AdminError::ImageExists(_))
        ));
        image_rm(&paths, "a:1").expect("rm");
        assert!(!paths.cache().join("a/1").exists());
        assert!(matches!(
            image_rm(&paths, "a:1"),
            Err(AdminError::NoSuchImage(_))
        ));
        let off = ConfigChange {
            disable: vec!["cache".to_owned()],
            ..ConfigChange::default()
        };
        config(&paths, &off).expect("config");
        assert!(matches!(
            image_add(&paths, "b:1", &[src]),
            Err(AdminError::CacheDisabled)
        ));
        assert!(user_add(&paths, "hub").is_err());
        assert!(user_add(&paths, "a/b").is_err());
        assert!(user_add(&paths, "ok-name")
            .expect("add")
            .starts_with("shk_"));
    }

    #[test]
    fn seeder_settings_are_set_checked_and_reset() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = HubPaths::new(tmp.path().join("hub"));
        let d = swarmhub_core::settings::HubSettings::default();
        let set_only = |set: &[String]| ConfigChange {
            set: set.to_vec(),
            ..ConfigChange::default()
        };
        assert_eq!(config(&paths, &set_only(&[])).expect("show").seeder, d);
        let set = [
            "upload=10 Gbit/s".to_owned(),
            "connection_limit=3000".to_owned(),
            "upload_slots=64".to_owned(),
            "super_seed=false".to_owned(),
        ];
        let s = config(&paths, &set_only(&set)).expect("set").seeder;
        assert_eq!(s.upload_bps, Some(1_250_000_000));
        assert_eq!(s.connection_limit, 3000);
        assert_eq!(s.upload_slots, Some(64));
        assert!(!s.super_seed);
        // A bad value is refused with its key named, and nothing of the batch is stored.
        let bad = ["connection_limit=5".to_owned(), "upload=fast".to_owned()];
        let e = config(&paths, &set_only(&bad)).expect_err("bad rate");
        assert!(e.to_string().contains("upload"), "{e}");
        let e = config(&paths, &set_only(&["slots=3".to_owned()])).expect_err("unknown");
        assert!(e.to_string().contains("connection_limit"), "{e}");
        let s = config(&paths, &set_only(&["upload=default".to_owned()]))
            .expect("reset")
            .seeder;
        assert_eq!(s.upload_bps, None);
        assert_eq!(s.connection_limit, 3000);
    }
}
