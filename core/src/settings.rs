//! The settings operators write, and the one place they become a [`NodeConfig`].
//!
//! A scenario's `[hub]` and `[protocol]` tables and the real hub's settings
//! (`swarmhub hub config`) use the names of [`HubSettings`] and
//! [`ProtocolSettings`]; the simulator and the node both call
//! [`hub_node_config`] and [`client_node_config`], so a scenario describes the
//! hub and the clients that ship. Every default here is the core's own (the
//! choker's, the picker's, the session's, the tracker's), never a copy.

use crate::choker::ChokerConfig;
use crate::metainfo::Geometry;
use crate::node::NodeConfig;
use crate::picker::{PickStrategy, PickerConfig};
use crate::session::SessionConfig;
use crate::time::Duration;
use crate::tracker::TrackerConfig;
use crate::Id20;

/// Default per-image connection limit of the hub seeder: enough that a
/// rollout to a thousand machines is not refused by the hub.
pub const HUB_CONNECTION_LIMIT: usize = 1000;
/// Default hub upload slots when neither the operator nor the simulator's
/// sizing rule gives a number: one 100 Mbit/s client per slot on a 10 Gbit/s
/// uplink would be 100; the choker widens slots while the uplink is underused.
pub const HUB_UPLOAD_SLOTS: usize = 32;
/// Most upload slots the hub may be given.
pub const HUB_MAX_UPLOAD_SLOTS: usize = 1000;

/// Protocol knobs shared by every node of a swarm (scenario `[protocol]`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolSettings {
    /// Peer-to-peer on; `false` is the hub-only baseline.
    pub p2p: bool,
    /// Regular unchoke slots of a peer.
    pub unchoke_slots: usize,
    /// Rechoke interval.
    pub rechoke_interval: Duration,
    /// Optimistic unchoke interval.
    pub optimistic_interval: Duration,
    /// Blocks requested ahead from one peer.
    pub pipeline_depth: usize,
    /// Piece picker strategy.
    pub picker: PickStrategy,
    /// Most connections per client.
    pub max_peers: usize,
    /// Peers per announce reply.
    pub numwant: u32,
    /// Tracker announce interval.
    pub announce_interval: Duration,
    /// Block (request) size in bytes (scenario `image.block_size`).
    pub block_size: u32,
    /// Once a node knows its site: far connections of its own choosing it
    /// keeps (the hub's pinned seeders aside).
    pub cross_site_peers: usize,
    /// Once a node knows its site: unchoke slots it gives far peers.
    pub cross_site_slots: usize,
}

impl Default for ProtocolSettings {
    fn default() -> Self {
        let choker = ChokerConfig::default();
        let session = SessionConfig::default();
        let picker = PickerConfig::default();
        let tracker = TrackerConfig::default();
        let node = NodeConfig::new(Id20::new([0; 20]), Id20::new([0; 20]), Geometry::new(1, 1));
        ProtocolSettings {
            p2p: true,
            unchoke_slots: choker.slots,
            rechoke_interval: choker.rechoke_interval,
            optimistic_interval: choker.optimistic_interval,
            pipeline_depth: session.request_queue_depth,
            picker: picker.strategy,
            max_peers: node.max_peers,
            numwant: node.numwant,
            announce_interval: tracker.interval,
            block_size: picker.block_len,
            cross_site_peers: node.cross_site_peers,
            cross_site_slots: choker.cross_site_slots,
        }
    }
}

/// The hub seeder's settings (scenario `[hub]`, `swarmhub hub config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubSettings {
    /// Upload capacity in bytes per second, when known: lets the choker widen
    /// slots while the uplink is underused.
    pub upload_bps: Option<u64>,
    /// Download capacity in bytes per second (the simulator's link model only).
    pub download_bps: Option<u64>,
    /// Most peers one image's seeder keeps connections to.
    pub connection_limit: usize,
    /// Peers uploaded to at once; `None`: [`HUB_UPLOAD_SLOTS`].
    pub upload_slots: Option<usize>,
    /// Super-seed (advertise a piece or two per peer at a time).
    pub super_seed: bool,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            upload_bps: None,
            download_bps: None,
            connection_limit: HUB_CONNECTION_LIMIT,
            upload_slots: None,
            super_seed: true,
        }
    }
}

/// A client's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// Upload capacity in bytes per second, when known (the configured upload
    /// limit, or the link speed).
    pub upload_bps: Option<u64>,
    /// Connections per image, when the client caps them below the protocol's
    /// `max_peers` (a machine that runs many clients, or a small one).
    pub max_peers: Option<usize>,
}

/// Identity of a node in one swarm: what the driver knows, not a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Image info hash.
    pub info_hash: Id20,
    /// Our peer id.
    pub peer_id: Id20,
    /// Sizes of the image.
    pub geometry: Geometry,
    /// Port we accept peers on.
    pub listen_port: u16,
}

