//! Charts drawn with plotters, each once as PNG (bitmap backend) and once as
//! SVG. Text is laid out with an embedded DejaVu Sans font (ab_glyph), so no
//! system font lookup (fontconfig) is needed.

use std::error::Error;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::load::{Run, Sweep};

mod axis;
mod peers;
mod sweep;
pub use peers::PEER_BIN_THRESHOLD;
pub use sweep::sweep_x;

/// DejaVu Sans (Bitstream Vera license, see `assets/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FONT_NAME: &str = "sans-serif";

/// Chart size in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (1000, 600);

type DrawResult = Result<(), Box<dyn Error>>;

/// Register the embedded font with plotters; idempotent.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would show as
        // a text drawing error on the first chart.
        let _ = plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT);
    });
}

/// Which chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartKind {
    /// Completion-time CDF with bound and percentiles.
    CompletionCdf,
    /// Throughput by source over time, with hub egress.
    Throughput,
    /// Leechers, seeds and completed over time.
    Population,
    /// Bytes up and down per peer, by group or site.
    PeerBytes,
    /// Sweep: completion p50/p99/max against the varied key.
    SweepCompletion,
    /// Sweep: hub copies against peer count.
    SweepHubCopies,
}

impl ChartKind {
    /// File stem of the chart's PNG and SVG.
    pub fn file_stem(self) -> &'static str {
        match self {
            ChartKind::CompletionCdf => "completion-cdf",
            ChartKind::Throughput => "throughput",
            ChartKind::Population => "population",
            ChartKind::PeerBytes => "peer-bytes",
            ChartKind::SweepCompletion => "sweep-completion",
            ChartKind::SweepHubCopies => "sweep-hub-copies",
        }
    }
}

/// What a chart draws from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// A run.
    Run(&'a Run),
    /// A sweep.
    Sweep(&'a Sweep),
}

/// Charts for a source, in report order.
pub fn kinds(source: Source<'_>) -> &'static [ChartKind] {
    match source {
        Source::Run(_) => &[
            ChartKind::CompletionCdf,
            ChartKind::Throughput,
            ChartKind::Population,
            ChartKind::PeerBytes,
        ],
        Source::Sweep(_) => &[ChartKind::SweepCompletion, ChartKind::SweepHubCopies],
    }
}

/// Draw one chart as PNG to `png` and return its SVG text.
pub fn render(kind: ChartKind, source: Source<'_>, png: &Path) -> Result<String, Box<dyn Error>> {
    register_fonts();
    let mut rgb = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(kind, source, &root)?;
        root.present()?;
    }
    write_png(png, &rgb)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(kind, source, &root)?;
        root.present()?;
    }
    Ok(svg)
}

/// Encode an RGB buffer of `SIZE` as PNG with the strongest compression:
/// charts are mostly flat colour, and a multi-run CDF stays under 200 KiB.
fn write_png(path: &Path, rgb: &[u8]) -> Result<(), Box<dyn Error>> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, SIZE.0, SIZE.1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    kind: ChartKind,
    source: Source<'_>,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    match (kind, source) {
        (ChartKind::CompletionCdf, Source::Run(r)) => completion_cdf(r, area),
        (ChartKind::Throughput, Source::Run(r)) => throughput(r, area),
        (ChartKind::Population, Source::Run(r)) => population(r, area),
        (ChartKind::PeerBytes, Source::Run(r)) => peers::peer_bytes(r, area),
        (ChartKind::SweepCompletion, Source::Sweep(s)) => sweep::completion(s, area),
        (ChartKind::SweepHubCopies, Source::Sweep(s)) => sweep::hub_copies(s, area),
        (k, _) => Err(format!("chart {k:?} does not apply to this folder").into()),
    }
}

fn caption_font() -> TextStyle<'static> {
    (FONT_NAME, 24).into_text_style(&SIZE)
}

fn label_font() -> TextStyle<'static> {
    (FONT_NAME, 16).into_text_style(&SIZE)
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    pos: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(label_font())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn legend_line(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
}

fn legend_box(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.filled())
}

const C_MAIN: RGBColor = RGBColor(31, 119, 180);
const C_HUB: RGBColor = RGBColor(255, 127, 14);
const C_PEERS: RGBColor = RGBColor(44, 160, 44);
const C_HUB_LIGHT: RGBColor = RGBColor(255, 187, 120);
const C_PEERS_LIGHT: RGBColor = RGBColor(152, 223, 138);
const C_BOUND: RGBColor = RGBColor(214, 39, 40);
const C_GREY: RGBColor = RGBColor(110, 110, 110);
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Fraction of `n` peers completed by time `t`.
fn fraction_at(sorted: &[f64], n: usize, t: f64) -> f64 {
    sorted.partition_point(|x| *x <= t) as f64 / n.max(1) as f64
}

