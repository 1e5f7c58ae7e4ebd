//! The hub's `sites` setting: CIDR ranges mapped to site names. The hub looks
//! up each announcing client's address here and tells the tracker its site
//! (`Tracker::set_site`); the simulator gives sites by scenario group instead.
//!
//! Text form, as `hub config --sites` takes and prints it:
//! `10.1.0.0/16=paris, 10.2.0.0/16=london, fd00:1::/32=paris`. The longest
//! matching prefix wins, so a rack can be carved out of a building's range.

use core::fmt;
use core::net::IpAddr;

use crate::wire::MAX_SITE_LEN;

/// Why a `sites` text was refused; the message names the offending entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiteMapError {
    /// An entry is not `CIDR=SITE`.
    #[error("sites entry {entry:?}: write CIDR=SITE, e.g. 10.1.0.0/16=paris")]
    NotAPair {
        /// The entry as written.
        entry: String,
    },
    /// The range part is not a CIDR range.
    #[error("sites entry {entry:?}: {cidr:?} is not a CIDR range ({reason})")]
    BadCidr {
        /// The entry as written.
        entry: String,
        /// The range part.
        cidr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The site name is empty, too long or has a character we use as a separator.
    #[error(
        "sites entry {entry:?}: site name {site:?} must be 1 to {MAX_SITE_LEN} bytes \
         without spaces, commas or '='"
    )]
    BadSite {
        /// The entry as written.
        entry: String,
        /// The site name.
        site: String,
    },
    /// The same range is given twice.
    #[error("sites entry {entry:?}: the range is already mapped")]
    Duplicate {
        /// The entry as written.
        entry: String,
    },
}

/// One CIDR range (network address with its host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` (a bare address is a single host).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| {
                    format!("prefix length {p:?} is not a number from 0 to {max}")
                })?,
            };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// CIDR ranges to site names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteMap {
    /// Longest prefix first, so the first match is the most specific.
    entries: Vec<(Cidr, String)>,
}

impl SiteMap {
    /// Parses the text form (entries separated by commas or new lines; an
    /// empty text or `none` is the empty map).
    pub fn parse(text: &str) -> Result<SiteMap, SiteMapError> {
        let mut entries: Vec<(Cidr, String)> = Vec::new();
        if text.trim() == "none" {
            return Ok(SiteMap::default());
        }
        for entry in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let Some((cidr, site)) = entry.split_once('=') else {
                return Err(SiteMapError::NotAPair {
                    entry: entry.to_owned(),
                });
            };
            let (cidr, site) = (cidr.trim(), site.trim());
            let range = Cidr::parse(cidr).map_err(|reason| SiteMapError::BadCidr {
                entry: entry.to_owned(),
                cidr: cidr.to_owned(),
                reason,
            })?;
            let bad_char = |c: char| c.is_whitespace() || c == ',' || c == '=';
            if site.is_empty() || site.len() > MAX_SITE_LEN || site.contains(bad_char) {
                return Err(SiteMapError::BadSite {
                    entry: entry.to_owned(),
                    site: site.to_owned(),
                });
            }
            if entries.iter().any(|(r, _)| *r == range) {
                return Err(SiteMapError::Duplicate {
                    entry: entry.to_owned(),
                });
            }
            entries.push((range, site.to_owned()));
        }
        entries.sort_by(|a, b| b.0.prefix.cmp(&a.0.prefix).then(a.0.cmp(&b.0)));
        Ok(SiteMap { entries })
    }

    /// No range mapped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The site of an address: the most specific range holding it.
    pub fn site_of(&self, ip: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(r, _)| r.contains(ip))
            .map(|(_, s)| s.as_str())
    }
}

impl fmt::Display for SiteMap {
    /// The text form [`SiteMap::parse`] reads back (`none` when empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("none");
        }
        for (i, (range, site)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{range}={site}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_text_round_trips() {
        let map =
            SiteMap::parse("10.0.0.0/8=campus, 10.2.3.0/24=rack-7,fd00:1::/32=paris").unwrap();
        assert_eq!(map.site_of(ip("10.9.9.9")), Some("campus"));
        assert_eq!(map.site_of(ip("10.2.3.200")), Some("rack-7"));
        assert_eq!(map.site_of(ip("::ffff:10.2.3.4")), Some("rack-7"));
        assert_eq!(map.site_of(ip("fd00:1:ffff::1")), Some("paris"));
        assert_eq!(map.site_of(ip("192.168.1.1")), None);
        assert_eq!(map.site_of(ip("fd00:2::1")), None);
        let text = map.to_string();
        assert_eq!(
            text,
            "fd00:1::/32=paris, 10.2.3.0/24=rack-7, 10.0.0.0/8=campus"
        );
        assert_eq!(SiteMap::parse(&text).unwrap(), map);
        // Host bits are cleared; a bare address is one host; /0 is everyone.
        let map = SiteMap::parse("10.1.2.3/16=a\n192.168.0.7=b, 0.0.0.0/0=rest").unwrap();
        assert_eq!(
            map.to_string(),
            "192.168.0.7/32=b, 10.1.0.0/16=a, 0.0.0.0/0=rest"
        );
        assert_eq!(map.site_of(ip("8.8.8.8")), Some("rest"));
        assert!(SiteMap::parse("none").unwrap().is_empty());
        assert!(SiteMap::parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_entries_are_refused_by_name() {
        for (text, needle) in [
            ("10.0.0.0/33=a", "\"10.0.0.0/33\" is not a CIDR range"),
            ("10.0.0/8=a", "\"10.0.0\" is not an IPv4"),
            ("fd00::/129=a", "from 0 to 128"),
            ("10.0.0.0/8", "write CIDR=SITE"),
            ("10.0.0.0/8=", "site name \"\""),
            ("10.0.0.0/8=two words", "without spaces"),
            ("10.0.0.0/8=a, 10.0.0.0/8=b", "already mapped"),
        ] {
            let e = SiteMap::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
