//! Sweep charts: completion p50/p99/max against the varied key and hub
//! copies against peer count, P2P and hub-only lines, log axes where values
//! span orders of magnitude.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    caption_font, label_font, legend, legend_line, DrawResult, C_BOUND, C_HUB, C_MAIN, PALETTE,
};
use crate::load::{Sweep, SweepRow};

/// A linear or log10 axis: values are mapped before plotting and the tick
/// labels show the original values.
#[derive(Clone, Copy)]
struct Axis {
    log: bool,
}

impl Axis {
    /// Log scale when the positive values span a factor of 20 or more.
    fn for_values(values: impl Iterator<Item = f64>) -> Axis {
        let (lo, hi) = values
            .filter(|v| *v > 0.0)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        Axis {
            log: hi > 0.0 && hi / lo >= 20.0,
        }
    }
    fn map(self, v: f64) -> f64 {
        if self.log {
            v.max(1e-9).log10()
        } else {
            v
        }
    }
    fn range(self, values: impl Iterator<Item = f64> + Clone) -> std::ops::Range<f64> {
        let lo = values
            .clone()
            .map(|v| self.map(v))
            .fold(f64::INFINITY, f64::min);
        let hi = values
            .map(|v| self.map(v))
            .fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() || !hi.is_finite() {
            return 0.0..1.0;
        }
        if self.log {
            (lo - 0.1)..(hi + 0.1)
        } else {
            let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(1e-3);
            (lo.min(0.0) - if lo < 0.0 { pad } else { 0.0 })..(hi + pad)
        }
    }
    fn label(self, v: f64) -> String {
        if self.log {
            return two_significant(10f64.powf(v));
        }
        let x = v;
        if x.abs() >= 100.0 || (x - x.round()).abs() < 1e-6 {
            format!("{x:.0}")
        } else if x.abs() >= 1.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    }
    fn desc(self, text: &str) -> String {
        if self.log {
            format!("{text}, log scale")
        } else {
            text.to_string()
        }
    }
}

/// `x` rounded to two significant digits (log-axis ticks sit at 10^0.2 steps:
/// 15.85 reads better as 16).
fn two_significant(x: f64) -> String {
    if x <= 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let e = x.log10().floor() as i32;
    let step = 10f64.powi(e - 1);
    let rounded = (x / step).round() * step;
    let decimals = (1 - e).max(0) as usize;
    format!("{rounded:.decimals$}")
}

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
    let xa = Axis::for_values(xs.iter().copied());
    let ya = Axis::for_values(ys.clone());
    let mut chart = ChartBuilder::on(area)
        .caption("Completion time across the sweep", caption_font())
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xa.range(xs.iter().copied()), ya.range(ys))?;
    chart
        .configure_mesh()
        .x_desc(xa.desc(&x_key))
        .y_desc(ya.desc("completion time from join (s)"))
        .x_label_formatter(&|v| xa.label(*v))
        .y_label_formatter(&|v| ya.label(*v))
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for ((off, rest), idx) in sweep_lines(sweep, &x_key) {
        for (metric, get, color, width) in metrics {
            let mut pts: Vec<(f64, f64)> = idx
                .iter()
                .filter_map(|&i| Some((xa.map(xs[i]), ya.map(get(&sweep.rows[i])?))))
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
    let xa = Axis::for_values(xs.iter().copied());
    let ya = Axis::for_values(ys.clone());
    let mut chart = ChartBuilder::on(area)
        .caption("Hub copies sent vs peer count", caption_font())
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xa.range(xs.iter().copied()), ya.range(ys))?;
    chart
        .configure_mesh()
        .x_desc(xa.desc("peers"))
        .y_desc(ya.desc("hub upload / image size (copies)"))
        .x_label_formatter(&|v| xa.label(*v))
        .y_label_formatter(&|v| ya.label(*v))
        .axis_desc_style(label_font())
        .label_style(label_font())
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    for (k, ((off, rest), idx)) in sweep_lines(sweep, "peers").into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let mut pts: Vec<(f64, f64)> = idx
            .iter()
            .map(|&i| (xa.map(xs[i]), ya.map(sweep.rows[i].hub_copies)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_only_across_orders_of_magnitude() {
        assert!(Axis::for_values([10.0, 100.0, 1000.0, 10_000.0].into_iter()).log);
        assert!(Axis::for_values([10.0, 30.0, 100.0, 300.0].into_iter()).log);
        assert!(!Axis::for_values([10.0, 20.0, 40.0].into_iter()).log);
        // Zeros (hub-only peer bytes) do not force a log scale.
        assert!(!Axis::for_values([0.0, 5.0, 9.0].into_iter()).log);
        let log = Axis { log: true };
        assert_eq!(log.label(log.map(1000.0)), "1000");
        assert_eq!(log.label(1.2), "16");
        assert_eq!(log.label(0.2), "1.6");
        assert_eq!(log.label(2.8), "630");
        assert_eq!(log.label(-0.6), "0.25");
        assert_eq!(Axis { log: false }.label(2.5), "2.5");
    }
}
