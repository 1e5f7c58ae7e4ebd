//! What a scenario asks of the lab: hosts with their rates and join times, and
//! how peers leave. The lab reads the simulator's scenario files
//! (`swarmhub_sim::scenario`) and accepts the subset that real processes on
//! shaped links can reproduce; anything else is refused with the key and why.

use std::net::Ipv4Addr;

use swarmhub_sim::scenario::{Arrival, Departure, Protocol, Scenario};

/// Most clients the lab creates (one /24 worth of addresses per 250; the
/// limit is the machine, about 48 on 2 cores).
pub const MAX_CLIENTS: usize = 250;
/// Above this many clients a 2-core machine is likely CPU bound.
pub const COMFORTABLE_CLIENTS: usize = 48;

/// One host of the lab: the hub (id 0) or a client (id 1..=N, as in `peers.csv`).
#[derive(Clone, Debug, PartialEq)]
pub struct HostPlan {
    /// 0 for the hub, then the simulator's peer ids.
    pub id: usize,
    /// Scenario group (`hub` for the hub).
    pub group: String,
    /// Address on the lab bridge.
    pub addr: Ipv4Addr,
    /// Upload capacity, bits per second (shaped on the host's own veth end).
    pub upload_bps: f64,
    /// Download capacity, bits per second (shaped on the bridge-side veth end).
    pub download_bps: f64,
    /// Seconds after the start at which it joins (0 for the hub).
    pub join_s: f64,
}

/// When a client stops after completing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Leave {
    /// At completion.
    AtCompletion,
    /// This many seconds after completion.
    After(f64),
    /// At the end of the run (keeps seeding).
    AtEnd,
}

/// The lab's reading of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct LabPlan {
    /// The hub.
    pub hub: HostPlan,
    /// The clients, in peer id order.
    pub clients: Vec<HostPlan>,
    /// Departure rule.
    pub leave: Leave,
    /// Image size, bytes.
    pub image_bytes: u64,
    /// Piece size, bytes.
    pub piece_bytes: u32,
    /// Peer-to-peer on (off: the hub serves everyone over HTTP).
    pub p2p: bool,
    /// Tracker announce interval, seconds.
    pub announce_interval_s: u64,
    /// The run stops at this time even if clients are incomplete.
    pub duration_s: f64,
}

impl LabPlan {
    /// Every host, hub first.
    pub fn hosts(&self) -> impl Iterator<Item = &HostPlan> {
        std::iter::once(&self.hub).chain(&self.clients)
    }
}

/// A scenario feature the lab cannot reproduce.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{key}`: the lab cannot do this: {why} (run it in the simulator only)")]
pub struct PlanError {
    /// Dotted scenario key.
    pub key: String,
    /// What is unsupported.
    pub why: String,
}

fn refuse(key: &str, why: impl Into<String>) -> PlanError {
    PlanError {
        key: key.to_string(),
        why: why.into(),
    }
}

/// The hub's address.
pub const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Address of client `id` (1-based) on the lab's 10.77.0.0/16.
pub fn client_addr(id: usize) -> Ipv4Addr {
    let k = id.saturating_sub(1);
    Ipv4Addr::new(10, 77, 1 + (k / 250) as u8, 1 + (k % 250) as u8)
}

/// Check a scenario against what the lab can do and lay out its hosts.
pub fn plan(s: &Scenario) -> Result<LabPlan, PlanError> {
    check_supported(s)?;
    let interval_s = match &s.arrival {
        Arrival::Flash => 0.0,
        Arrival::Staggered { interval } => interval.secs(),
        Arrival::Poisson { .. } => {
            return Err(refuse(
                "arrival.kind",
                "poisson arrivals are not supported; use flash or staggered",
            ))
        }
    };
    let mut clients = Vec::with_capacity(s.peer_count());
    for g in &s.groups {
        for _ in 0..g.count {
            let id = clients.len() + 1;
            clients.push(HostPlan {
                id,
                group: g.name.clone(),
                addr: client_addr(id),
                upload_bps: g.upload.0,
                download_bps: g.download.0,
                join_s: (id - 1) as f64 * interval_s,
            });
        }
    }
    let hub = HostPlan {
        id: 0,
        group: "hub".into(),
        addr: HUB_ADDR,
        upload_bps: s.hub.upload.0,
        download_bps: s.hub.download.unwrap_or(s.hub.upload).0,
        join_s: 0.0,
    };
    let leave = match &s.departure {
        Departure::Leave => Leave::AtCompletion,
        Departure::SeedFor { duration } => Leave::After(duration.secs()),
        Departure::Forever => Leave::AtEnd,
    };
    Ok(LabPlan {
        hub,
        clients,
        leave,
        image_bytes: s.image.size.0,
        piece_bytes: s.piece_size(),
        p2p: s.protocol.p2p,
        announce_interval_s: s.protocol.announce_interval.secs().round().max(1.0) as u64,
        duration_s: s.duration.secs(),
    })
}

