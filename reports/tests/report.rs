//! Load and render the committed fixtures (made once with
//! `swarmhub-sim run tests/fixtures/small.toml --out run` and
//! `swarmhub-sim sweep tests/fixtures/small.toml --vary group.0.count=4,8,16
//! --vary protocol.p2p=true,false --out sweep`), check that every chart
//! parses and is not blank, and that bad input fails cleanly.

use std::path::{Path, PathBuf};

use swarmhub_reports::{write_report, write_report_with_points, ReportError};

mod common;
use common::{check_png, check_svg};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copy a fixture folder (recursively) into a fresh temporary folder.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy(&fixture(name), &dir);
    (tmp, dir)
}

#[test]
fn run_report_has_every_chart_and_table() {
    let (_tmp, dir) = copy_fixture("run");
    let report = write_report(&dir).unwrap();
    assert_eq!(report.charts.len(), 8);
    for (stem, title) in [
        ("completion-cdf", "Completion time CDF"),
        ("throughput", "Throughput by source"),
        ("population", "Swarm population"),
        ("peer-bytes", "Who carried the swarm"),
    ] {
        check_png(&dir.join(format!("charts/{stem}.png")));
        check_svg(&dir.join(format!("charts/{stem}.svg")), title);
    }
    let html = std::fs::read_to_string(&report.html).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    for needle in [
        "analytic bound 10.74 s",
        "p99 11.21 s",
        "a0bced3e7d65b76e48d35bf4f68035f35f1cd76e75fe25c6dd8485e7024fade2",
        "swarmhub-sim run small.toml --seed 7 --out run1",
        "<th>ratio max / bound</th><td class=\"n\">1.044</td>",
        "Scenario parameters (summary.json)",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    // The temporary folder is gone.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".report"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn sweep_report_has_lines_for_p2p_and_hub_only() {
    let (_tmp, dir) = copy_fixture("sweep");
    let report = write_report(&dir).unwrap();
    assert_eq!(report.charts.len(), 4);
    check_png(&dir.join("charts/sweep-completion.png"));
    check_png(&dir.join("charts/sweep-hub-copies.png"));
    check_svg(
        &dir.join("charts/sweep-completion.svg"),
        "Completion time across the sweep",
    );
    check_svg(&dir.join("charts/sweep-hub-copies.svg"), "hub-only");
    let svg = std::fs::read_to_string(dir.join("charts/sweep-completion.svg")).unwrap();
    assert!(svg.contains("P2P p99") && svg.contains("hub-only max"));
    let html = std::fs::read_to_string(&report.html).unwrap();
    assert!(html.contains("<a href=\"point-005/\">point-005</a>"));
    assert!(html.contains("Scenario parameters (first point"));
    assert!(html.contains("<th>group.1.name</th><td>slow</td>"));
}

fn error_of(dir: &Path) -> String {
    match write_report(dir) {
        Ok(_) => panic!("{} should not give a report", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_file_is_named() {
    let (_tmp, dir) = copy_fixture("run");
    std::fs::remove_file(dir.join("peers.csv")).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("peers.csv") && e.contains("missing"), "{e}");
}

#[test]
fn bad_header_is_named() {
    let (_tmp, dir) = copy_fixture("run");
    let path = dir.join("timeline.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("hub_egress_bps", "hub_bps")).unwrap();
    let e = error_of(&dir);
    assert!(
        e.contains("timeline.csv") && e.contains("bad header"),
        "{e}"
    );
}

#[test]
fn timeline_link_columns_are_accepted_and_other_extras_refused() {
    // Scenarios with inter-site links add one link_FROM_TO_bps column per
    // direction; the report must still draw them.
    let (_tmp, dir) = copy_fixture("run");
    let path = dir.join("timeline.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let with_links: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},link_a_b_bps,link_b_a_bps")
            } else {
                format!("{l},1000,0")
            }
        })
        .collect();
    std::fs::write(&path, with_links.join("\n")).unwrap();
    write_report(&dir).expect("a timeline with link columns gives a report");
    let other = text.replacen("peer_egress_bps", "peer_egress_bps,surprise", 1);
    std::fs::write(&path, other).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("bad header") && e.contains("surprise"), "{e}");
}