/// Colours of the overlaid runs on the CDF, in `overlay.txt` order.
const OVERLAY_COLORS: [RGBColor; crate::load::MAX_OVERLAYS] = [
    C_GREY, PALETTE[2], PALETTE[7], PALETTE[6], PALETTE[1], PALETTE[4],
];

/// What a run is called in a legend: its lab engine, or the simulator.
pub fn run_label(s: &crate::load::Summary) -> String {
    match &s.engine {
        Some(e) => format!("{e} lab"),
        None => "simulator".to_string(),
    }
}

/// Sorted completion times of a run's peers.
fn sorted_completions(peers: &[crate::load::PeerRow]) -> Vec<f64> {
    let mut times: Vec<f64> = peers.iter().filter_map(|p| p.completion_s()).collect();
    times.sort_by(f64::total_cmp);
    times
}

/// The step line of an empirical CDF of `sorted` over `n` peers, to `x_max`.
fn cdf_steps(sorted: &[f64], n: usize, x_max: f64) -> Vec<(f64, f64)> {
    let n = n.max(1) as f64;
    let mut steps = vec![(0.0, 0.0)];
    for (i, t) in sorted.iter().enumerate() {
        steps.push((*t, i as f64 / n));
        steps.push((*t, (i + 1) as f64 / n));
    }
    if let Some(last) = steps.last().copied() {
        steps.push((x_max, last.1));
    }
    steps
}

