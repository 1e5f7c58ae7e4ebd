use super::*;

const MINIMAL: &str = r#"
name = "t"
[image]
size = "64 MiB"
[hub]
upload = "1 Gbit/s"
[[group]]
name = "p"
count = 10
upload = "100 Mbit/s"
download = "100 Mbit/s"
"#;

#[test]
fn minimal_scenario_gets_defaults() {
    let s = Scenario::parse(MINIMAL, Path::new("t.toml")).unwrap();
    assert_eq!(s.peer_count(), 10);
    assert_eq!(s.arrival, Arrival::Flash);
    assert_eq!(s.departure, Departure::Forever);
    assert!(s.protocol.p2p);
    assert_eq!(s.piece_size(), 256 * 1024);
    assert_eq!(s.block_size(), 16 * 1024);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = MINIMAL.replace("[hub]\n", "[hub]\nuplaod = \"1 Gbit/s\"\n");
    let err = Scenario::parse(&text, Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("uplaod"), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn bad_unit_says_what_is_allowed() {
    let text = MINIMAL.replace("upload = \"1 Gbit/s\"", "upload = \"1 Gbit\"");
    let err = Scenario::parse(&text, Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Mbit/s"), "{err}");
}

#[test]
fn unknown_site_is_rejected() {
    let text = format!("{MINIMAL}\n[[network.site]]\nname = \"a\"\n")
        .replace("count = 10\n", "count = 10\nsite = \"b\"\n");
    let err = Scenario::parse(&text, Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown site"), "{err}");
}

#[test]
fn payload_efficiency_out_of_range_is_rejected() {
    for bad in ["0", "1.5", "-0.2"] {
        let text = format!("{MINIMAL}\n[network]\npayload_efficiency = {bad}\n");
        let err = Scenario::parse(&text, Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("network.payload_efficiency"), "{err}");
        assert!(err.contains("at most 1"), "{err}");
    }
    let ok = format!("{MINIMAL}\n[network]\npayload_efficiency = 0.956\n");
    let s = Scenario::parse(&ok, Path::new("ok.toml")).unwrap();
    assert_eq!(s.network.payload_efficiency, 0.956);
}

#[test]
fn shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 8, "expected the 8 shipped scenarios, found {n}");
}

#[test]
fn invalid_values_name_their_line() {
    let text = format!(
        "{MINIMAL}\n[[group]]\nname = \"q\"\ncount = 0\nupload = \"1 Mbit/s\"\ndownload = \"1 Mbit/s\"\n"
    );
    let line = text.lines().position(|l| l == "count = 0").unwrap() + 1;
    let err = Scenario::parse(&text, Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("bad.toml, line {line}: `group[1].count`: must be at least 1 (leave the group out for none)")
    );
}

#[test]
fn a_huge_line_is_not_echoed_whole() {
    let text = format!("name = \"{}\" junk", "x".repeat(10 << 20));
    let err = Scenario::parse(&text, Path::new("big.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.len() < 1000, "{} bytes of error", err.len());
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn read_errors_say_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.toml");
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let err = anyhow::Error::from(Scenario::load(&path).unwrap_err());
    let msg = format!("{err:#}");
    assert!(msg.contains("not UTF-8 text"), "{msg}");
    assert_eq!(msg.matches("UTF-8").count(), 1, "{msg}");
}

#[test]
fn sweep_errors_name_lines_of_the_users_file() {
    let base = format!("# a comment first\n\n{MINIMAL}");
    let count_line = base.lines().position(|l| l == "count = 10").unwrap() + 1;
    let upload_line = base
        .lines()
        .position(|l| l == "upload = \"1 Gbit/s\"")
        .unwrap()
        + 1;
    let grid = |key: &str, v: &str| {
        let axis: crate::sweep::Axis = format!("{key}={v}").parse().unwrap();
        match crate::sweep::grid(&base, Path::new("user.toml"), &[axis]) {
            Ok(_) => panic!("--vary {key}={v} was accepted"),
            Err(e) => e.to_string(),
        }
    };
    let err = grid("group.0.count", "0");
    assert!(
        err.starts_with(&format!("user.toml, line {count_line}: `group[0].count`")),
        "{err}"
    );
    assert!(err.contains("--vary group.0.count=0"), "{err}");
    let err = grid("hub.upload", "fast");
    assert!(
        err.contains(&format!("line {upload_line}, `hub.upload`")),
        "{err}"
    );
    assert!(err.contains("--vary hub.upload=fast"), "{err}");
}

#[test]
fn cross_site_knobs_reach_every_peers_config() {
    let text = format!("{MINIMAL}[protocol]\ncross_site_peers = 3\ncross_site_slots = 2\n");
    let s = Scenario::parse(&text, Path::new("t.toml")).unwrap();
    let set = crate::Sim::new(s, 1, false).node_config(1);
    assert_eq!(set.cross_site_peers, 3);
    assert_eq!(set.choker.cross_site_slots, 2);
    // Unset: the core's defaults, which the real client takes too.
    let s = Scenario::parse(MINIMAL, Path::new("t.toml")).unwrap();
    let default = crate::Sim::new(s, 1, false).node_config(1);
    let core = swarmhub_core::settings::ProtocolSettings::default();
    assert_eq!(default.cross_site_peers, core.cross_site_peers);
    assert_eq!(default.choker.cross_site_slots, core.cross_site_slots);
    assert_ne!(default.cross_site_peers, 3);
}