#[test]
fn bad_number_names_file_and_line() {
    let (_tmp, dir) = copy_fixture("run");
    let path = dir.join("peers.csv");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines[2] = lines[2].replacen(",0.000000,", ",soon,", 1);
    std::fs::write(&path, lines.join("\n")).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("peers.csv: line 3: column 4"), "{e}");
}

#[test]
fn bad_json_is_named() {
    let (_tmp, dir) = copy_fixture("run");
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"seed\": 7", "\"seed\": \"seven\"")).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("summary.json: line 4"), "{e}");
}

#[test]
fn bad_sweep_row_is_named() {
    let (_tmp, dir) = copy_fixture("sweep");
    let path = dir.join("sweep.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen(",true,8,", ",maybe,8,", 1)).unwrap();
    let e = error_of(&dir);
    assert!(e.contains("sweep.csv: line 2: column `p2p`"), "{e}");
}

#[test]
fn failed_report_leaves_good_one_untouched() {
    let (_tmp, dir) = copy_fixture("run");
    write_report(&dir).unwrap();
    let html_before = std::fs::read(dir.join("report.html")).unwrap();
    let png_before = std::fs::read(dir.join("charts/throughput.png")).unwrap();
    // A rerun after the inputs were damaged (a timeline without rows) fails...
    std::fs::write(
        dir.join("timeline.csv"),
        "t_s,leechers,seeds,completed,throughput_bps,hub_egress_bps,peer_egress_bps\n",
    )
    .unwrap();
    let err = write_report(&dir).unwrap_err();
    assert!(matches!(err, ReportError::Load(_)), "{err}");
    assert!(err.to_string().contains("timeline.csv"), "{err}");
    // ...and the earlier report and charts are still there, byte for byte.
    assert_eq!(std::fs::read(dir.join("report.html")).unwrap(), html_before);
    assert_eq!(
        std::fs::read(dir.join("charts/throughput.png")).unwrap(),
        png_before
    );
}

#[test]
fn folder_without_outputs_names_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let e = error_of(tmp.path());
    assert!(e.contains("summary.json") && e.contains("missing"), "{e}");
}

#[test]
fn rerun_replaces_report() {
    let (_tmp, dir) = copy_fixture("run");
    write_report(&dir).unwrap();
    std::fs::write(dir.join("charts/stale.txt"), "old").unwrap();
    write_report(&dir).unwrap();
    assert!(!dir.join("charts/stale.txt").exists());
    assert!(dir.join("charts/completion-cdf.png").exists());
}

#[test]
fn sweep_with_points_writes_and_links_every_point_report() {
    let (_tmp, dir) = copy_fixture("sweep");
    let reports = write_report_with_points(&dir).unwrap();
    assert_eq!(reports.points.len(), 6);
    assert_eq!(reports.folder.html, dir.join("report.html"));
    let html = std::fs::read_to_string(&reports.folder.html).unwrap();
    for i in 0..6 {
        let point = dir.join(format!("point-{i:03}"));
        assert_eq!(reports.points[i].html, point.join("report.html"));
        let page = std::fs::read_to_string(point.join("report.html")).unwrap();
        assert!(page.contains("swarmhub run report"), "point-{i:03}");
        check_png(&point.join("charts/peer-bytes.png"));
        let link = format!("<a href=\"point-{i:03}/report.html\">point-{i:03}</a>");
        assert!(html.contains(&link), "sweep report lacks {link}");
    }
    // The point reports show each point's own scenario.toml.
    let page = std::fs::read_to_string(dir.join("point-005/report.html")).unwrap();
    assert!(page.contains("Scenario parameters (scenario.toml)"));
}

