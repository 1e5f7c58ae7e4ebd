//! Bytes uploaded and downloaded per peer, ranked by upload and coloured by
//! group (or group @ site). Up to [`PEER_BIN_THRESHOLD`] peers get one bar
//! each; above that, consecutive ranks are binned so a 10,000-peer run stays
//! readable and small: each bar is a bin's mean upload per peer, split by
//! group in proportion to the bytes each group uploaded (bar area stays
//! proportional to bytes), with the bin's download range as a band.

use std::collections::BTreeMap;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::tick_label;
use super::{
    caption_font, label_font, legend, legend_box, legend_line, DrawResult, C_GREY, PALETTE,
};
use crate::load::{PeerRow, Run};

/// Above this many peers the chart bins ranks instead of drawing a bar per peer.
pub const PEER_BIN_THRESHOLD: usize = 500;
/// Bars drawn for a binned chart (5 px each at the chart's width).
const PEER_BINS: usize = 200;
const MIB: f64 = 1024.0 * 1024.0;

/// Label peers by group, adding the site when peers sit on more than one site.
fn peer_class(run: &Run) -> impl Fn(&PeerRow) -> String {
    let sites: std::collections::BTreeSet<&str> =
        run.peers.iter().map(|p| p.site.as_str()).collect();
    let with_site = sites.len() > 1;
    move |p| {
        if with_site {
            format!("{} @ {}", p.group, p.site)
        } else {
            p.group.clone()
        }
    }
}

pub(super) fn peer_bytes<DB: DrawingBackend>(run: &Run, area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut peers: Vec<&PeerRow> = run.peers.iter().collect();
    peers.sort_by(|a, b| b.bytes_up.cmp(&a.bytes_up).then(a.id.cmp(&b.id)));
    if peers.len() > PEER_BIN_THRESHOLD {
        binned(run, &peers, area)
    } else {
        per_peer(run, &peers, area)
    }
}

fn total_down(p: &PeerRow) -> u64 {
    p.bytes_down_hub + p.bytes_down_peers
}

/// One bar per peer; `peers` sorted by upload, largest first.
fn per_peer<DB: DrawingBackend>(
    run: &Run,
    peers: &[&PeerRow],
    area: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let class = peer_class(run);
    let y_max = peers
        .iter()
        .map(|p| p.bytes_up.max(total_down(p)))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        / MIB;
    let n = peers.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Who carried the swarm: {}", run.summary.scenario),
            caption_font(),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n, 0f64..y_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("peers, ranked by bytes uploaded (rank)")
        .y_desc("data per peer (MiB)")
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    let mut classes: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (i, p) in peers.iter().enumerate() {
        classes
            .entry(class(p))
            .or_default()
            .push((i, p.bytes_up as f64 / MIB));
    }
    for (k, (name, bars)) in classes.into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        chart
            .draw_series(bars.into_iter().map(|(i, up)| {
                Rectangle::new(
                    [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, up)],
                    color.filled(),
                )
            }))?
            .label(format!("uploaded: {name}"))
            .legend(legend_box(color));
    }
    let down = |f: fn(&PeerRow) -> u64| {
        peers
            .iter()
            .enumerate()
            .map(move |(i, p)| (i as f64 + 0.5, f(p) as f64 / MIB))
    };
    chart
        .draw_series(LineSeries::new(down(total_down), BLACK.stroke_width(2)))?
        .label("downloaded (total)")
        .legend(legend_line(BLACK));
    chart
        .draw_series(LineSeries::new(
            down(|p| p.bytes_down_hub),
            C_GREY.stroke_width(2),
        ))?
        .label("downloaded from hub")
        .legend(legend_line(C_GREY));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Consecutive upload ranks summarised as one bar.
#[derive(Clone, Debug, PartialEq)]
struct RankBin {
    /// Ranks covered (0 = uploaded most).
    ranks: Range<usize>,
    /// Bytes uploaded by the bin's peers of each class (index into the class list).
    up_by_class: Vec<u64>,
    /// Fewest and most bytes one peer of the bin downloaded in total.
    down_min: u64,
    down_max: u64,
    /// Bytes the bin's peers downloaded in total, and from the hub.
    down_sum: u64,
    down_hub_sum: u64,
}

impl RankBin {
    fn len(&self) -> f64 {
        self.ranks.len() as f64
    }
}

/// Split ranked peers (`class_of[i]` is peer `i`'s class) into at most
/// `bins` runs of consecutive ranks of near-equal size, none empty.
fn rank_bins(peers: &[&PeerRow], class_of: &[usize], classes: usize, bins: usize) -> Vec<RankBin> {
    let n = peers.len();
    let bins = bins.clamp(1, n.max(1));
    (0..bins)
        .map(|b| b * n / bins..(b + 1) * n / bins)
        .filter(|r| !r.is_empty())
        .map(|ranks| {
            let mut up_by_class = vec![0; classes];
            for i in ranks.clone() {
                up_by_class[class_of[i]] += peers[i].bytes_up;
            }
            let down = || peers[ranks.clone()].iter().map(|p| total_down(p));
            RankBin {
                down_min: down().min().unwrap_or(0),
                down_max: down().max().unwrap_or(0),
                down_sum: down().sum(),
                down_hub_sum: peers[ranks.clone()].iter().map(|p| p.bytes_down_hub).sum(),
                up_by_class,
                ranks,
            }
        })
        .collect()
}

