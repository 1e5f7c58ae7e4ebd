//! Quantities with units as scenario files write them: sizes ("1 GiB"), rates
//! ("100 Mbit/s") and durations ("30s"). Each parses from a string and, for
//! convenience, sizes and durations also from a bare number (bytes, seconds).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Why a quantity did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a {kind}: {hint}")]
pub struct UnitError {
    input: String,
    kind: &'static str,
    hint: &'static str,
}

fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let num: f64 = num.replace('_', "").parse().ok()?;
    (num.is_finite() && num >= 0.0).then_some((num, unit.trim()))
}

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError {
            input: s.to_string(),
            kind: "size",
            hint:
                "write a number and one of B, KiB, MiB, GiB, TiB, kB, MB, GB, TB (e.g. \"1 GiB\")",
        };
        let (n, unit) = split_number(s).ok_or_else(err)?;
        let mult: f64 = match unit {
            "" | "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            "TiB" => 1024.0f64.powi(4),
            "kB" | "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            _ => return Err(err()),
        };
        let bytes = n * mult;
        if bytes > u64::MAX as f64 / 2.0 {
            return Err(err());
        }
        Ok(Size(bytes.round() as u64))
    }
}

/// A data rate in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default, serde::Serialize)]
pub struct Rate(pub f64);

impl Rate {
    /// Bytes per second.
    pub fn bytes_per_s(self) -> f64 {
        self.0 / 8.0
    }
}

impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || {
            UnitError {
            input: s.to_string(),
            kind: "rate",
            hint: "write a number and one of bit/s, kbit/s, Mbit/s, Gbit/s, B/s, kB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s (e.g. \"100 Mbit/s\")",
        }
        };
        let (n, unit) = split_number(s).ok_or_else(err)?;
        let bits = swarmhub_core::settings::rate_unit_bits(unit).ok_or_else(err)?;
        let r = n * bits;
        if r <= 0.0 {
            return Err(UnitError {
                input: s.to_string(),
                kind: "rate",
                hint: "a rate must be above zero",
            });
        }
        Ok(Rate(r))
    }
}

/// A span of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub swarmhub_core::Duration);

impl Dur {
    /// Seconds.
    pub fn secs(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl FromStr for Dur {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError {
            input: s.to_string(),
            kind: "duration",
            hint: "write a number and one of us, ms, s, m, h, d (e.g. \"30s\", \"20ms\")",
        };
        let (n, unit) = split_number(s).ok_or_else(err)?;
        let secs = match unit {
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" | "" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            _ => return Err(err()),
        };
        if secs > 1e9 {
            return Err(err());
        }
        Ok(Dur(swarmhub_core::Duration::from_secs_f64(secs)))
    }
}

macro_rules! deserialize_unit {
    ($ty:ty, $expect:literal, $from_num:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$ty, E> {
                        if n < 0 {
                            return Err(E::custom(format!("{n} is negative")));
                        }
                        #[allow(clippy::redundant_closure_call)]
                        ($from_num)(n as f64).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, n: u64) -> Result<$ty, E> {
                        #[allow(clippy::redundant_closure_call)]
                        ($from_num)(n as f64).map_err(E::custom)
                    }
                    fn visit_f64<E: de::Error>(self, n: f64) -> Result<$ty, E> {
                        if !(n.is_finite() && n >= 0.0) {
                            return Err(E::custom(format!("{n} is not a non-negative number")));
                        }
                        #[allow(clippy::redundant_closure_call)]
                        ($from_num)(n).map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

deserialize_unit!(
    Size,
    "a size such as \"1 GiB\" or a number of bytes",
    |n: f64| { Ok::<_, String>(Size(n as u64)) }
);
deserialize_unit!(Rate, "a rate such as \"100 Mbit/s\"", |_n: f64| {
    Err::<Rate, _>("a rate needs a unit, e.g. \"100 Mbit/s\"".to_string())
});
deserialize_unit!(
    Dur,
    "a duration such as \"30s\" or a number of seconds",
    |n: f64| { Ok::<_, String>(Dur(swarmhub_core::Duration::from_secs_f64(n))) }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!("1 GiB".parse::<Size>().unwrap(), Size(1 << 30));
        assert_eq!("512KiB".parse::<Size>().unwrap(), Size(512 << 10));
        assert_eq!("1.5 MB".parse::<Size>().unwrap(), Size(1_500_000));
        assert!("1 parsec".parse::<Size>().is_err());
        assert!("-1 GiB".parse::<Size>().is_err());
    }

    #[test]
    fn rates_are_bits_per_second() {
        assert_eq!("100 Mbit/s".parse::<Rate>().unwrap(), Rate(1e8));
        assert_eq!("10 MB/s".parse::<Rate>().unwrap(), Rate(8e7));
        assert!("0 Mbit/s".parse::<Rate>().is_err());
        assert!("100 Mbit".parse::<Rate>().is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!("20ms".parse::<Dur>().unwrap().0.as_micros(), 20_000);
        assert_eq!("2h".parse::<Dur>().unwrap().secs(), 7200.0);
        assert!("soon".parse::<Dur>().is_err());
    }
}
