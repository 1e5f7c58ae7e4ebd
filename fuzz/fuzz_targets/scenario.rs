//! Simulator scenario files: any text parses or fails with a `ScenarioError`
//! (never a panic), and an accepted scenario yields its settings.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use swarmhub_sim::scenario::Scenario;

fuzz_target!(|text: &str| {
    match Scenario::parse(text, Path::new("fuzz.toml")) {
        Ok(s) => {
            let _ = (s.peer_count(), s.piece_size(), s.block_size());
            let _ = (s.protocol_settings(), s.hub_settings());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