/// Ranks binned into [`PEER_BINS`] bars; `peers` sorted by upload, largest first.
fn binned<DB: DrawingBackend>(
    run: &Run,
    peers: &[&PeerRow],
    area: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let class = peer_class(run);
    let names: Vec<String> = peers
        .iter()
        .map(|p| class(p))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let class_of: Vec<usize> = peers
        .iter()
        .map(|p| {
            names
                .binary_search(&class(p))
                .expect("name collected above")
        })
        .collect();
    let bins = rank_bins(peers, &class_of, names.len(), PEER_BINS);
    let per_bar = peers.len().div_ceil(bins.len().max(1));
    let y_max = bins
        .iter()
        .map(|b| (b.up_by_class.iter().sum::<u64>() as f64 / b.len()).max(b.down_max as f64))
        .fold(1.0, f64::max)
        / MIB;
    let n = peers.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Who carried the swarm: {} ({} peers)",
                run.summary.scenario,
                peers.len()
            ),
            caption_font(),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n, 0f64..y_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "peers, ranked by bytes uploaded (rank; each bar is {per_bar} peers: mean per peer)"
        ))
        .y_desc("data per peer (MiB)")
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    // Each class's segment sits on the classes before it; heights are bytes
    // per peer of the bin, so segment area is the class's bytes.
    let mut base = vec![0.0; bins.len()];
    for (k, name) in names.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut rects = Vec::new();
        for (b, bin) in bins.iter().enumerate() {
            let h = bin.up_by_class[k] as f64 / bin.len() / MIB;
            if h > 0.0 {
                let (x0, x1) = (bin.ranks.start as f64, bin.ranks.end as f64);
                rects.push(Rectangle::new(
                    [(x0, base[b]), (x1, base[b] + h)],
                    color.filled(),
                ));
                base[b] += h;
            }
        }
        chart
            .draw_series(rects)?
            .label(format!("uploaded: {name}"))
            .legend(legend_box(color));
    }
    let steps = |f: &dyn Fn(&RankBin) -> f64| -> Vec<(f64, f64)> {
        bins.iter()
            .flat_map(|b| {
                let y = f(b) / MIB;
                [(b.ranks.start as f64, y), (b.ranks.end as f64, y)]
            })
            .collect()
    };
    let mut band = steps(&|b| b.down_max as f64);
    band.extend(steps(&|b| b.down_min as f64).into_iter().rev());
    let band_color = BLACK.mix(0.15);
    chart
        .draw_series([Polygon::new(band, band_color.filled())])?
        .label("downloaded: fewest to most in bin")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], band_color.filled()));
    chart
        .draw_series(LineSeries::new(
            steps(&|b| b.down_sum as f64 / b.len()),
            BLACK.stroke_width(2),
        ))?
        .label("downloaded (total, mean)")
        .legend(legend_line(BLACK));
    chart
        .draw_series(LineSeries::new(
            steps(&|b| b.down_hub_sum as f64 / b.len()),
            C_GREY.stroke_width(2),
        ))?
        .label("downloaded from hub (mean)")
        .legend(legend_line(C_GREY));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, up: u64, down_hub: u64, down_peers: u64) -> PeerRow {
        PeerRow {
            id,
            group: "g".into(),
            site: String::new(),
            join_s: Some(0.0),
            complete_s: Some(1.0),
            leave_s: None,
            bytes_down_hub: down_hub,
            bytes_down_peers: down_peers,
            bytes_up: up,
            bytes_wasted: None,
        }
    }

    #[test]
    fn bins_cover_every_rank_once_and_keep_bytes_per_class() {
        for (n, bins) in [(1, 200), (7, 3), (501, 200), (10_000, 200), (10_007, 200)] {
            let rows: Vec<PeerRow> = (0..n as u64)
                .map(|i| peer(i, (n as u64 - i) * 1000, i % 5, 100 + i % 7))
                .collect();
            let peers: Vec<&PeerRow> = rows.iter().collect();
            let class_of: Vec<usize> = (0..n).map(|i| i % 3).collect();
            let out = rank_bins(&peers, &class_of, 3, bins);
            assert_eq!(out.len(), bins.min(n), "{n} peers");
            let covered: Vec<usize> = out.iter().flat_map(|b| b.ranks.clone()).collect();
            assert_eq!(covered, (0..n).collect::<Vec<_>>(), "{n} peers");
            let sizes: Vec<usize> = out.iter().map(|b| b.ranks.len()).collect();
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} peers: bin sizes {lo}..{hi}");
            for k in 0..3 {
                let want: u64 = (0..n)
                    .filter(|i| class_of[*i] == k)
                    .map(|i| rows[i].bytes_up)
                    .sum();
                let got: u64 = out.iter().map(|b| b.up_by_class[k]).sum();
                assert_eq!(got, want, "{n} peers, class {k}");
            }
            let down: u64 = rows.iter().map(total_down).sum();
            assert_eq!(out.iter().map(|b| b.down_sum).sum::<u64>(), down);
            for b in &out {
                let slice = &rows[b.ranks.clone()];
                assert_eq!(b.down_min, slice.iter().map(total_down).min().unwrap());
                assert_eq!(b.down_max, slice.iter().map(total_down).max().unwrap());
            }
        }
    }
}
