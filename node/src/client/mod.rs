//! The client: `login`, `pull`, `images`, `config`, `service`, `doctor`.

pub mod certs;
mod doctor;
mod hubapi;
pub mod live;
pub mod mirror;
mod mirror_live;
pub mod mirror_setup;
mod outage;
mod pull;
mod service;

use std::path::PathBuf;

pub use doctor::{doctor, Check};
pub use hubapi::{HubClient, HubError};
pub use outage::DEFAULT_GIVE_UP_AFTER;
pub use pull::{pull, pull_embedded, PullOptions, PullSummary};
pub use service::service;

use crate::db::{Db, DbError};
use crate::paths::ClientPaths;
use crate::peer::PortRange;
use crate::store::StoreError;
use crate::util::{human_rate, parse_size};

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] DbError),
    /// File trouble.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The hub said no or could not be reached.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Not enrolled.
    #[error("not logged in: run `swarmhub login HUB_URL --key KEY` first")]
    NotLoggedIn,
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

/// Setting keys of the client.
pub mod keys {
    /// Hub base URL.
    pub const HUB_URL: &str = "hub_url";
    /// Enrolled identity.
    pub const IDENTITY: &str = "identity";
    /// Client secret.
    pub const SECRET: &str = "secret";
    /// Peer-to-peer download on/off.
    pub const P2P_DOWNLOAD: &str = "p2pdownload";
    /// Upload limit, bytes/s.
    pub const MAX_UPLOAD_RATE: &str = "max_upload_rate";
    /// Download limit, bytes/s.
    pub const MAX_DOWNLOAD_RATE: &str = "max_download_rate";
    /// Peer port range.
    pub const PEER_PORTS: &str = "peer_ports";
    /// Seconds without progress before falling back to HTTP.
    pub const FALLBACK_AFTER: &str = "fallback_after_s";
    /// The registry mirror inside `swarmhub service` on/off.
    pub const MIRROR: &str = "mirror";
    /// Connections per image (unset: the protocol's default).
    pub const MAX_PEERS: &str = "max_peers";
}

/// Everything in the client's settings table, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Hub URL, when logged in.
    pub hub_url: Option<String>,
    /// Identity, when logged in.
    pub identity: Option<String>,
    /// Secret, when logged in.
    pub secret: Option<String>,
    /// Peer-to-peer download (default on).
    pub p2p_download: bool,
    /// Upload limit, bytes/s (0: none).
    pub max_upload_bps: u64,
    /// Download limit, bytes/s (0: none).
    pub max_download_bps: u64,
    /// Peer ports.
    pub peer_ports: PortRange,
    /// Seconds without progress before HTTP fallback.
    pub fallback_after_s: u64,
    /// `swarmhub service` also runs the registry mirror (default off).
    pub mirror: bool,
    /// Connections per image, when capped below the protocol's default.
    pub max_peers: Option<usize>,
}

impl ClientConfig {
    /// Read from the database.
    pub fn load(db: &Db) -> Result<Self, ClientError> {
        let num = |key: &str, default: u64| -> Result<u64, ClientError> {
            match db.setting(key)? {
                Some(v) => {
                    parse_size(&v).map_err(|e| ClientError::Other(format!("setting {key}: {e}")))
                }
                None => Ok(default),
            }
        };
        Ok(ClientConfig {
            hub_url: db.setting(keys::HUB_URL)?,
            identity: db.setting(keys::IDENTITY)?,
            secret: db.setting(keys::SECRET)?,
            p2p_download: db.flag(keys::P2P_DOWNLOAD, true)?,
            max_upload_bps: num(keys::MAX_UPLOAD_RATE, 0)?,
            max_download_bps: num(keys::MAX_DOWNLOAD_RATE, 0)?,
            peer_ports: match db.setting(keys::PEER_PORTS)? {
                Some(v) => v.parse().map_err(ClientError::Other)?,
                None => PortRange::default(),
            },
            fallback_after_s: num(keys::FALLBACK_AFTER, 20)?,
            mirror: db.flag(keys::MIRROR, false)?,
            max_peers: match db.setting(keys::MAX_PEERS)? {
                Some(v) => Some(parse_max_peers(&v).map_err(ClientError::Other)?),
                None => None,
            },
        })
    }

    /// The hub client with this home's certificate (renewed first if it
    /// is due), or [`ClientError::NotLoggedIn`].
    pub async fn hub(&self, paths: &ClientPaths) -> Result<HubClient, ClientError> {
        match (&self.hub_url, &self.secret) {
            (Some(url), Some(secret)) => certs::connect(paths, url, secret).await,
            _ => Err(ClientError::NotLoggedIn),
        }
    }

    /// `config --all` lines.
    pub fn lines(&self) -> Vec<String> {
        let on = |b: bool| if b { "Enabled" } else { "Disabled" };
        vec![
            format!(
                "Hub: {}",
                self.hub_url.as_deref().unwrap_or("(not logged in)")
            ),
            format!("Identity: {}", self.identity.as_deref().unwrap_or("(none)")),
            format!("Peer-to-peer download: {}", on(self.p2p_download)),
            format!("Max upload rate: {}", human_rate(self.max_upload_bps)),
            format!("Max download rate: {}", human_rate(self.max_download_bps)),
            format!("Peer ports: {}", self.peer_ports),
            format!(
                "HTTP fallback after: {} s without progress",
                self.fallback_after_s
            ),
            match self.max_peers {
                Some(m) => format!("Connections per image: {m}"),
                None => format!(
                    "Connections per image: {} (default)",
                    swarmhub_core::settings::ProtocolSettings::default().max_peers
                ),
            },
            format!(
                "Registry mirror in the service: {} ({})",
                on(self.mirror),
                mirror::DEFAULT_LISTEN
            ),
        ]
    }
}

