//! A linear-or-log10 axis for plotters whose log ticks sit at 1-2-5 steps per
//! decade and read as `10`, `200`, `5k`, `10k` instead of plotters' evenly
//! spaced exponents.

use std::ops::Range;

use plotters::coord::ranged1d::{
    KeyPointHint, KeyPointWeight, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;

/// Log scale when the positive values span a factor of this or more.
const LOG_FROM_RATIO: f64 = 20.0;
/// Log axes extend a tenth of a decade past the data on both sides.
const LOG_PAD_DECADES: f64 = 0.1;

/// One chart axis over values in their own units; on a log axis the values
/// must be positive (smaller ones are drawn at the lower edge).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ValueAxis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl ValueAxis {
    /// An axis that covers `values`: log10 when the positive values span a
    /// factor of 20 or more, else linear from zero (or below, for negatives).
    pub(crate) fn for_values(values: impl Iterator<Item = f64> + Clone) -> ValueAxis {
        let finite = values.filter(|v| v.is_finite());
        let (pos_lo, pos_hi) = finite
            .clone()
            .filter(|v| *v > 0.0)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if pos_hi > 0.0 && pos_hi / pos_lo >= LOG_FROM_RATIO {
            let pad = 10f64.powf(LOG_PAD_DECADES);
            return ValueAxis {
                lo: pos_lo / pad,
                hi: pos_hi * pad,
                log: true,
            };
        }
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !lo.is_finite() {
            return ValueAxis {
                lo: 0.0,
                hi: 1.0,
                log: false,
            };
        }
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(1e-3);
        ValueAxis {
            lo: lo.min(0.0) - if lo < 0.0 { pad } else { 0.0 },
            hi: hi + pad,
            log: false,
        }
    }

    /// Whether the axis is log10.
    #[cfg(test)]
    pub(crate) fn is_log(&self) -> bool {
        self.log
    }

    /// Axis title, marked when the scale is logarithmic.
    pub(crate) fn desc(&self, text: &str) -> String {
        if self.log {
            format!("{text}, log scale")
        } else {
            text.to_string()
        }
    }

    fn linear(&self) -> RangedCoordf64 {
        (self.lo..self.hi).into()
    }
}