fn base_config(id: NodeIdentity, protocol: &ProtocolSettings) -> NodeConfig {
    let mut config = NodeConfig::new(id.info_hash, id.peer_id, id.geometry);
    config.listen_port = id.listen_port;
    config.numwant = protocol.numwant;
    config.picker.strategy = protocol.picker;
    config.picker.block_len = protocol.block_size;
    config.session.max_block_len = protocol.block_size;
    config.session.request_queue_depth = protocol.pipeline_depth;
    config.choker.slots = protocol.unchoke_slots;
    config.choker.rechoke_interval = protocol.rechoke_interval;
    config.choker.optimistic_interval = protocol.optimistic_interval;
    config.max_peers = protocol.max_peers;
    config.cross_site_peers = protocol.cross_site_peers;
    config.choker.cross_site_slots = protocol.cross_site_slots;
    config
}

/// The hub seeder's [`NodeConfig`] for one image.
pub fn hub_node_config(
    id: NodeIdentity,
    protocol: &ProtocolSettings,
    hub: &HubSettings,
) -> NodeConfig {
    let mut config = base_config(id, protocol);
    config.upload_capacity_bps = hub.upload_bps;
    config.super_seed = hub.super_seed && protocol.p2p;
    config.max_peers = hub.connection_limit.max(1);
    config.choker.slots = hub
        .upload_slots
        .unwrap_or(HUB_UPLOAD_SLOTS)
        .clamp(1, HUB_MAX_UPLOAD_SLOTS);
    config.choker.max_slots = config.choker.max_slots.max(config.choker.slots);
    config
}

/// How long one unchoke slot may take to carry a piece at a client's known
/// upload rate (see [`slots_for_uplink`]).
pub const SLOT_PIECE_TIME_MS: u64 = 1000;

/// Regular unchoke slots for a client whose uplink carries `upload_bps`
/// bytes/s: at most `slots`, and no more than let each slot carry a piece of
/// `piece_length` bytes in [`SLOT_PIECE_TIME_MS`] (at least one).
///
/// A piece is of use to others only once whole and verified, so an uplink
/// split over many slots keeps its bytes in half-done pieces for longer: at
/// 2.5 MB/s over 13 flows a 1 MiB piece takes 5.5 s to land anywhere, against
/// 0.4 s on one. The sooner pieces land, the sooner their receivers upload
/// them, which is what the spread of a swarm whose peers upload no faster than
/// its hub waits on (Mundinger, Weber & Weiss 2008: the optimal schedule
/// sends whole pieces one at a time, at full rate). A fast uplink keeps its
/// many slots, which even out completion times in a fleet; a slow one that
/// turns out underused still widens (`NodeConfig::upload_capacity_bps`).
pub fn slots_for_uplink(slots: usize, upload_bps: u64, piece_length: u32) -> usize {
    let per_piece = u64::from(piece_length.max(1));
    let fit = upload_bps.saturating_mul(SLOT_PIECE_TIME_MS) / 1000 / per_piece;
    (fit as usize).clamp(1, slots.max(1))
}

/// A client's [`NodeConfig`] for one image.
pub fn client_node_config(
    id: NodeIdentity,
    protocol: &ProtocolSettings,
    client: &ClientSettings,
) -> NodeConfig {
    let mut config = base_config(id, protocol);
    config.upload_capacity_bps = client.upload_bps;
    if let Some(up) = client.upload_bps {
        config.choker.slots = slots_for_uplink(config.choker.slots, up, id.geometry.piece_length);
    }
    if let Some(m) = client.max_peers {
        config.max_peers = m.max(1);
    }
    config
}

/// A rate setting that did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a rate: write a number and one of bit/s, kbit/s, Mbit/s, Gbit/s, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s (e.g. \"10 Gbit/s\")")]
pub struct RateError {
    input: String,
}

