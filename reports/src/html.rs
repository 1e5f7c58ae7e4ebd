//! The self-contained `report.html`: tables plus every chart as inline SVG.

use std::fmt::Write as _;

use crate::charts::run_label;
use crate::load::{Run, Summary, Sweep};

/// A rendered chart to embed.
pub struct Embedded<'a> {
    /// File stem (`completion-cdf`), for links to the PNG and SVG files.
    pub stem: &'a str,
    /// SVG text.
    pub svg: &'a str,
}

/// Escape text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;max-width:1050px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}code,pre{background:#f6f6f6;padding:2px 4px}\
pre{padding:8px;overflow-x:auto}";

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
}

fn table(out: &mut String, caption: &str, rows: &[(String, String)]) {
    let _ = writeln!(out, "<h2>{}</h2>\n<table>", escape(caption));
    for (k, v) in rows {
        let class = if v.parse::<f64>().is_ok() {
            " class=\"n\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td{class}>{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    out.push_str("</table>\n");
}

fn charts(out: &mut String, charts: &[Embedded<'_>]) {
    out.push_str("<h2>Charts</h2>\n");
    for c in charts {
        // Drop the XML declaration, if any: it is not allowed inside HTML.
        let svg = c.svg.find("<svg").map_or(c.svg, |i| &c.svg[i..]);
        let _ = writeln!(
            out,
            "<figure>\n{svg}\n<figcaption>Files: <a href=\"charts/{0}.png\">{0}.png</a> \
             <a href=\"charts/{0}.svg\">{0}.svg</a></figcaption>\n</figure>",
            c.stem
        );
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

fn bytes(b: u64) -> String {
    let mib = b as f64 / 1024.0 / 1024.0;
    if mib >= 10.0 * 1024.0 {
        format!("{b} ({:.2} GiB)", mib / 1024.0)
    } else {
        format!("{b} ({mib:.1} MiB)")
    }
}

fn summary_rows(s: &Summary) -> Vec<(String, String)> {
    [
        ("peers", s.peers.to_string()),
        ("image", bytes(s.image_bytes)),
        (
            "peer-to-peer",
            if s.p2p { "on" } else { "off (hub only)" }.to_string(),
        ),
        ("completed", s.completed.to_string()),
        ("completion p50 (s)", opt(s.completion_s.p50, 3)),
        ("completion p90 (s)", opt(s.completion_s.p90, 3)),
        ("completion p99 (s)", opt(s.completion_s.p99, 3)),
        ("completion max (s)", opt(s.completion_s.max, 3)),
        ("analytic bound (s)", format!("{:.3}", s.bound_s)),
        ("ratio max / bound", opt(s.ratio_to_bound, 3)),
        ("hub bytes up", bytes(s.hub_bytes_up)),
        (
            "hub copies (hub bytes / image)",
            format!("{:.3}", s.hub_copies),
        ),
        ("peer bytes up", bytes(s.peer_bytes_up)),
        (
            "wasted bytes (duplicates, failed pieces)",
            s.wasted_bytes
                .map_or_else(|| "not measured".to_string(), bytes),
        ),
        ("simulated end (s)", format!("{:.3}", s.sim_end_s)),
        ("events", s.events.to_string()),
        ("wall time (s, varies)", format!("{:.3}", s.wall_s)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(s.links.iter().map(|l| {
        (
            format!("link {} -> {}", l.from, l.to),
            format!("{} ({:.2} image copies)", bytes(l.bytes), l.copies),
        )
    }))
    .collect()
}

/// Flatten a TOML document into `a.b.0.c = value` rows.
fn flatten(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        toml::Value::Array(a) if a.iter().all(|x| x.is_table()) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&key(&i.to_string()), v, out)),
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Scenario parameters: from `scenario.toml` when present, else from the summary.
fn scenario_rows(toml_text: Option<&str>, s: Option<&Summary>) -> Vec<(String, String)> {
    if let Some(doc) = toml_text.and_then(|t| t.parse::<toml::Table>().ok()) {
        let mut rows = Vec::new();
        flatten("", &toml::Value::Table(doc), &mut rows);
        return rows;
    }
    let Some(s) = s else { return Vec::new() };
    [
        ("scenario", s.scenario.clone()),
        ("peers", s.peers.to_string()),
        ("image bytes", bytes(s.image_bytes)),
        ("piece bytes", s.piece_bytes.to_string()),
        ("block bytes", s.block_bytes.to_string()),
        ("p2p", s.p2p.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn reproduce(out: &mut String, s: &Summary) {
    table(
        out,
        "Reproduce",
        &[
            ("seed".into(), s.seed.to_string()),
            ("scenario hash (SHA-256)".into(), s.scenario_hash.clone()),
            ("trace hash".into(), s.trace_hash.clone()),
            ("swarmhub-sim version".into(), s.version.clone()),
        ],
    );
    let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(&s.command));
}

/// A table with a header row.
fn grid(out: &mut String, caption: &str, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "<h2>{}</h2>\n<table>\n<tr>", escape(caption));
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// `b` against `a` in percent, signed.
fn diff_pct(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:+.1}%", (b - a) / a * 100.0),
        _ => "-".into(),
    }
}

/// This run beside the runs of `overlay.txt`: completion and hub load, and
/// how far each other run's p50 and max are from this one's.
fn compared_runs(out: &mut String, run: &Run) {
    let s = &run.summary;
    let row = |label: String, o: &Summary| {
        vec![
            label,
            format!("{}/{}", o.completed, o.peers),
            opt(o.completion_s.p50, 2),
            opt(o.completion_s.max, 2),
            opt(o.ratio_to_bound, 2),
            format!("{:.2}", o.hub_copies),
            diff_pct(s.completion_s.p50, o.completion_s.p50),
            diff_pct(s.completion_s.max, o.completion_s.max),
        ]
    };
    let mut rows = vec![row(format!("{} (this run)", run_label(s)), s)];
    rows.extend(
        run.overlays
            .iter()
            .map(|o| row(o.label.clone(), &o.summary)),
    );
    grid(
        out,
        "Compared runs",
        &[
            "run",
            "completed",
            "p50 (s)",
            "max (s)",
            "max / bound",
            "hub copies",
            "p50 vs this run",
            "max vs this run",
        ],
        &rows,
    );
}

/// The report of a run.
pub fn run_report(run: &Run, embedded: &[Embedded<'_>]) -> String {
    let s = &run.summary;
    let mut out = String::new();
    head(&mut out, &format!("swarmhub run report: {}", s.scenario));
    let _ = writeln!(
        out,
        "<p>{} of {} peers completed; slowest {} s against an analytic bound of {:.2} s \
         (ratio {}); the hub sent {:.2} image copies.</p>",
        s.completed,
        s.peers,
        opt(s.completion_s.max, 2),
        s.bound_s,
        opt(s.ratio_to_bound, 2),
        s.hub_copies
    );
    table(&mut out, "Summary", &summary_rows(s));
    if !run.overlays.is_empty() {
        compared_runs(&mut out, run);
    }
    charts(&mut out, embedded);
    let source = if run.scenario_toml.is_some() {
        "Scenario parameters (scenario.toml)"
    } else {
        "Scenario parameters (summary.json)"
    };
    table(
        &mut out,
        source,
        &scenario_rows(run.scenario_toml.as_deref(), Some(s)),
    );
    reproduce(&mut out, s);
    out.push_str("</body>\n</html>\n");
    out
}

/// The report of a sweep.
pub fn sweep_report(sweep: &Sweep, embedded: &[Embedded<'_>]) -> String {
    let mut out = String::new();
    head(&mut out, "swarmhub sweep report");
    let _ = writeln!(
        out,
        "<p>{} points varying {}.</p>",
        sweep.rows.len(),
        escape(&sweep.keys.join(", "))
    );
    out.push_str("<h2>Points</h2>\n<table>\n<tr>");
    let mut cols: Vec<&str> = sweep.keys.iter().map(String::as_str).collect();
    cols.extend([
        "point",
        "peers",
        "p2p",
        "completed",
        "p50 (s)",
        "p99 (s)",
        "max (s)",
        "bound (s)",
        "max / bound",
        "hub copies",
        "peer bytes up",
    ]);
    for c in &cols {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr>\n");
    for r in &sweep.rows {
        out.push_str("<tr>");
        let mut cells: Vec<String> = r.settings.clone();
        cells.extend([
            r.point.clone(),
            r.peers.to_string(),
            r.p2p.to_string(),
            r.completed.to_string(),
            opt(r.p50_s, 3),
            opt(r.p99_s, 3),
            opt(r.max_s, 3),
            format!("{:.3}", r.bound_s),
            opt(r.ratio_to_bound, 3),
            format!("{:.3}", r.hub_copies),
            r.peer_bytes_up.to_string(),
        ]);
        for (i, c) in cells.iter().enumerate() {
            let class = if c.parse::<f64>().is_ok() {
                " class=\"n\""
            } else {
                ""
            };
            if i == sweep.keys.len() {
                // The point's own report when it has one, else its folder.
                let target = if sweep.dir.join(c).join("report.html").is_file() {
                    format!("{c}/report.html")
                } else {
                    format!("{c}/")
                };
                let _ = write!(
                    out,
                    "<td><a href=\"{}\">{}</a></td>",
                    escape(&target),
                    escape(c)
                );
            } else {
                let _ = write!(out, "<td{class}>{}</td>", escape(c));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    charts(&mut out, embedded);
    table(
        &mut out,
        "Scenario parameters (first point's scenario.toml)",
        &scenario_rows(sweep.base_scenario_toml.as_deref(), None),
    );
    if let Some(first) = sweep.rows.first() {
        let path = sweep.dir.join(&first.point).join("summary.json");
        if let Ok(s) = crate::load::load_summary(&path) {
            let _ = writeln!(
                out,
                "<p>Each point records its own seed, hashes and command in \
                 <code>point-NNN/summary.json</code>; the first point's:</p>"
            );
            reproduce(&mut out, &s);
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }

    #[test]
    fn scenario_rows_flatten_groups_by_index() {
        let text = "name = \"x\"\n[hub]\nupload = \"1 Gbit/s\"\n\
                    [[group]]\nname = \"a\"\ncount = 3\n[[group]]\nname = \"b\"\ncount = 4\n";
        let rows = scenario_rows(Some(text), None);
        assert!(rows.contains(&("hub.upload".into(), "1 Gbit/s".into())));
        assert!(rows.contains(&("group.1.count".into(), "4".into())));
        assert!(rows.contains(&("name".into(), "x".into())));
    }
}
