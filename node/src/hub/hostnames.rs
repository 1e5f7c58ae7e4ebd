//! The names and addresses the hub is reached by (`hub config --hostname`),
//! which its server certificate carries as subject alternative names, so a
//! browser, curl or a stock client that trusts the hub CA verifies it.

use std::net::{IpAddr, SocketAddr};

/// Setting key: comma-separated host names and addresses (unset: the default).
pub const SETTING_HOSTNAME: &str = "hostname";

/// One name the hub's certificate carries.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostName {
    /// A DNS name (`hub.example.org`, `localhost`).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostName::Dns(d) => f.write_str(d),
            HostName::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Parse one name: an IP address or a DNS name of letters, digits, `-` and
/// dots (a leading `*.` wildcard allowed), at most 253 characters.
pub fn parse_hostname(s: &str) -> Result<HostName, String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(HostName::Ip(ip.to_canonical()));
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if s.is_empty() || s.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "host name {s:?}: use an IP address or a DNS name of letters, digits, '-' and '.'"
        ));
    }
    Ok(HostName::Dns(s.to_ascii_lowercase()))
}

/// Parse a comma-separated list (`default` or empty: `None`, the default).
pub fn parse_list(s: &str) -> Result<Option<Vec<HostName>>, String> {
    let s = s.trim();
    if s.is_empty() || s == "default" {
        return Ok(None);
    }
    let mut names = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let n = parse_hostname(part)?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return Err(format!("--hostname {s:?}: give at least one name"));
    }
    Ok(Some(names))
}

/// The list as stored and shown: `a, b, c`.
pub fn list_text(names: &[HostName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// This machine's host name, if it has one.
pub fn machine_hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    match parse_hostname(raw.trim()) {
        Ok(HostName::Dns(d)) => Some(d),
        _ => None,
    }
}

/// The default: the machine's host name, the `--listen` address (unless it
/// is the unspecified address), `localhost` and 127.0.0.1.
pub fn default_names(listen: Option<SocketAddr>) -> Vec<HostName> {
    let mut names = Vec::new();
    if let Some(h) = machine_hostname() {
        names.push(HostName::Dns(h));
    }
    if let Some(ip) = listen.map(|a| a.ip().to_canonical()) {
        if !ip.is_unspecified() {
            names.push(HostName::Ip(ip));
        }
    }
    names.push(HostName::Dns("localhost".to_owned()));
    names.push(HostName::Ip(IpAddr::from([127, 0, 0, 1])));
    names.dedup();
    let mut seen = Vec::new();
    names.retain(|n| {
        let fresh = !seen.contains(n);
        seen.push(n.clone());
        fresh
    });
    names
}

/// The names the certificate carries: the setting, or else the default.
pub fn effective(setting: Option<&[HostName]>, listen: Option<SocketAddr>) -> Vec<HostName> {
    setting.map_or_else(|| default_names(listen), <[HostName]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_ones_are_named() {
        let l = parse_list("hub.example.org, 10.0.0.5,[::1],HUB2").expect("parse");
        assert_eq!(
            l,
            Some(vec![
                HostName::Dns("hub.example.org".into()),
                HostName::Ip("10.0.0.5".parse().unwrap()),
                HostName::Ip("::1".parse().unwrap()),
                HostName::Dns("hub2".into()),
            ])
        );
        assert_eq!(parse_list("default").expect("default"), None);
        for bad in ["a b", "x/y", "-a.b", "a..b"] {
            let e = parse_list(bad).expect_err(bad);
            assert!(e.contains(bad.split(',').next().unwrap_or(bad)), "{e}");
        }
        let d = default_names(Some("10.1.2.3:7070".parse().unwrap()));
        assert!(d.contains(&HostName::Ip("10.1.2.3".parse().unwrap())));
        assert!(d.contains(&HostName::Dns("localhost".into())));
        let d = default_names(Some("0.0.0.0:7070".parse().unwrap()));
        assert!(!d.contains(&HostName::Ip("0.0.0.0".parse().unwrap())));
    }
}
