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
