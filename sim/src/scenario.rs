//! Scenario files: TOML with units, parsed into typed structs. Unknown keys and
//! invalid values are errors that name the file, the key (and line) and what is
//! allowed. The same file is meant to drive a real run on shaped links later.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use swarmhub_core::picker::PickStrategy;

use crate::units::{Dur, Rate, Size};

mod layers;
mod locate;

pub use layers::{local_pieces, Layer};

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in outputs.
    pub name: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed used when the command line gives none.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Stop the run at this simulated time even if peers are incomplete.
    #[serde(default = "default_duration")]
    pub duration: Dur,
    /// Timeline row spacing; default 1 s, coarser for long runs.
    pub timeline_step: Option<Dur>,
    /// The image.
    pub image: Image,
    /// The hub.
    pub hub: Hub,
    /// Peer groups.
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
    /// When peers join.
    #[serde(default)]
    pub arrival: Arrival,
    /// When peers leave.
    #[serde(default)]
    pub departure: Departure,
    /// Peers that crash and come back.
    pub churn: Option<Churn>,
    /// Hub outage and other faults.
    #[serde(default)]
    pub faults: Faults,
    /// Protocol knobs.
    #[serde(default)]
    pub protocol: Protocol,
    /// Latency and topology.
    #[serde(default)]
    pub network: Network,
}

fn default_seed() -> u64 {
    1
}

fn default_duration() -> Dur {
    Dur(swarmhub_core::Duration::from_secs(24 * 3600))
}

/// The image being distributed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Total size.
    pub size: Size,
    /// Piece size; default chosen from the size as the real hub does.
    pub piece_size: Option<Size>,
    /// Block (request) size; default 16 KiB. Larger blocks make huge runs faster
    /// at the cost of coarser pipelining.
    pub block_size: Option<Size>,
    /// The image as layers, in order (adding up to `size`); groups name the
    /// ones their machines already hold in `local_layers`.
    #[serde(default)]
    pub layers: Vec<Layer>,
}

/// The hub: tracker and seed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hub {
    /// Upload capacity.
    pub upload: Rate,
    /// Download capacity (announces only); default equal to upload.
    pub download: Option<Rate>,
    /// Most peers the hub seeder serves connections to at once. Default:
    /// the core's (`settings::HUB_CONNECTION_LIMIT`, 1000).
    #[serde(default = "default_hub_connections")]
    pub connection_limit: usize,
    /// Peers the hub uploads to at once; default enough to fill its uplink
    /// at the slowest peer's download rate.
    pub upload_slots: Option<usize>,
    /// Site of the hub (topology).
    pub site: Option<String>,
    /// The hub super-seeds (advertises a piece or two per peer at a time, so
    /// each piece leaves it about once). Default true.
    #[serde(default = "default_true")]
    pub super_seed: bool,
}

fn default_true() -> bool {
    true
}

fn default_hub_connections() -> usize {
    swarmhub_core::settings::HUB_CONNECTION_LIMIT
}

/// A group of identical peers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group name (peers.csv `group`).
    pub name: String,
    /// Number of peers.
    pub count: usize,
    /// Upload capacity of each.
    pub upload: Rate,
    /// Download capacity of each.
    pub download: Rate,
    /// Site of these peers (topology).
    pub site: Option<String>,
    /// These peers send corrupt blocks.
    #[serde(default)]
    pub corrupt: bool,
    /// Layers of the image these machines already hold (from an earlier image).
    #[serde(default)]
    pub local_layers: Vec<String>,
}

/// How peers arrive.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Arrival {
    /// Everyone at t = 0.
    #[default]
    Flash,
    /// One peer every `interval`.
    Staggered {
        /// Gap between joins.
        interval: Dur,
    },
    /// A Poisson process of `rate` joins per second.
    Poisson {
        /// Joins per second.
        rate: f64,
    },
}

/// What peers do after completing.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Departure {
    /// Leave at completion.
    Leave,
    /// Seed for `duration` after completing, then leave.
    SeedFor {
        /// Seeding time.
        duration: Dur,
    },
    /// Seed until the end of the run (the `swarmhub service` behaviour).
    #[default]
    Forever,
}

/// Crashes and restarts.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Fraction of peers that crash (0..=1).
    pub fraction: f64,
    /// Crashes happen uniformly in [start, start + window).
    pub start: Dur,
    /// Width of the crash window.
    pub window: Dur,
    /// Time a crashed peer stays down before it restarts (keeping verified pieces).
    pub downtime: Dur,
}

