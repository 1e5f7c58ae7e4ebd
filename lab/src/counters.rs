//! Per-interface byte counters of the bridge namespace, from
//! `ip -n NS -s -j link show` (the lab process lives in the root namespace,
//! whose `/sys/class/net` does not show the bridge's ports).

use std::collections::BTreeMap;

use serde::Deserialize;

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
pub fn read(ns: &str) -> Result<BTreeMap<String, Bytes>, crate::net::NetError> {
    let c: Vec<String> = ["ip", "-n", ns, "-s", "-j", "link", "show"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = crate::net::run(&c)?;
    parse(&out).map_err(|e| crate::net::NetError {
        command: c.join(" "),
        message: format!("unexpected JSON: {e}"),
    })
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
}