fn check_supported(s: &Scenario) -> Result<(), PlanError> {
    if s.peer_count() > MAX_CLIENTS {
        return Err(refuse(
            "group.count",
            format!(
                "{} clients; the lab makes at most {MAX_CLIENTS}",
                s.peer_count()
            ),
        ));
    }
    let default_piece = swarmhub_core::metainfo::piece_length_for(s.image.size.0);
    if s.piece_size() != default_piece {
        return Err(refuse(
            "image.piece_size",
            format!(
                "the hub chooses the piece size from the image size ({default_piece} bytes here); \
                 remove the key"
            ),
        ));
    }
    if s.block_size() != 16 * 1024 {
        return Err(refuse(
            "image.block_size",
            "real clients request 16 KiB blocks; remove the key",
        ));
    }
    if s.hub.upload_slots.is_some() || s.hub.connection_limit != 1000 || !s.hub.super_seed {
        return Err(refuse(
            "hub",
            "upload_slots, connection_limit and super_seed are fixed in the real hub",
        ));
    }
    if s.hub.site.is_some() || !s.network.sites.is_empty() || !s.network.links.is_empty() {
        return Err(refuse(
            "network",
            "sites and inter-site links need a routed topology; the lab has one bridge",
        ));
    }
    if let Some(g) = s.groups.iter().find(|g| g.corrupt || g.site.is_some()) {
        return Err(refuse(
            "group",
            format!(
                "group {:?}: corrupt peers and sites are simulator-only",
                g.name
            ),
        ));
    }
    if s.churn.is_some() {
        return Err(refuse("churn", "crash and restart is simulator-only"));
    }
    if s.faults.hub_outage.is_some() {
        return Err(refuse(
            "faults.hub_outage",
            "hub outages are simulator-only",
        ));
    }
    let d = Protocol::default();
    let p = &s.protocol;
    let same = p.unchoke_slots == d.unchoke_slots
        && p.rechoke_interval == d.rechoke_interval
        && p.optimistic_interval == d.optimistic_interval
        && p.pipeline_depth == d.pipeline_depth
        && p.picker == d.picker
        && p.max_peers == d.max_peers
        && p.numwant == d.numwant
        && p.cross_site_peers == d.cross_site_peers
        && p.cross_site_slots == d.cross_site_slots;
    if !same {
        return Err(refuse(
            "protocol",
            "only p2p and announce_interval can be set for real clients; the other knobs \
             are the core's defaults",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Scenario {
        Scenario::parse(text, Path::new("t.toml")).expect("scenario")
    }

    const BASE: &str = r#"
name = "t"
[image]
size = "16 MiB"
[hub]
upload = "100 Mbit/s"
[[group]]
name = "a"
count = 2
upload = "20 Mbit/s"
download = "30 Mbit/s"
[[group]]
name = "b"
count = 1
upload = "5 Mbit/s"
download = "10 Mbit/s"
"#;

    #[test]
    fn hosts_follow_the_simulator_ids_and_rates() {
        let p = plan(&parse(BASE)).expect("plan");
        assert_eq!(p.clients.len(), 3);
        assert_eq!(p.hub.addr, HUB_ADDR);
        assert_eq!(p.hub.upload_bps, 100e6);
        assert_eq!(p.hub.download_bps, 100e6, "hub download defaults to upload");
        let c3 = &p.clients[2];
        assert_eq!((c3.id, c3.group.as_str()), (3, "b"));
        assert_eq!((c3.upload_bps, c3.download_bps), (5e6, 10e6));
        assert_eq!(c3.addr, Ipv4Addr::new(10, 77, 1, 3));
        assert!(p.clients.iter().all(|c| c.join_s == 0.0));
        assert_eq!(p.leave, Leave::AtEnd);
        assert_eq!(p.hosts().count(), 4);
    }

    #[test]
    fn staggered_arrivals_and_departures_map() {
        let text = format!(
            "{BASE}\n[arrival]\nkind = \"staggered\"\ninterval = \"2s\"\n\
             [departure]\nkind = \"seed-for\"\nduration = \"5s\"\n"
        );
        let p = plan(&parse(&text)).expect("plan");
        let joins: Vec<f64> = p.clients.iter().map(|c| c.join_s).collect();
        assert_eq!(joins, [0.0, 2.0, 4.0]);
        assert_eq!(p.leave, Leave::After(5.0));
    }

    #[test]
    fn addresses_stay_distinct_past_250() {
        assert_eq!(client_addr(250), Ipv4Addr::new(10, 77, 1, 250));
        assert_eq!(client_addr(251), Ipv4Addr::new(10, 77, 2, 1));
    }

    #[test]
    fn unsupported_features_are_refused_by_key() {
        let cases = [
            (
                "[churn]\nfraction = 0.1\nstart = \"1s\"\nwindow = \"1s\"\ndowntime = \"1s\"\n",
                "churn",
            ),
            (
                "[faults]\nhub_outage = { start = \"1s\", end = \"2s\" }\n",
                "faults.hub_outage",
            ),
            ("[protocol]\nunchoke_slots = 8\n", "protocol"),
            ("[protocol]\ncross_site_peers = 2\n", "protocol"),
            (
                "[arrival]\nkind = \"poisson\"\nrate = 2.0\n",
                "arrival.kind",
            ),
        ];
        for (extra, key) in cases {
            let err = plan(&parse(&format!("{BASE}\n{extra}"))).expect_err(key);
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().contains("simulator only"), "{err}");
        }
        let piece = BASE.replace(
            "size = \"16 MiB\"",
            "size = \"16 MiB\"\npiece_size = \"4 MiB\"",
        );
        assert_eq!(
            plan(&parse(&piece)).expect_err("piece").key,
            "image.piece_size"
        );
        let p2p_off = format!("{BASE}\n[protocol]\np2p = false\nannounce_interval = \"7s\"\n");
        let p = plan(&parse(&p2p_off)).expect("p2p off and announce interval are fine");
        assert!(!p.p2p);
        assert_eq!(p.announce_interval_s, 7);
    }
}