#[test]
fn sweep_point_outside_the_folder_is_refused() {
    let (_tmp, dir) = copy_fixture("sweep");
    let path = dir.join("sweep.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("point-001", "../point-001", 1)).unwrap();
    let e = match write_report_with_points(&dir) {
        Ok(_) => panic!("a point outside the sweep folder was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("sweep.csv: line 3: column `point`") && e.contains("../point-001"),
        "{e}"
    );
    assert!(!dir.join("point-000/report.html").exists());
}

/// Leftovers of crashed writers (dead PID, or this PID but not in use) are
/// removed; a live process's folder, look-alike names and files are not.
#[cfg(target_os = "linux")]
#[test]
fn stale_temporary_folders_are_removed_and_nothing_else() {
    let (_tmp, dir) = copy_fixture("run");
    // PIDs on Linux stay below 2^22, so this one never runs.
    let dead = 4_000_000_000u32;
    let own = std::process::id();
    let live = std::os::unix::process::parent_id();
    let stale = [
        format!(".report-tmp-{dead}-0"),
        format!(".report-old-{dead}-12"),
        format!(".report-tmp-{dead}"),
        format!(".report-tmp-{own}-999999"),
    ];
    let kept_dirs = [
        format!(".report-tmp-{live}-0"),
        format!(".report-old-{live}"),
        ".report-tmp-abc".to_string(),
        format!(".report-tmp-{dead}-x"),
        format!("report-tmp-{dead}"),
        ".report-keep".to_string(),
    ];
    for name in stale.iter().chain(&kept_dirs) {
        std::fs::create_dir_all(dir.join(name).join("charts")).unwrap();
        std::fs::write(dir.join(name).join("charts/x.png"), "x").unwrap();
    }
    let kept_file = format!(".report-tmp-{dead}-1");
    std::fs::write(dir.join(&kept_file), "not a folder").unwrap();

    write_report(&dir).unwrap();

    for name in &stale {
        assert!(!dir.join(name).exists(), "{name} should be removed");
    }
    for name in &kept_dirs {
        assert!(
            dir.join(name).join("charts/x.png").exists(),
            "{name} was touched"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join(&kept_file)).unwrap(),
        "not a folder"
    );
    check_png(&dir.join("charts/throughput.png"));
}

/// Texts of an SVG's `<text>` elements.
fn svg_texts(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

#[test]
fn peer_count_sweep_to_ten_thousand_ticks_at_one_two_five() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from(
        "group.0.count,protocol.p2p,point,peers,p2p,completed,p50_s,p90_s,p99_s,max_s,\
         bound_s,ratio_to_bound,hub_bytes_up,hub_copies,peer_bytes_up,events,wall_s\n",
    );
    for (i, n) in [10u64, 100, 1000, 10_000].into_iter().enumerate() {
        let copies = 1.5 + i as f64 * 0.2;
        csv.push_str(&format!(
            "{n},true,point-{i:03},{n},true,{n},20.0,24.0,25.0,26.0,21.0,1.24,1,{copies},1,1,0.1\n"
        ));
    }
    std::fs::write(dir.join("sweep.csv"), csv).unwrap();
    write_report(&dir).unwrap();
    let texts = svg_texts(&dir.join("charts/sweep-hub-copies.svg"));
    let x_ticks = [
        "10", "20", "50", "100", "200", "500", "1k", "2k", "5k", "10k",
    ];
    for t in x_ticks {
        assert!(texts.iter().any(|s| s == t), "no tick {t:?} in {texts:?}");
    }
    // Neither plotters' own labels nor 10^0.2 steps (16, 25, 40, 63, ...).
    for t in ["1000", "10000", "16", "25", "40", "63", "1000.0"] {
        assert!(!texts.iter().any(|s| s == t), "tick {t:?} in {texts:?}");
    }
    check_png(&dir.join("charts/sweep-hub-copies.png"));
}
