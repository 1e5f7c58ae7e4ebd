//! Per-interface byte counters of the bridge namespace, from
//! `ip -n NS -s -j link show` (the lab process lives in the root namespace,
//! whose `/sys/class/net` does not show the bridge's ports).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::net::NetError;

/// Bytes an interface received and sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    /// Received (for a bridge port: what its host sent, the host's upload).
    pub rx: u64,
    /// Sent (for a bridge port: what its host received, the host's download).
    pub tx: u64,
}

#[derive(Deserialize)]
struct Link {
    ifname: String,
    stats64: Option<Stats>,
}

#[derive(Deserialize)]
struct Stats {
    rx: Dir,
    tx: Dir,
}

#[derive(Deserialize)]
struct Dir {
    bytes: u64,
}

/// Parse `ip -s -j link show` output into counters by interface name.
pub fn parse(json: &str) -> Result<BTreeMap<String, Bytes>, serde_json::Error> {
    let links: Vec<Link> = serde_json::from_str(json)?;
    Ok(links
        .into_iter()
        .filter_map(|l| {
            let s = l.stats64?;
            Some((
                l.ifname,
                Bytes {
                    rx: s.rx.bytes,
                    tx: s.tx.bytes,
                },
            ))
        })
        .collect())
}

/// Read the counters of every interface in namespace `ns`.
pub fn read(ns: &str) -> Result<BTreeMap<String, Bytes>, NetError> {
    let c: Vec<String> = ["ip", "-n", ns, "-s", "-j", "link", "show"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = crate::net::run(&c)?;
    parse(&out).map_err(|e| NetError {
        command: c.join(" "),
        message: format!("unexpected JSON: {e}"),
    })
}

/// Packets a shaper (tbf qdisc) sent and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaper {
    /// Packets sent on.
    pub packets: u64,
    /// Packets dropped (queue full).
    pub drops: u64,
}

impl Shaper {
    /// Dropped over offered (sent + dropped).
    pub fn drop_fraction(self) -> f64 {
        let offered = self.packets + self.drops;
        if offered == 0 {
            0.0
        } else {
            self.drops as f64 / offered as f64
        }
    }
}

#[derive(Deserialize)]
struct Qdisc {
    kind: String,
    #[serde(default)]
    dev: String,
    #[serde(default)]
    packets: u64,
    #[serde(default)]
    drops: u64,
}

/// Parse `tc -s -j qdisc show` output into the tbf shapers by device.
pub fn parse_shapers(json: &str) -> Result<BTreeMap<String, Shaper>, serde_json::Error> {
    let qdiscs: Vec<Qdisc> = serde_json::from_str(json)?;
    let mut out = BTreeMap::new();
    for q in qdiscs.into_iter().filter(|q| q.kind == "tbf") {
        let s: &mut Shaper = out.entry(q.dev).or_default();
        s.packets += q.packets;
        s.drops += q.drops;
    }
    Ok(out)
}

/// Read the tbf shapers of namespace `ns` (or of one device in it).
pub fn read_shapers(ns: &str, dev: Option<&str>) -> Result<BTreeMap<String, Shaper>, NetError> {
    let mut c: Vec<String> = ["tc", "-n", ns, "-s", "-j", "qdisc", "show"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(d) = dev {
        c.extend(["dev".to_string(), d.to_string()]);
    }
    let out = crate::net::run(&c)?;
    let mut shapers = parse_shapers(&out).map_err(|e| NetError {
        command: c.join(" "),
        message: format!("unexpected JSON: {e}"),
    })?;
    // `show dev D` leaves the device out of each entry.
    if let (Some(d), Some(s)) = (dev, shapers.remove("")) {
        shapers.insert(d.to_string(), s);
    }
    Ok(shapers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_by_interface() {
        let json = r#"[{"ifindex":1,"ifname":"lo","stats64":{"rx":{"bytes":5,"packets":1},"tx":{"bytes":5,"packets":1}}},
            {"ifindex":4,"ifname":"v3","link_netnsid":2,"stats64":{"rx":{"bytes":1200,"errors":0},"tx":{"bytes":987654321,"errors":0}}},
            {"ifindex":5,"ifname":"br0"}]"#;
        let c = parse(json).expect("parse");
        assert_eq!(
            c["v3"],
            Bytes {
                rx: 1200,
                tx: 987_654_321
            }
        );
        assert_eq!(c.len(), 2, "interfaces without stats are skipped");
        assert!(parse("not json").is_err());
    }

    #[test]
    fn shapers_are_tbf_qdiscs_by_device() {
        let json = r#"[{"kind":"noqueue","handle":"0:","dev":"br0","bytes":0,"packets":9,"drops":4},
            {"kind":"tbf","handle":"8226:","dev":"v1","root":true,"options":{"rate":625000},"bytes":90,"packets":1000,"drops":100},
            {"kind":"tbf","handle":"8227:","dev":"v2","bytes":0,"packets":0,"drops":0}]"#;
        let s = parse_shapers(json).expect("parse");
        assert_eq!(s.len(), 2, "only tbf qdiscs count");
        assert_eq!(
            s["v1"],
            Shaper {
                packets: 1000,
                drops: 100
            }
        );
        assert!((s["v1"].drop_fraction() - 100.0 / 1100.0).abs() < 1e-12);
        assert_eq!(s["v2"].drop_fraction(), 0.0);
        assert!(parse_shapers("[{").is_err());
    }
}