/// Fault injection.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The hub is unreachable in this window.
    pub hub_outage: Option<Window>,
    /// Peers that leave gracefully (shut down, announce `stopped`) and come
    /// back `downtime` later with their verified pieces; the same keys as
    /// `[churn]`, whose peers crash instead.
    pub leave_rejoin: Option<Churn>,
}

/// A time window.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Start.
    pub start: Dur,
    /// End (exclusive).
    pub end: Dur,
}

/// Protocol knobs (core defaults when absent).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// Peer-to-peer on; `false` is the hub-only baseline.
    pub p2p: bool,
    /// Regular unchoke slots of a peer (default: the core's, 12).
    pub unchoke_slots: usize,
    /// Rechoke interval.
    pub rechoke_interval: Dur,
    /// Optimistic unchoke interval.
    pub optimistic_interval: Dur,
    /// Blocks requested ahead from one peer.
    pub pipeline_depth: usize,
    /// Piece picker strategy.
    pub picker: PickStrategy,
    /// Most connections per peer.
    pub max_peers: usize,
    /// Peers per announce reply.
    pub numwant: u32,
    /// Tracker announce interval.
    pub announce_interval: Dur,
    /// Far connections (to peers of other sites) a peer of a site keeps of
    /// its own choosing, the hub aside (default: the core's, 1).
    pub cross_site_peers: usize,
    /// Unchoke slots a peer of a site gives far peers (default: the core's, 1).
    pub cross_site_slots: usize,
}

impl Default for Protocol {
    /// The core's defaults ([`swarmhub_core::settings::ProtocolSettings`]).
    fn default() -> Self {
        let p = swarmhub_core::settings::ProtocolSettings::default();
        Protocol {
            p2p: p.p2p,
            unchoke_slots: p.unchoke_slots,
            rechoke_interval: Dur(p.rechoke_interval),
            optimistic_interval: Dur(p.optimistic_interval),
            pipeline_depth: p.pipeline_depth,
            picker: p.picker,
            max_peers: p.max_peers,
            numwant: p.numwant,
            announce_interval: Dur(p.announce_interval),
            cross_site_peers: p.cross_site_peers,
            cross_site_slots: p.cross_site_slots,
        }
    }
}

/// Latency and optional topology.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// One-way latency between two hosts of the same site.
    pub latency: Dur,
    /// Sites (empty: one flat network).
    #[serde(rename = "site")]
    pub sites: Vec<Site>,
    /// Links between sites, shared by the flows that cross them.
    #[serde(rename = "link")]
    pub links: Vec<Link>,
    /// Share of each capacity that carries BitTorrent bytes; the rest is
    /// framing below the peer protocol (TCP/IP and Ethernet headers, TLS
    /// records). 1 (the default) takes capacities as payload rates. TCP over
    /// IPv4 on 1500-byte Ethernet frames carries 1448 payload bytes per
    /// 1514 on the wire (0.956), which is what a link shaped to its line
    /// rate (as in the lab) delivers.
    pub payload_efficiency: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: Dur(swarmhub_core::Duration::from_millis(10)),
            sites: Vec::new(),
            links: Vec::new(),
            payload_efficiency: 1.0,
        }
    }
}

/// A site (data centre, rack).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Name referred to by groups, the hub and links.
    pub name: String,
}

/// A link between two sites.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// One end.
    pub from: String,
    /// Other end.
    pub to: String,
    /// Capacity in each direction.
    pub capacity: Rate,
    /// One-way latency added when crossing.
    pub latency: Dur,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read. (The OS error is part of the message, not
    /// a source, so a chain printer does not say it twice.)
    #[error("cannot read scenario {}: {}", path.display(), read_problem(error))]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        error: std::io::Error,
    },
    /// TOML syntax, unknown key, or a value of the wrong type or unit.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What toml/serde said, with the line and the key.
        message: String,
    },
    /// Values that parse but make no sense together.
    #[error("{}{}: `{key}`: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Invalid {
        /// File.
        path: PathBuf,
        /// Line of the key (or of its table) in the file, when it is written there.
        line: Option<usize>,
        /// Dotted key.
        key: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
}

fn read_problem(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::InvalidData {
        "not UTF-8 text (a scenario is a TOML file)".into()
    } else {
        e.to_string()
    }
}

