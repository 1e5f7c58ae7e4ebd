//! The hub: image cache, catalog, users and settings (`swarmhub hub ...`), and
//! the server (`hub serve`): HTTP API, private tracker, web seed and seeder.

pub mod admin;
pub mod api;
mod https;
pub mod serve;

use crate::db::{Db, DbError};

/// Setting key: the image cache is enabled.
pub const SETTING_CACHE: &str = "cache";
/// Setting key: peer-to-peer distribution is enabled.
pub const SETTING_P2P: &str = "p2p";
/// Setting key: the hub seeder runs (with P2P on, the tracker works either way).
pub const SETTING_SEED: &str = "seed";
/// Setting key: peer links use mutual TLS (off only for interoperability tests).
pub const SETTING_PEER_TLS: &str = "peer_tls";

/// The loud warning shown wherever peer TLS is off.
pub const PEER_TLS_OFF_WARNING: &str = "WARNING: peer TLS is OFF: peer links are neither \
authenticated nor encrypted and anyone who can reach a peer port can join a swarm. \
Use this only for interoperability tests; turn it back on with \
`swarmhub hub config --peer-tls=on`.";

/// The hub's switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubSettings {
    /// "Enable hub image cache".
    pub cache: bool,
    /// "Enable peer-to-peer image distribution".
    pub p2p: bool,
    /// The hub seeds its images itself (off: clients serve each other, the hub
    /// only tracks and answers HTTP).
    pub seed: bool,
    /// Peer links use mutual TLS with hub-issued certificates.
    pub peer_tls: bool,
}

impl HubSettings {
    /// Read from the database (both default on).
    pub fn load(db: &Db) -> Result<Self, DbError> {
        Ok(HubSettings {
            cache: db.flag(SETTING_CACHE, true)?,
            p2p: db.flag(SETTING_P2P, true)?,
            seed: db.flag(SETTING_SEED, true)?,
            peer_tls: db.flag(SETTING_PEER_TLS, true)?,
        })
    }
}

/// Header carrying the client secret on API calls.
pub const AUTH_HEADER: &str = "authorization";
/// Header carrying the admin token of a running hub (`DIR/run/admin.token`).
pub const ADMIN_HEADER: &str = "x-swarmhub-admin";