/// Open the client database under `paths`.
pub fn open_db(paths: &ClientPaths) -> Result<Db, ClientError> {
    std::fs::create_dir_all(&paths.root)
        .map_err(|e| ClientError::Other(format!("{}: {e}", paths.root.display())))?;
    Ok(Db::open(&paths.db())?)
}

/// `login HUB_URL --key KEY`: enroll and store the credentials.
pub async fn login(
    paths: &ClientPaths,
    url: &str,
    key: &str,
    fingerprint: Option<&str>,
) -> Result<String, ClientError> {
    let ca = certs::pin_ca(url, fingerprint).await?;
    let hub = certs::pinned(url, &ca)?;
    let (keypair, csr) = certs::new_request("client")?;
    let enrolled = hub.enroll(key, &csr).await?;
    certs::store_new(
        paths,
        &enrolled.identity,
        &keypair,
        &enrolled.certificate,
        &ca,
    )?;
    let db = open_db(paths)?;
    db.set_setting(keys::HUB_URL, hub.base())?;
    db.set_setting(keys::IDENTITY, &enrolled.identity)?;
    db.set_setting(keys::SECRET, &enrolled.secret)?;
    Ok(enrolled.identity)
}

/// Changes asked of `config`.
#[derive(Clone, Debug, Default)]
pub struct ConfigChanges {
    /// `--enable` items.
    pub enable: Vec<String>,
    /// `--disable` items.
    pub disable: Vec<String>,
    /// `--max-upload-rate`.
    pub max_upload_rate: Option<String>,
    /// `--max-download-rate`.
    pub max_download_rate: Option<String>,
    /// `--peer-ports`.
    pub peer_ports: Option<String>,
    /// `--fallback-after`.
    pub fallback_after_s: Option<u64>,
    /// `--max-peers`.
    pub max_peers: Option<String>,
}

/// A `max_peers` value: a whole number of connections, at least 1.
pub fn parse_max_peers(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "max_peers {v:?} is not a number of connections: give a whole number, at least 1"
        )),
    }
}

/// `config`: apply changes, return the resulting configuration.
pub fn config(paths: &ClientPaths, ch: &ConfigChanges) -> Result<ClientConfig, ClientError> {
    let db = open_db(paths)?;
    for (list, value) in [(&ch.enable, "1"), (&ch.disable, "0")] {
        for item in list {
            if item != keys::P2P_DOWNLOAD && item != keys::MIRROR {
                return Err(ClientError::Other(format!(
                    "unknown setting {item:?}: the switches are p2pdownload and mirror"
                )));
            }
            db.set_setting(item, value)?;
        }
    }
    for (key, v) in [
        (keys::MAX_UPLOAD_RATE, &ch.max_upload_rate),
        (keys::MAX_DOWNLOAD_RATE, &ch.max_download_rate),
    ] {
        if let Some(v) = v {
            let bps = parse_size(v).map_err(ClientError::Other)?;
            db.set_setting(key, &bps.to_string())?;
        }
    }
    if let Some(p) = &ch.peer_ports {
        let r: PortRange = p.parse().map_err(ClientError::Other)?;
        db.set_setting(keys::PEER_PORTS, &r.to_string())?;
    }
    if let Some(s) = ch.fallback_after_s {
        db.set_setting(keys::FALLBACK_AFTER, &s.to_string())?;
    }
    if let Some(m) = &ch.max_peers {
        let n = parse_max_peers(m).map_err(ClientError::Other)?;
        db.set_setting(keys::MAX_PEERS, &n.to_string())?;
    }
    ClientConfig::load(&db)
}

/// One local image.
#[derive(Clone, Debug)]
pub struct LocalImage {
    /// `NAME:TAG`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Files.
    pub files: usize,
    /// Where it is.
    pub path: PathBuf,
}

/// `images`: the local store.
pub fn images(paths: &ClientPaths) -> Result<Vec<LocalImage>, ClientError> {
    let db = open_db(paths)?;
    let mut out = Vec::new();
    for row in db.images()? {
        let meta = swarmhub_core::metainfo::Metainfo::from_bytes(&row.metainfo)
            .map_err(|e| ClientError::Other(format!("stored metainfo of {}: {e}", row.name)))?;
        let image: crate::image::ImageName = row
            .name
            .parse()
            .map_err(|e: crate::image::ImageNameError| ClientError::Other(e.to_string()))?;
        out.push(LocalImage {
            name: row.name.clone(),
            size: meta.total_length(),
            files: meta.files.len(),
            path: paths.image_dir(&image),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_peers_is_stored_shown_and_refused_when_not_a_count() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = ClientPaths::new(tmp.path().to_path_buf());
        let cfg = config(&paths, &ConfigChanges::default()).expect("defaults");
        assert_eq!(cfg.max_peers, None);
        assert!(cfg.lines().iter().any(|l| l.ends_with("(default)")));
        for bad in ["0", "-3", "many", ""] {
            let ch = ConfigChanges {
                max_peers: Some(bad.into()),
                ..ConfigChanges::default()
            };
            let e = config(&paths, &ch).expect_err(bad).to_string();
            assert!(e.contains("max_peers"), "{e}");
        }
        let ch = ConfigChanges {
            max_peers: Some("12".into()),
            ..ConfigChanges::default()
        };
        let cfg = config(&paths, &ch).expect("set");
        assert_eq!(cfg.max_peers, Some(12));
        assert!(cfg
            .lines()
            .contains(&"Connections per image: 12".to_string()));
    }
}
