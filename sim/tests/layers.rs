//! Images as layers: a fleet holding the base layer fetches only the rest.

use std::path::Path;

use swarmhub_sim::run_scenario;
use swarmhub_sim::scenario::Scenario;

fn text(local: &str) -> String {
    format!(
        r#"
name = "layers"
[image]
size = "64 MiB"
[[image.layers]]
name = "base"
size = "56 MiB"
[[image.layers]]
name = "app"
size = "8 MiB"
[hub]
upload = "200 Mbit/s"
[[group]]
name = "fleet"
count = 10
upload = "100 Mbit/s"
download = "100 Mbit/s"
{local}
"#
    )
}

#[test]
fn a_fleet_holding_the_base_layer_fetches_only_the_new_one() {
    let run = |t: &str| {
        let s = Scenario::parse(t, Path::new("layers.toml")).expect("scenario");
        let (_, summary) = run_scenario(s, "h", 1, false, "test", |_, _, _| {});
        assert_eq!(summary.completed, summary.peers, "{summary:?}");
        summary
    };
    let cold = run(&text(""));
    let warm = run(&text(r#"local_layers = ["base"]"#));
    // 8 of 64 MiB are new: about 1/8 of an image each (plus the piece that
    // straddles the two layers), against about one image each when cold.
    assert!(cold.received_copies_mean > 0.95, "{cold:?}");
    assert!(
        warm.received_copies_mean < 0.15,
        "received {} images each",
        warm.received_copies_mean
    );
    let (c, w) = (
        cold.completion_s.max.expect("cold"),
        warm.completion_s.max.expect("warm"),
    );
    assert!(w < c / 3.0, "warm {w} s vs cold {c} s");
    assert!(warm.hub_bytes_up < cold.hub_bytes_up / 4, "{warm:?}");
}

#[test]
fn layers_are_checked_against_the_image_and_the_groups() {
    let parse = |t: &str| Scenario::parse(t, Path::new("layers.toml"));
    let e = parse(&text("").replace("\"8 MiB\"", "\"9 MiB\"")).expect_err("sum");
    assert!(e.to_string().contains("add up to"), "{e}");
    let e = parse(&text(r#"local_layers = ["lib"]"#)).expect_err("unknown");
    assert!(e.to_string().contains("unknown layer \"lib\""), "{e}");
    let e = parse(&text(r#"local_layers = ["base", "app"]"#)).expect_err("all");
    assert!(e.to_string().contains("nothing to pull"), "{e}");
    let e = parse(&text("").replace("name = \"app\"", "name = \"base\"")).expect_err("dup");
    assert!(e.to_string().contains("used twice"), "{e}");
}
