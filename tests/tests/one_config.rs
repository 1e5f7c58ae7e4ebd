//! The hub that ships is the hub that was simulated: for the same settings,
//! the simulator and the node build equal `NodeConfig`s, hub and client.

use std::path::Path;

use swarmhub_core::settings::NodeIdentity;
use swarmhub_node::hub::admin;
use swarmhub_node::paths::HubPaths;
use swarmhub_node::peer::driver::swarm_node_config;
use swarmhub_sim::{Scenario, Sim};

const SCENARIO: &str = r#"
name = "one-config"
[image]
size = "64 MiB"
[hub]
upload = "10 Gbit/s"
connection_limit = 3000
upload_slots = 40
[[group]]
name = "peers"
count = 20
upload = "100 Mbit/s"
download = "100 Mbit/s"
"#;

fn identity(c: &swarmhub_core::NodeConfig) -> NodeIdentity {
    NodeIdentity {
        info_hash: c.info_hash,
        peer_id: c.peer_id,
        geometry: c.geometry,
        listen_port: c.listen_port,
    }
}

#[test]
fn simulated_hub_and_real_hub_get_the_same_node_config() {
    let scenario = Scenario::parse(SCENARIO, Path::new("one-config.toml")).expect("scenario");
    let sim = Sim::new(scenario, 1, false);
    let simulated = sim.node_config(0);

    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = HubPaths::new(tmp.path().join("hub"));
    let set = [
        "upload=10 Gbit/s".to_owned(),
        "download=10 Gbit/s".to_owned(),
        "connection_limit=3000".to_owned(),
        "upload_slots=40".to_owned(),
    ];
    let change = |set: &[String]| admin::ConfigChange {
        set: set.to_vec(),
        ..admin::ConfigChange::default()
    };
    let settings = admin::config(&paths, &change(&set)).expect("hub config");
    let real = swarm_node_config(identity(&simulated), true, Some(&settings.seeder), 0, None);

    assert_eq!(real, simulated);
    assert_eq!(real.max_peers, 3000);
    assert_eq!(real.choker.slots, 40);
    assert_eq!(real.upload_capacity_bps, Some(1_250_000_000));
    assert!(real.super_seed);

    // A different setting gives a different config: the comparison can fail.
    let other =
        admin::config(&paths, &change(&["connection_limit=50".to_owned()])).expect("hub config");
    let differs = swarm_node_config(identity(&simulated), true, Some(&other.seeder), 0, None);
    assert_ne!(differs, simulated);
}

#[test]
fn simulated_client_and_real_client_get_the_same_node_config() {
    let scenario = Scenario::parse(SCENARIO, Path::new("one-config.toml")).expect("scenario");
    let sim = Sim::new(scenario, 1, false);
    let mut simulated = sim.node_config(1);
    // The simulator pins its hub by address; a real client learns the hub
    // seeder's address from the tracker at run time.
    assert_eq!(simulated.pinned_peers.len(), 1);
    simulated.pinned_peers.clear();
    // A real client with its upload limited to its group's 100 Mbit/s.
    let real = swarm_node_config(identity(&simulated), true, None, 12_500_000, None);
    assert_eq!(real, simulated);
    assert!(!real.super_seed);
}

#[test]
fn a_client_connection_cap_is_the_scenarios_max_peers() {
    // `pull --max-peers 12` (or `config --max-peers 12`) on the real client;
    // `[protocol] max_peers = 12` in the scenario (what `swarmhub-lab fleet
    // --client-max-peers 12` writes for the simulator).
    let text = format!("{SCENARIO}[protocol]\nmax_peers = 12\n");
    let scenario = Scenario::parse(&text, Path::new("one-config.toml")).expect("scenario");
    let sim = Sim::new(scenario, 1, false);
    let mut simulated = sim.node_config(1);
    simulated.pinned_peers.clear();
    let real = swarm_node_config(identity(&simulated), true, None, 12_500_000, Some(12));
    assert_eq!(real.max_peers, 12);
    assert_eq!(real, simulated);
    let default = swarm_node_config(identity(&simulated), true, None, 12_500_000, None);
    assert_ne!(default, simulated, "without the cap the client keeps 50");
}