impl Ranged for ValueAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        if !self.log {
            return self.linear().map(v, limit);
        }
        let (a, b) = (self.lo.log10(), self.hi.log10());
        let x = v.max(self.lo).log10();
        let f = (x - a) / (b - a);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if !self.log {
            return self.linear().key_points(hint);
        }
        let ticks = log_ticks(self.lo, self.hi, hint.bold_points().max(2));
        match hint.weight() {
            KeyPointWeight::Bold => ticks,
            // Light grid lines: every integer mantissa, when that is not too dense.
            KeyPointWeight::Any => {
                let mut minor = decade_multiples(self.lo, self.hi, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
                if minor.len() > hint.max_num_points() {
                    minor = decade_multiples(self.lo, self.hi, &[1]);
                }
                if minor.len() < ticks.len() {
                    minor = ticks;
                }
                minor
            }
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for ValueAxis {
    fn format_ext(&self, v: &f64) -> String {
        if self.log {
            tick_label(*v)
        } else {
            linear_label(*v)
        }
    }
}

/// Label of a linear-axis tick: as few decimals as the value needs.
fn linear_label(x: f64) -> String {
    if x.abs() >= 100.0 || (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `m * 10^e` for every mantissa `m` in `mantissas` and every decade, within
/// `[lo, hi]` (with a little slack for rounding), in increasing order.
fn decade_multiples(lo: f64, hi: f64, mantissas: &[u32]) -> Vec<f64> {
    decade_multiples_every(lo, hi, mantissas, 1)
}

/// As [`decade_multiples`], keeping only decades whose exponent is a multiple of `every`.
fn decade_multiples_every(lo: f64, hi: f64, mantissas: &[u32], every: i32) -> Vec<f64> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return Vec::new();
    }
    let (lo_e, hi_e) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let slack = 1e-9;
    let mut out = Vec::new();
    for e in lo_e..=hi_e {
        if e.rem_euclid(every) != 0 {
            continue;
        }
        for &m in mantissas {
            let v = round_to_decade(f64::from(m), e);
            if v >= lo * (1.0 - slack) && v <= hi * (1.0 + slack) {
                out.push(v);
            }
        }
    }
    out
}

/// `m * 10^e` computed so that `2 * 10^-1` is exactly the literal `0.2`.
fn round_to_decade(m: f64, e: i32) -> f64 {
    if e >= 0 {
        m * 10f64.powi(e)
    } else {
        m / 10f64.powi(-e)
    }
}

/// Tick values for a log axis over `[lo, hi]` (both positive), at most `max`
/// of them (at least two are always allowed):
///
/// - 1-2-5 steps per decade (10, 20, 50, 100, ...) when they fit;
/// - only powers of ten (10, 100, 1k, ...) when 1-2-5 would be too many, then
///   every second, third, ... power of ten for very wide ranges;
/// - under one decade, every integer mantissa (30, 40, 50, ...), and for an
///   even narrower range linear 1-2-5 steps, so an axis never has fewer than
///   two labels.
pub(crate) fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let max = max.max(2);
    let decades = (hi / lo).log10();
    if decades < 1.0 {
        let all = decade_multiples(lo, hi, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        if all.len() >= 2 && all.len() <= max {
            return all;
        }
        if all.len() > max {
            return decade_multiples(lo, hi, &[1, 2, 5]);
        }
        return linear_ticks(lo, hi, max);
    }
    let one_two_five = decade_multiples(lo, hi, &[1, 2, 5]);
    if one_two_five.len() <= max {
        return one_two_five;
    }
    (1..)
        .map(|every| decade_multiples_every(lo, hi, &[1], every))
        .find(|t| t.len() <= max)
        .expect("a large enough step leaves at most two decades")
}

/// Evenly spaced ticks at a 1, 2 or 5 times power-of-ten step, at most `max`.
fn linear_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let span = hi - lo;
    let mut e = (span / max as f64).log10().floor() as i32;
    loop {
        for m in [1.0, 2.0, 5.0] {
            let step = round_to_decade(m, e);
            let first = (lo / step).ceil() as i64;
            let last = (hi / step).floor() as i64;
            let n = last - first + 1;
            if n >= 1 && n as usize <= max {
                return (first..=last)
                    .map(|k| {
                        let v = k as f64 * step;
                        // Trim binary noise: 0.30000000000000004 -> 0.3.
                        let digits = (-e + 1).max(0) as usize;
                        format!("{v:.digits$}").parse().unwrap_or(v)
                    })
                    .collect();
            }
        }
        e += 1;
    }
}

/// A log-axis tick label: `0.05`, `2`, `500`, `1k`, `2.5k`, `10k`, `1M`, `1G`, `1T`.
pub(crate) fn tick_label(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e12 => (v / 1e12, "T"),
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    format!("{}{suffix}", trim_number(scaled))
}

/// `scaled` with up to three significant decimals and no trailing zeros.
fn trim_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 12) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64, max: usize) -> Vec<String> {
        log_ticks(lo, hi, max).into_iter().map(tick_label).collect()
    }

    #[test]
    fn peer_counts_ten_to_ten_thousand_step_one_two_five() {
        assert_eq!(
            labels(10.0, 10_000.0, 10),
            ["10", "20", "50", "100", "200", "500", "1k", "2k", "5k", "10k"]
        );
        // The padded axis of a 10..10,000 sweep gives the same ticks.
        let pad = 10f64.powf(LOG_PAD_DECADES);
        assert_eq!(
            labels(10.0 / pad, 10_000.0 * pad, 10),
            labels(10.0, 10_000.0, 10)
        );
    }

    #[test]
    fn partial_decades_keep_only_ticks_inside() {
        assert_eq!(labels(8.0, 420.0, 10), ["10", "20", "50", "100", "200"]);
        assert_eq!(
            labels(1.8, 300.0, 10),
            ["2", "5", "10", "20", "50", "100", "200"]
        );
        assert_eq!(
            labels(0.03, 2.0, 10),
            ["0.05", "0.1", "0.2", "0.5", "1", "2"]
        );
    }

    #[test]
    fn under_one_decade_uses_every_mantissa_then_linear_steps() {
        assert_eq!(labels(25.0, 85.0, 10), ["30", "40", "50", "60", "70", "80"]);
        // 1-2-5 alone would leave a single label (50) here.
        assert_eq!(log_ticks(31.0, 39.0, 5), [32.0, 34.0, 36.0, 38.0]);
        assert_eq!(log_ticks(1.01, 1.09, 5), [1.02, 1.04, 1.06, 1.08]);
        // Too many integer mantissas for the room: fall back to 1-2-5.
        assert_eq!(labels(1.1, 9.9, 4), ["2", "5"]);
    }

    #[test]
    fn wide_ranges_thin_to_powers_of_ten() {
        // 10 .. 10^6: 1-2-5 would need 16 labels.
        assert_eq!(
            labels(10.0, 1e6, 10),
            ["10", "100", "1k", "10k", "100k", "1M"]
        );
        // 10^-3 .. 10^12: sixteen powers of ten, so every second one.
        assert_eq!(
            labels(1e-3, 1e12, 10),
            ["0.01", "1", "100", "10k", "1M", "100M", "10G", "1T"]
        );
        for (lo, hi) in [(1e-3, 1e12), (3.0, 7e7), (0.2, 9e4)] {
            let t = log_ticks(lo, hi, 6);
            assert!(t.len() >= 2 && t.len() <= 6, "{lo}..{hi}: {t:?}");
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
            assert!(t.iter().all(|v| *v >= lo && *v <= hi), "{t:?}");
        }
    }

    #[test]
    fn degenerate_ranges_give_no_ticks() {
        assert!(log_ticks(0.0, 10.0, 10).is_empty());
        assert!(log_ticks(10.0, 10.0, 10).is_empty());
        assert!(log_ticks(10.0, f64::INFINITY, 10).is_empty());
    }

    #[test]
    fn labels_read_short() {
        let cases = [
            (0.05, "0.05"),
            (0.2, "0.2"),
            (1.0, "1"),
            (2.5, "2.5"),
            (20.0, "20"),
            (500.0, "500"),
            (1000.0, "1k"),
            (1500.0, "1.5k"),
            (10_000.0, "10k"),
            (200_000.0, "200k"),
            (2e6, "2M"),
            (5e9, "5G"),
        ];
        for (v, text) in cases {
            assert_eq!(tick_label(v), text, "{v}");
        }
    }

    #[test]
    fn log_only_across_a_factor_of_twenty() {
        let log = |v: &[f64]| ValueAxis::for_values(v.iter().copied()).is_log();
        assert!(log(&[10.0, 100.0, 1000.0, 10_000.0]));
        assert!(log(&[10.0, 30.0, 100.0, 300.0]));
        assert!(!log(&[10.0, 20.0, 40.0]));
        // Zeros (hub-only peer bytes) do not force a log scale.
        assert!(!log(&[0.0, 5.0, 9.0]));
        let a = ValueAxis::for_values([0.0, 2.5].into_iter());
        assert_eq!(a.format_ext(&2.5), "2.5");
    }

    #[test]
    fn log_axis_maps_decades_evenly() {
        let a = ValueAxis::for_values([10.0, 10_000.0].into_iter());
        let px = |v: f64| a.map(&v, (0, 1000));
        let (p10, p100, p1k, p10k) = (px(10.0), px(100.0), px(1000.0), px(10_000.0));
        assert!((p100 - p10 - (p1k - p100)).abs() <= 1);
        assert!((p10k - p1k - (p1k - p100)).abs() <= 1);
        assert!(p10 > 0 && p10k < 1000);
        assert_eq!(
            a.key_points(plotters::coord::ranged1d::BoldPoints(10)),
            log_ticks(a.lo, a.hi, 10)
        );
    }
}