/// Parse a rate as scenario files write it (`"10 Gbit/s"`, `"125 MB/s"`)
/// into bytes per second.
pub fn parse_rate_bps(input: &str) -> Result<u64, RateError> {
    let err = || RateError {
        input: input.to_owned(),
    };
    let s = input.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let n: f64 = num.replace('_', "").parse().map_err(|_| err())?;
    let bits = rate_unit_bits(unit.trim()).ok_or_else(err)?;
    let bytes = n * bits / 8.0;
    if !(1.0..1e18).contains(&bytes) {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// Bits per second in one of a rate's units (`"Mbit/s"`, `"MiB/s"`, ...),
/// the one table that hub settings and scenario files both read.
pub fn rate_unit_bits(unit: &str) -> Option<f64> {
    Some(match unit {
        "bit/s" | "bps" => 1.0,
        "kbit/s" | "Kbit/s" | "kbps" => 1e3,
        "Mbit/s" | "Mbps" => 1e6,
        "Gbit/s" | "Gbps" => 1e9,
        "Tbit/s" => 1e12,
        "B/s" => 8.0,
        "kB/s" | "KB/s" => 8e3,
        "MB/s" => 8e6,
        "GB/s" => 8e9,
        "KiB/s" => 8.0 * 1024.0,
        "MiB/s" => 8.0 * 1024.0 * 1024.0,
        "GiB/s" => 8.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> NodeIdentity {
        NodeIdentity {
            info_hash: Id20::new([1; 20]),
            peer_id: Id20::new([2; 20]),
            geometry: Geometry::new(1 << 20, 1 << 16),
            listen_port: 6881,
        }
    }

    #[test]
    fn protocol_defaults_are_the_cores() {
        let p = ProtocolSettings::default();
        let plain = NodeConfig::new(id().info_hash, id().peer_id, id().geometry);
        let mut client = client_node_config(id(), &p, &ClientSettings::default());
        client.listen_port = plain.listen_port;
        assert_eq!(
            client, plain,
            "a client with default settings is NodeConfig::new"
        );
        assert_eq!(p.announce_interval, Duration::from_secs(120));
    }

    #[test]
    fn hub_config_takes_its_limits_slots_and_capacity() {
        let hub = HubSettings {
            upload_bps: Some(1_250_000_000),
            upload_slots: Some(64),
            connection_limit: 3000,
            ..HubSettings::default()
        };
        let c = hub_node_config(id(), &ProtocolSettings::default(), &hub);
        assert_eq!(c.max_peers, 3000);
        assert_eq!(c.choker.slots, 64);
        assert_eq!(c.choker.max_slots, 64);
        assert_eq!(c.upload_capacity_bps, Some(1_250_000_000));
        assert!(c.super_seed);
        let off = ProtocolSettings {
            p2p: false,
            ..ProtocolSettings::default()
        };
        assert!(!hub_node_config(id(), &off, &hub).super_seed);
        let d = hub_node_config(id(), &off, &HubSettings::default());
        assert_eq!(d.choker.slots, HUB_UPLOAD_SLOTS);
        assert_eq!(d.max_peers, HUB_CONNECTION_LIMIT);
    }

    #[test]
    fn a_client_sizes_its_slots_from_its_uplink_and_piece_length() {
        let p = ProtocolSettings::default();
        let mib = 1u32 << 20;
        // Fast enough that every slot carries a piece in time: the protocol's.
        let fast = 1000 * u64::from(mib);
        assert_eq!(
            slots_for_uplink(p.unchoke_slots, fast, mib),
            p.unchoke_slots
        );
        // Too slow for one piece in time: one slot, never none.
        assert_eq!(slots_for_uplink(p.unchoke_slots, 1000, mib), 1);
        assert_eq!(slots_for_uplink(0, fast, mib), 1);
        // Fewer slots for a slower uplink or larger pieces, never more.
        let mut last = 0;
        for up in (1..=64u64).map(|k| k * 250_000) {
            let n = slots_for_uplink(p.unchoke_slots, up, mib);
            assert!(n >= last, "{up} B/s: {n} slots after {last}");
            assert!(slots_for_uplink(p.unchoke_slots, up, 4 * mib) <= n);
            last = n;
        }
        // Each slot gets at least a piece per SLOT_PIECE_TIME_MS.
        let up = 2_500_000;
        let n = slots_for_uplink(p.unchoke_slots, up, mib) as u64;
        assert!(n == 1 || up * SLOT_PIECE_TIME_MS / 1000 / n >= u64::from(mib));
        // The client's NodeConfig applies it when its upload is known.
        let slow = ClientSettings {
            upload_bps: Some(150_000),
            ..ClientSettings::default()
        };
        let c = client_node_config(id(), &p, &slow);
        let piece = id().geometry.piece_length;
        assert_eq!(
            c.choker.slots,
            slots_for_uplink(p.unchoke_slots, 150_000, piece)
        );
        assert!(c.choker.slots < p.unchoke_slots, "{}", c.choker.slots);
        let unknown = client_node_config(id(), &p, &ClientSettings::default());
        assert_eq!(unknown.choker.slots, p.unchoke_slots);
    }

    #[test]
    fn rates_parse_like_scenarios() {
        assert_eq!(parse_rate_bps("10 Gbit/s"), Ok(1_250_000_000));
        assert_eq!(parse_rate_bps("100Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_rate_bps("1 MiB/s"), Ok(1 << 20));
        assert!(parse_rate_bps("fast").is_err());
        assert!(parse_rate_bps("0 Mbit/s").is_err());
        assert!(parse_rate_bps("10 Gbit").is_err());
    }
}