impl Scenario {
    /// Load and validate a scenario file.
    pub fn load(path: &Path) -> Result<(Scenario, String), ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScenarioError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let scenario = Self::parse(&text, path)?;
        Ok((scenario, text))
    }

    /// Parse and validate scenario text; `path` is used in messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            message: locate::toml_message(text, &e),
        })?;
        scenario.validate(path, text)?;
        Ok(scenario)
    }

    /// Parse `text`, which is the user's file `base` with sweep overrides
    /// applied (`note` names them): errors name lines of `base`, not of `text`.
    pub(crate) fn parse_derived(
        text: &str,
        base: &str,
        path: &Path,
        note: &str,
    ) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|s| locate::key_at(text, s.start));
            let line = key.as_deref().and_then(|k| locate::line_of(base, k));
            let at = match (&key, line) {
                (Some(k), Some(l)) => format!("line {l}, `{k}`: "),
                (Some(k), None) => format!("`{k}`: "),
                _ => String::new(),
            };
            ScenarioError::Parse {
                path: path.to_path_buf(),
                message: format!("{at}{} ({note})", e.message().trim_end()),
            }
        })?;
        scenario.validate(path, base).map_err(|e| match e {
            ScenarioError::Invalid {
                path,
                line,
                key,
                problem,
            } => ScenarioError::Invalid {
                path,
                line,
                key,
                problem: format!("{problem} ({note})"),
            },
            other => other,
        })?;
        Ok(scenario)
    }

    /// Line of dotted `key` in `text` (see [`ScenarioError::Invalid`]).
    pub(crate) fn line_of(text: &str, key: &str) -> Option<usize> {
        locate::line_of(text, key)
    }

    /// A TOML error in `text`, with line, column and a short excerpt.
    pub(crate) fn toml_message(text: &str, e: &toml::de::Error) -> String {
        locate::toml_message(text, e)
    }

    /// SHA-256 (hex) of a scenario's text, recorded in every output.
    pub fn hash_text(text: &str) -> String {
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Total number of peers (not counting the hub).
    pub fn peer_count(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// Check values together; `text` is where the keys' lines are looked up.
    fn validate(&self, path: &Path, text: &str) -> Result<(), ScenarioError> {
        let bad = |key: &str, problem: String| ScenarioError::Invalid {
            path: path.to_path_buf(),
            line: locate::line_of(text, key),
            key: key.to_string(),
            problem,
        };
        if self.image.size.0 == 0 {
            return Err(bad("image.size", "must be above zero".into()));
        }
        if let Some(p) = self.image.piece_size {
            if !p.0.is_power_of_two() || !(16 * 1024..=64 << 20).contains(&p.0) {
                return Err(bad(
                    "image.piece_size",
                    "must be a power of two from 16 KiB to 64 MiB".into(),
                ));
            }
        }
        let piece = self.piece_size();
        let block = self.block_size();
        if !block.is_power_of_two() || block < 1024 || block > piece {
            return Err(bad(
                "image.block_size",
                format!("must be a power of two from 1 KiB up to the piece size ({piece} bytes)"),
            ));
        }
        if self.image.size.0.div_ceil(u64::from(piece)) > 1_000_000 {
            return Err(bad(
                "image.piece_size",
                "more than 1,000,000 pieces; use larger pieces".into(),
            ));
        }
        layers::validate(self).map_err(|(key, problem)| bad(&key, problem))?;
        if self.groups.is_empty() {
            return Err(bad(
                "group",
                "at least one [[group]] with count >= 1 is needed".into(),
            ));
        }
        if let Some(i) = self.groups.iter().position(|g| g.count == 0) {
            return Err(bad(
                &format!("group[{i}].count"),
                "must be at least 1 (leave the group out for none)".into(),
            ));
        }
        if self.peer_count() > 1_000_000 {
            return Err(bad(
                "group.count",
                "at most 1,000,000 peers in total".into(),
            ));
        }
        let sites: Vec<&str> = self.network.sites.iter().map(|s| s.name.as_str()).collect();
        let check_site = |key: &str, site: &Option<String>| match site {
            Some(s) if !sites.contains(&s.as_str()) => Err(bad(
                key,
                format!("unknown site {s:?}; declared sites: {sites:?} ([[network.site]])"),
            )),
            _ => Ok(()),
        };
        check_site("hub.site", &self.hub.site)?;
        for (i, g) in self.groups.iter().enumerate() {
            check_site(&format!("group[{i}].site"), &g.site)?;
            if !sites.is_empty() && g.site.is_none() {
                return Err(bad(
                    &format!("group[{i}].site"),
                    "sites are declared, so every group needs one".into(),
                ));
            }
        }
        if !sites.is_empty() && self.hub.site.is_none() {
            return Err(bad(
                "hub.site",
                "sites are declared, so the hub needs one".into(),
            ));
        }
        for (i, l) in self.network.links.iter().enumerate() {
            for (k, s) in [("from", &l.from), ("to", &l.to)] {
                if !sites.contains(&s.as_str()) {
                    return Err(bad(
                        &format!("network.link[{i}].{k}"),
                        format!("unknown site {s:?}"),
                    ));
                }
            }
        }
        let e = self.network.payload_efficiency;
        if !(e > 0.0 && e <= 1.0) {
            return Err(bad(
                "network.payload_efficiency",
                format!("must be above 0 and at most 1, got {e}"),
            ));
        }
        if let Some(c) = &self.churn {
            if !(0.0..=1.0).contains(&c.fraction) {
                return Err(bad("churn.fraction", "must be between 0 and 1".into()));
            }
        }
        if let Some(c) = &self.faults.leave_rejoin {
            if !(0.0..=1.0).contains(&c.fraction) {
                return Err(bad(
                    "faults.leave_rejoin.fraction",
                    "must be between 0 and 1".into(),
                ));
            }
        }
        if let Some(w) = &self.faults.hub_outage {
            if w.end <= w.start {
                return Err(bad("faults.hub_outage.end", "must be after start".into()));
            }
        }
        if let Arrival::Poisson { rate } = self.arrival {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(bad(
                    "arrival.rate",
                    "must be a positive number of joins per second".into(),
                ));
            }
        }
        if self.protocol.pipeline_depth == 0 || self.protocol.max_peers == 0 {
            return Err(bad(
                "protocol",
                "pipeline_depth and max_peers must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Piece size in bytes (explicit or chosen like the real hub).
    pub fn piece_size(&self) -> u32 {
        match self.image.piece_size {
            Some(p) => p.0 as u32,
            None => swarmhub_core::metainfo::piece_length_for(self.image.size.0),
        }
    }

    /// The `[protocol]` table (and `image.block_size`) as the core's settings.
    pub fn protocol_settings(&self) -> swarmhub_core::settings::ProtocolSettings {
        let p = &self.protocol;
        swarmhub_core::settings::ProtocolSettings {
            p2p: p.p2p,
            unchoke_slots: p.unchoke_slots,
            rechoke_interval: p.rechoke_interval.0,
            optimistic_interval: p.optimistic_interval.0,
            pipeline_depth: p.pipeline_depth,
            picker: p.picker,
            max_peers: p.max_peers,
            numwant: p.numwant,
            announce_interval: p.announce_interval.0,
            block_size: self.block_size(),
            cross_site_peers: p.cross_site_peers,
            cross_site_slots: p.cross_site_slots,
        }
    }

    /// The `[hub]` table as the core's hub settings, the same the real hub
    /// takes from `swarmhub hub config`. Without `upload_slots` the hub gets
    /// enough slots to fill its uplink at the slowest group's download rate
    /// (the real hub, which does not know its clients, takes the core's
    /// default instead).
    pub fn hub_settings(&self) -> swarmhub_core::settings::HubSettings {
        let hub = &self.hub;
        let slots = hub.upload_slots.map(|s| s.max(1)).unwrap_or_else(|| {
            let slowest = self
                .groups
                .iter()
                .map(|g| g.download.0)
                .fold(f64::INFINITY, f64::min);
            ((hub.upload.0 / slowest).ceil() as usize)
                .clamp(4, swarmhub_core::settings::HUB_MAX_UPLOAD_SLOTS)
        });
        swarmhub_core::settings::HubSettings {
            upload_bps: Some(hub.upload.bytes_per_s() as u64),
            download_bps: Some(hub.download.unwrap_or(hub.upload).bytes_per_s() as u64),
            connection_limit: hub.connection_limit,
            upload_slots: Some(slots),
            super_seed: hub.super_seed,
        }
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.image
            .block_size
            .map_or(16 * 1024, |b| b.0.min(u64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests;
