//! The hub: image cache, catalog, users and settings (`swarmhub hub ...`), and
//! the server (`hub serve`): HTTP API, private tracker, web seed and seeder.

pub mod admin;
pub mod api;
mod authsnap;
pub mod console;
pub mod counters;
pub mod hostnames;
mod https;
pub mod passwd;
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

/// Setting key: CIDR ranges mapped to site names
/// (`swarmhub_core::sites::SiteMap`'s text form).
pub const SETTING_SITES: &str = "sites";

/// The loud warning shown wherever peer TLS is off.
pub const PEER_TLS_OFF_WARNING: &str = "WARNING: peer TLS is OFF: peer links are neither \
authenticated nor encrypted and anyone who can reach a peer port can join a swarm. \
Use this only for interoperability tests; turn it back on with \
`swarmhub hub config --peer-tls=on`.";

/// Setting keys of the hub seeder, the names of a scenario's `[hub]` keys
/// (see `swarmhub_core::settings::HubSettings`), in the order `hub config`
/// prints them.
pub const SEEDER_KEYS: [&str; 5] = [
    "upload",
    "download",
    "connection_limit",
    "upload_slots",
    "super_seed",
];

/// The hub's switches and its seeder's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The seeder's settings, as a scenario's `[hub]` table gives them to the
    /// simulator; both build the seeder's `NodeConfig` through
    /// `swarmhub_core::settings::hub_node_config`.
    pub seeder: swarmhub_core::settings::HubSettings,
    /// Names the hub's server certificate carries (`None`: the default,
    /// [`hostnames::default_names`]).
    pub hostnames: Option<Vec<hostnames::HostName>>,
    /// Which site each client address is in: the tracker tells clients
    /// their site, and they prefer peers of their own.
    pub sites: swarmhub_core::sites::SiteMap,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            cache: true,
            p2p: true,
            seed: true,
            peer_tls: true,
            seeder: swarmhub_core::settings::HubSettings::default(),
            hostnames: None,
            sites: swarmhub_core::sites::SiteMap::default(),
        }
    }
}

impl HubSettings {
    /// Read from the database (switches default on, the seeder's settings
    /// default to the core's).
    pub fn load(db: &Db) -> Result<Self, DbError> {
        let mut seeder = swarmhub_core::settings::HubSettings::default();
        for key in SEEDER_KEYS {
            if let Some(value) = db.setting(key)? {
                // Values were checked when set; one edited by hand into
                // something invalid is reported and left at its default.
                if let Err(e) = apply_seeder_setting(&mut seeder, key, &value) {
                    tracing::warn!("hub setting {e}; using the default");
                }
            }
        }
        let hostnames = match db.setting(hostnames::SETTING_HOSTNAME)? {
            Some(v) => hostnames::parse_list(&v).unwrap_or_else(|e| {
                tracing::warn!("hub setting {e}; using the default host names");
                None
            }),
            None => None,
        };
        let sites = match db.setting(SETTING_SITES)? {
            Some(v) => swarmhub_core::sites::SiteMap::parse(&v).unwrap_or_else(|e| {
                tracing::warn!("hub setting {e}; using no sites");
                swarmhub_core::sites::SiteMap::default()
            }),
            None => swarmhub_core::sites::SiteMap::default(),
        };
        Ok(HubSettings {
            hostnames,
            sites,
            cache: db.flag(SETTING_CACHE, true)?,
            p2p: db.flag(SETTING_P2P, true)?,
            seed: db.flag(SETTING_SEED, true)?,
            peer_tls: db.flag(SETTING_PEER_TLS, true)?,
            seeder,
        })
    }
}

/// Set one seeder setting from its text (`"10 Gbit/s"`, `"3000"`, `"true"`;
/// `"default"` puts it back to the core's default). The error names the key
/// and what is allowed.
pub fn apply_seeder_setting(
    seeder: &mut swarmhub_core::settings::HubSettings,
    key: &str,
    value: &str,
) -> Result<(), String> {
    use swarmhub_core::settings::{parse_rate_bps, HubSettings as Core};
    let d = Core::default();
    let value = value.trim();
    let reset = value == "default";
    let count = |max: usize| -> Result<usize, String> {
        match value.replace('_', "").parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "{key}={value:?}: use a whole number from 1 to {max}, or default"
            )),
        }
    };
    let rate = || parse_rate_bps(value).map_err(|e| format!("{key}: {e}, or default"));
    match key {
        "upload" => seeder.upload_bps = if reset { d.upload_bps } else { Some(rate()?) },
        "download" => seeder.download_bps = if reset { d.download_bps } else { Some(rate()?) },
        "connection_limit" => {
            seeder.connection_limit = if reset {
                d.connection_limit
            } else {
                count(1_000_000)?
            }
        }
        "upload_slots" => {
            seeder.upload_slots = if reset {
                d.upload_slots
            } else {
                Some(count(swarmhub_core::settings::HUB_MAX_UPLOAD_SLOTS)?)
            }
        }
        "super_seed" => {
            seeder.super_seed = match value {
                "default" => d.super_seed,
                "true" | "on" | "1" => true,
                "false" | "off" | "0" => false,
                _ => {
                    return Err(format!(
                        "super_seed={value:?}: use true or false, or default"
                    ))
                }
            }
        }
        _ => {
            return Err(format!(
                "unknown hub setting {key:?}: use one of {}",
                SEEDER_KEYS.join(", ")
            ))
        }
    }
    Ok(())
}

/// How `hub config` shows a seeder setting.
pub fn seeder_setting_text(seeder: &swarmhub_core::settings::HubSettings, key: &str) -> String {
    let rate = |r: Option<u64>| match r {
        Some(b) => format!("{} Mbit/s", b as f64 * 8.0 / 1e6),
        None => "unknown".to_owned(),
    };
    match key {
        "upload" => rate(seeder.upload_bps),
        "download" => rate(seeder.download_bps),
        "connection_limit" => seeder.connection_limit.to_string(),
        "upload_slots" => seeder.upload_slots.map_or_else(
            || format!("default ({})", swarmhub_core::settings::HUB_UPLOAD_SLOTS),
            |n| n.to_string(),
        ),
        "super_seed" => seeder.super_seed.to_string(),
        _ => String::new(),
    }
}

/// Header carrying the client secret on API calls.
pub const AUTH_HEADER: &str = "authorization";
/// Header carrying the admin token of a running hub (`DIR/run/admin.token`).
pub const ADMIN_HEADER: &str = "x-swarmhub-admin";
