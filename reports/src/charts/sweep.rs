//! Sweep charts: completion p50/p99/max against the varied key and hub
//! copies against peer count, P2P and hub-only lines, log axes where values
//! span orders of magnitude (ticks at 1-2-5 steps, see [`super::axis`]).

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::ValueAxis;
use super::{
    caption_font, label_font, legend, legend_line, DrawResult, C_BOUND, C_HUB, C_MAIN, PALETTE,
};
use crate::load::{Sweep, SweepRow};

/// The sweep's x axis: the first numeric varied key other than `protocol.p2p`
/// (a `count` key is shown as the total peer count), else the peer count.
pub fn sweep_x(sweep: &Sweep) -> (String, Vec<f64>) {
    let numeric = sweep.keys.iter().enumerate().find(|(i, k)| {
        k.as_str() != "protocol.p2p"
            && sweep
                .rows
                .iter()
                .all(|r| r.settings[*i].parse::<f64>().is_ok())
    });
    match numeric {
        Some((_, k)) if k.ends_with("count") => (
            "peers".to_string(),
            sweep.rows.iter().map(|r| r.peers as f64).collect(),
        ),
        Some((i, k)) => (
            k.clone(),
            sweep
                .rows
                .iter()
                .map(|r| r.settings[i].parse().unwrap_or(0.0))
                .collect(),
        ),
        None => (
            "peers".to_string(),
            sweep.rows.iter().map(|r| r.peers as f64).collect(),
        ),
    }
}

/// Group sweep rows into lines: P2P vs hub-only, plus any other varied key
/// that is not on the x axis.
fn sweep_lines(sweep: &Sweep, x_key: &str) -> BTreeMap<(bool, String), Vec<usize>> {
    let mut lines: BTreeMap<(bool, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in sweep.rows.iter().enumerate() {
        let rest: Vec<String> = sweep
            .keys
            .iter()
            .zip(&r.settings)
            .filter(|(k, _)| {
                k.as_str() != x_key
                    && k.as_str() != "protocol.p2p"
                    && !(x_key == "peers" && k.ends_with("count"))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.entry((!r.p2p, rest.join(" "))).or_default().push(i);
    }
    lines
}

fn line_name(p2p_off: bool, rest: &str) -> String {
    let mode = if p2p_off { "hub-only" } else { "P2P" };
    if rest.is_empty() {
        mode.to_string()
    } else {
        format!("{mode} {rest}")
    }
}

pub(super) fn completion<DB: DrawingBackend>(
    sweep: &Sweep,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (x_key, xs) = sweep_x(sweep);
    type Get = fn(&SweepRow) -> Option<f64>;
    // p99 is drawn wider than max so that equal values both stay visible.
    let metrics: [(&str, Get, RGBColor, u32); 3] = [
        ("p50", |r| r.p50_s, C_MAIN, 3),
        ("p99", |r| r.p99_s, C_HUB, 7),
        ("max", |r| r.max_s, C_BOUND, 2),
    ];
    let ys = sweep
        .rows
        .iter()
        .flat_map(|r| [r.p50_s, r.p99_s, r.max_s])
        .flatten();
    let xa = ValueAxis::for_values(xs.iter().copied());
    let ya = ValueAxis::for_values(ys);
    let (x_desc, y_desc) = (xa.desc(&x_key), ya.desc("completion time from join (s)"));
    let mut chart = ChartBuilder::on(area)
        .caption("Completion time across the sweep", caption_font())
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xa, ya)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for ((off, rest), idx) in sweep_lines(sweep, &x_key) {
        for (metric, get, color, width) in metrics {
            let mut pts: Vec<(f64, f64)> = idx
                .iter()
                .filter_map(|&i| Some((xs[i], get(&sweep.rows[i])?)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let name = format!("{} {metric}", line_name(off, &rest));
            if off {
                chart
                    .draw_series(DashedLineSeries::new(
                        pts.clone(),
                        8,
                        5,
                        color.stroke_width(width),
                    ))?
                    .label(name)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (7, 0)], color.stroke_width(3))
                            + PathElement::new(vec![(12, 0), (19, 0)], color.stroke_width(3))
                    });
                chart.draw_series(
                    pts.iter()
                        .map(|p| TriangleMarker::new(*p, 6, color.filled())),
                )?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))?
                    .label(name)
                    .legend(legend_line(color));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
            }
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

pub(super) fn hub_copies<DB: DrawingBackend>(
    sweep: &Sweep,
    area: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let xs: Vec<f64> = sweep.rows.iter().map(|r| r.peers as f64).collect();
    let ys = sweep.rows.iter().map(|r| r.hub_copies);
    let xa = ValueAxis::for_values(xs.iter().copied());
    let ya = ValueAxis::for_values(ys);
    let (x_desc, y_desc) = (
        xa.desc("peers"),
        ya.desc("hub upload / image size (copies)"),
    );
    let mut chart = ChartBuilder::on(area)
        .caption("Hub copies sent vs peer count", caption_font())
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xa, ya)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for (k, ((off, rest), idx)) in sweep_lines(sweep, "peers").into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut pts: Vec<(f64, f64)> = idx
            .iter()
            .map(|&i| (xs[i], sweep.rows[i].hub_copies))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(3)))?
            .label(line_name(off, &rest))
            .legend(legend_line(color));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}
