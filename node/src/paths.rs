//! Where the hub and the client keep their state.

use std::path::{Path, PathBuf};

use swarmhub_core::Id20;

use crate::image::ImageName;
use crate::util::hex;

/// The hub's folder (`hub --dir DIR`).
#[derive(Clone, Debug)]
pub struct HubPaths {
    /// The folder itself.
    pub root: PathBuf,
}

impl HubPaths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HubPaths { root: root.into() }
    }
    /// The embedded database.
    pub fn db(&self) -> PathBuf {
        self.root.join("hub.db")
    }
    /// The image cache: `cache/NAME/TAG/<files>`.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    /// One image's folder in the cache.
    pub fn image_dir(&self, image: &ImageName) -> PathBuf {
        self.cache().join(&image.name).join(&image.tag)
    }
    /// Log files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The hub CA (`ca.key`, mode 0600, and `ca.crt`).
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }
    /// Files a running hub writes its bound addresses to (`api.addr`, `seed.addr`).
    pub fn run_file(&self, name: &str) -> PathBuf {
        self.root.join("run").join(name)
    }
}

/// The client's home (`--home DIR` or `SWARMHUB_HOME`).
#[derive(Clone, Debug)]
pub struct ClientPaths {
    /// The folder itself.
    pub root: PathBuf,
}

impl ClientPaths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ClientPaths { root: root.into() }
    }
    /// The platform data folder (e.g. `~/.local/share/swarmhub`).
    pub fn default_root() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "swarmhub").map(|d| d.data_dir().to_path_buf())
    }
    /// The embedded database: settings, credentials, local images.
    pub fn db(&self) -> PathBuf {
        self.root.join("client.db")
    }
    /// Complete images: `images/NAME/TAG/<files>`.
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    /// One complete image's folder.
    pub fn image_dir(&self, image: &ImageName) -> PathBuf {
        self.images().join(&image.name).join(&image.tag)
    }
    /// Downloads in progress, by info hash; never looks like a complete image.
    pub fn partial(&self, info_hash: &Id20) -> PathBuf {
        self.root.join("partial").join(hex(&info_hash.0))
    }
    /// Log files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Run-time files (e.g. the port a running service listens on).
    pub fn run_file(&self, name: &str) -> PathBuf {
        self.root.join("run").join(name)
    }
}

/// Write `contents` to `path` atomically (temporary file, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