fn completion_cdf<DB: DrawingBackend>(run: &Run, area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let s = &run.summary;
    let times = sorted_completions(&run.peers);
    let n = run.peers.len();
    let others: Vec<Vec<f64>> = run
        .overlays
        .iter()
        .map(|o| sorted_completions(&o.peers))
        .collect();
    let x_max = others
        .iter()
        .chain([&times])
        .filter_map(|t| t.last().copied())
        .fold(s.bound_s, f64::max)
        .max(1e-3)
        * 1.08;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Completion time CDF: {} ({} peers, {} completed)",
                s.scenario, n, s.completed
            ),
            caption_font(),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..1.05f64)?;
    chart
        .configure_mesh()
        .x_desc("time from join to completion (s)")
        .y_desc("fraction of peers completed")
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    let main_label = if run.overlays.is_empty() {
        "peers completed".to_string()
    } else {
        format!("{} (this run)", run_label(s))
    };
    chart
        .draw_series(LineSeries::new(
            cdf_steps(&times, n, x_max),
            C_MAIN.stroke_width(3),
        ))?
        .label(main_label)
        .legend(legend_line(C_MAIN));
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
    for ((o, sorted), color) in run.overlays.iter().zip(&others).zip(OVERLAY_COLORS) {
        chart
            .draw_series(LineSeries::new(
                cdf_steps(sorted, o.peers.len(), x_max),
                color.stroke_width(3),
            ))?
            .label(format!(
                "{} (p50 {} s, max {} s)",
                o.label,
                f(o.summary.completion_s.p50),
                f(o.summary.completion_s.max)
            ))
            .legend(legend_line(color));
    }
    chart
        .draw_series(DashedLineSeries::new(
            vec![(s.bound_s, 0.0), (s.bound_s, 1.05)],
            10,
            6,
            C_BOUND.stroke_width(2),
        ))?
        .label(format!("analytic bound {:.2} s", s.bound_s))
        .legend(legend_line(C_BOUND));
    // p99 is drawn larger than max so that equal values both stay visible.
    let marks = [
        ("p50", s.completion_s.p50, PALETTE[4], 7),
        ("p99", s.completion_s.p99, PALETTE[1], 11),
        ("max", s.completion_s.max, PALETTE[5], 6),
    ];
    for (name, value, color, r) in marks {
        let Some(v) = value else { continue };
        let y = fraction_at(&times, n, v);
        chart
            .draw_series([
                Circle::new((v, y), r, color.filled()),
                Circle::new((v, y), r, BLACK.stroke_width(1)),
            ])?
            .label(format!("{name} {v:.2} s"))
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// A rate unit that keeps the axis numbers short.
fn rate_unit(max_bps: f64) -> (f64, &'static str) {
    if max_bps >= 2e9 {
        (1e9, "Gbit/s")
    } else if max_bps >= 2e6 {
        (1e6, "Mbit/s")
    } else {
        (1e3, "kbit/s")
    }
}

/// Parse a rate such as `1 Gbit/s` or `100 Mbit/s` into bits per second.
pub fn parse_rate_bps(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let value: f64 = t[..split].trim().parse().ok()?;
    let unit = t[split..].trim().to_ascii_lowercase();
    let scale = match unit.as_str() {
        "bit/s" | "bps" => 1.0,
        "kbit/s" | "kbps" => 1e3,
        "mbit/s" | "mbps" => 1e6,
        "gbit/s" | "gbps" => 1e9,
        "tbit/s" | "tbps" => 1e12,
        "b/s" => 8.0,
        "kb/s" => 8e3,
        "mb/s" => 8e6,
        "gb/s" => 8e9,
        "kib/s" => 8.0 * 1024.0,
        "mib/s" => 8.0 * 1024.0 * 1024.0,
        "gib/s" => 8.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(value * scale)
}

/// The hub's upload capacity from a scenario text, if it states one.
pub fn hub_capacity_bps(scenario_toml: Option<&str>) -> Option<f64> {
    let doc: toml::Table = toml::from_str(scenario_toml?).ok()?;
    parse_rate_bps(doc.get("hub")?.get("upload")?.as_str()?)
}

fn throughput<DB: DrawingBackend>(run: &Run, area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let tl = &run.timeline;
    let capacity = hub_capacity_bps(run.scenario_toml.as_deref());
    let max_bps = tl
        .iter()
        .map(|r| r.hub_egress_bps + r.peer_egress_bps)
        .chain(capacity)
        .fold(1.0, f64::max);
    let (scale, unit) = rate_unit(max_bps);
    let t_max = tl.last().map_or(1.0, |r| r.t_s).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Throughput by source: {}", run.summary.scenario),
            caption_font(),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..t_max, 0f64..max_bps / scale * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc(format!("download rate ({unit})"))
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    let total = tl
        .iter()
        .map(|r| (r.t_s, (r.hub_egress_bps + r.peer_egress_bps) / scale));
    chart
        .draw_series(AreaSeries::new(total, 0.0, C_PEERS_LIGHT.filled()).border_style(C_PEERS))?
        .label("from peers (stacked on hub)")
        .legend(legend_box(C_PEERS_LIGHT));
    let hub = tl.iter().map(|r| (r.t_s, r.hub_egress_bps / scale));
    chart
        .draw_series(AreaSeries::new(hub, 0.0, C_HUB_LIGHT.filled()).border_style(C_HUB))?
        .label("from hub")
        .legend(legend_box(C_HUB_LIGHT));
    let egress = tl.iter().map(|r| (r.t_s, r.hub_egress_bps / scale));
    chart
        .draw_series(LineSeries::new(egress, BLACK.stroke_width(2)))?
        .label("hub egress")
        .legend(legend_line(BLACK));
    if let Some(c) = capacity {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, c / scale), (t_max, c / scale)],
                10,
                6,
                C_BOUND.stroke_width(2),
            ))?
            .label(format!("hub capacity {:.1} {unit}", c / scale))
            .legend(legend_line(C_BOUND));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn population<DB: DrawingBackend>(run: &Run, area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let tl = &run.timeline;
    let t_max = tl.last().map_or(1.0, |r| r.t_s).max(1e-3);
    let y_max = tl
        .iter()
        .map(|r| r.leechers.max(r.seeds).max(r.completed))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Swarm population: {}", run.summary.scenario),
            caption_font(),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("peers")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    type Get = fn(&crate::load::TimelineRow) -> u64;
    // Seeds are drawn wider than completed: without departures they are equal.
    let series: [(&str, Get, RGBColor, u32); 3] = [
        ("leechers (downloading)", |r| r.leechers, C_HUB, 3),
        ("seeds (uploading, complete)", |r| r.seeds, C_PEERS, 8),
        ("completed (cumulative)", |r| r.completed, C_MAIN, 3),
    ];
    for (name, get, color, width) in series {
        chart
            .draw_series(LineSeries::new(
                tl.iter().map(|r| (r.t_s, get(r) as f64)),
                color.stroke_width(width),
            ))?
            .label(name)
            .legend(legend_line(color));
    }
    legend(&mut chart, SeriesLabelPosition::MiddleLeft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_bits_and_bytes() {
        assert_eq!(parse_rate_bps("1 Gbit/s"), Some(1e9));
        assert_eq!(parse_rate_bps("100 Mbit/s"), Some(1e8));
        assert_eq!(parse_rate_bps("2.5Gbps"), Some(2.5e9));
        assert_eq!(parse_rate_bps("10 MB/s"), Some(8e7));
        assert_eq!(parse_rate_bps("fast"), None);
        assert_eq!(parse_rate_bps("10 furlongs"), None);
    }

    #[test]
    fn hub_capacity_comes_from_the_scenario() {
        let text = "name = \"x\"\n[hub]\nupload = \"2 Gbit/s\"\n";
        assert_eq!(hub_capacity_bps(Some(text)), Some(2e9));
        assert_eq!(hub_capacity_bps(Some("name = \"x\"")), None);
        assert_eq!(hub_capacity_bps(None), None);
    }
}
