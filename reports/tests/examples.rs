//! The committed example reports (`reports/examples/NAME/`, made by the
//! release `swarmhub-sim run scenarios/NAME.toml --out reports/examples/NAME`
//! then `swarmhub-sim report reports/examples/NAME`): every chart parses, is
//! not blank and stays small, and re-rendering from the committed CSV/JSON
//! works.

use std::path::{Path, PathBuf};

mod common;
use common::{check_png, check_svg};

const EXAMPLES: [&str; 3] = ["flash-crowd", "heterogeneous", "multi-site"];

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn committed_examples_are_small_and_not_blank() {
    for name in EXAMPLES {
        let dir = example(name);
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert_eq!(html.matches("<svg").count(), 4, "{name}");
        assert!(html.contains(&format!("scenarios/{name}.toml")), "{name}");
        for stem in ["completion-cdf", "throughput", "population", "peer-bytes"] {
            let png = dir.join(format!("charts/{stem}.png"));
            let size = std::fs::metadata(&png).unwrap().len();
            assert!(size < 200 * 1024, "{}: {size} bytes", png.display());
            check_png(&png);
            check_svg(&dir.join(format!("charts/{stem}.svg")), name);
        }
    }
}

#[test]
fn committed_sweep_example_has_both_lines() {
    let dir = example("peer-count-sweep");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2);
    for stem in ["sweep-completion", "sweep-hub-copies"] {
        let png = dir.join(format!("charts/{stem}.png"));
        let size = std::fs::metadata(&png).unwrap().len();
        assert!(size < 200 * 1024, "{}: {size} bytes", png.display());
        check_png(&png);
        check_svg(&dir.join(format!("charts/{stem}.svg")), "hub-only");
    }
    // Peer counts 10..300 and hub copies 1.8..300 are drawn on log axes.
    let svg = std::fs::read_to_string(dir.join("charts/sweep-hub-copies.svg")).unwrap();
    assert!(svg.contains("peers, log scale") && svg.contains("(copies), log scale"));
    // Log ticks at 1-2-5 steps, not at 10^0.2 steps (16, 25, 40, 63).
    for tick in ["10", "20", "50", "100", "200"] {
        assert!(
            svg.contains(&format!("\n{tick}\n</text>")),
            "no tick {tick}"
        );
    }
    assert!(!svg.contains("\n16\n</text>") && !svg.contains("\n63\n</text>"));
}

#[test]
fn example_rerenders_from_its_csv_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let src = example("flash-crowd");
    for f in ["peers.csv", "timeline.csv", "summary.json", "scenario.toml"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    swarmhub_reports::write_report(tmp.path()).unwrap();
    // Charts depend only on the inputs, so the SVGs match the committed ones.
    for stem in ["completion-cdf", "throughput", "population", "peer-bytes"] {
        let svg = format!("charts/{stem}.svg");
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(&svg)).unwrap(),
            std::fs::read_to_string(src.join(&svg)).unwrap(),
            "{svg}"
        );
    }
}
