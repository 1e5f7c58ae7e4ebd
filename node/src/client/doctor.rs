//! `doctor`: the checks an operator would otherwise run by hand, one line each.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use swarmhub_core::tracker::http::{announce_query, decode_announce_response};
use swarmhub_core::tracker::{AnnounceEvent, AnnounceRequest};
use swarmhub_core::Id20;

use super::{open_db, ClientConfig, ClientError, HubClient};
use crate::paths::ClientPaths;
use crate::peer;
use crate::util::unhex;

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Passed.
    pub ok: bool,
    /// Name of the check.
    pub name: &'static str,
    /// What was found.
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = if self.ok { "PASS" } else { "FAIL" };
        write!(f, "{tag} {}: {}", self.name, self.detail)
    }
}

fn check(ok: bool, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        ok,
        name,
        detail: detail.into(),
    }
}

/// Run every check, printing each line as it completes; returns them all.
pub async fn doctor(paths: &ClientPaths) -> Result<Vec<Check>, ClientError> {
    let mut out = Vec::new();
    let mut emit = |c: Check| {
        println!("{c}");
        out.push(c);
    };
    let db = open_db(paths)?;
    let cfg = ClientConfig::load(&db)?;
    let hub = match cfg.hub(paths).await {
        Ok(hub) => hub,
        Err(ClientError::NotLoggedIn) => {
            emit(check(
                false,
                "configuration",
                "not logged in: run `swarmhub login HUB_URL --key KEY --fingerprint FP`",
            ));
            return Ok(out);
        }
        Err(e) => {
            emit(check(false, "client certificate", e.to_string()));
            return Ok(out);
        }
    };
    emit(check(
        true,
        "configuration",
        format!(
            "hub {}, identity {}, peer-to-peer download {}, peer ports {}",
            hub.base(),
            cfg.identity.as_deref().unwrap_or("?"),
            if cfg.p2p_download {
                "Enabled"
            } else {
                "Disabled"
            },
            cfg.peer_ports
        ),
    ));
    let info = match hub.info().await {
        Ok(i) => {
            emit(check(
                true,
                "hub API",
                format!(
                    "{} answers (version {}, peer-to-peer {})",
                    hub.base(),
                    i.version,
                    if i.p2p { "on" } else { "off" }
                ),
            ));
            Some(i)
        }
        Err(e) => {
            emit(check(false, "hub API", e.to_string()));
            None
        }
    };
    emit(certificate_check(paths));
    if let Some(info) = &info {
        if info.peer_tls {
            emit(check(
                true,
                "peer TLS",
                "on: peer links are mutual TLS with hub-issued certificates",
            ));
        } else {
            eprintln!("{}", crate::hub::PEER_TLS_OFF_WARNING);
            emit(check(false, "peer TLS", crate::hub::PEER_TLS_OFF_WARNING));
        }
    }
    emit(tracker_check(&hub).await);
    if let Some(info) = &info {
        emit(seeder_check(&hub, info.seed_port).await);
    }
    emit(listen_check(paths, cfg.peer_ports).await);
    for c in super::mirror_setup::doctor_checks(paths).await {
        emit(c);
    }
    Ok(out)
}

fn certificate_check(paths: &ClientPaths) -> Check {
    let name = "client certificate";
    let files = super::certs::files(paths);
    if !files.exist() {
        return check(
            false,
            name,
            "none: log in again with `swarmhub login HUB_URL --key KEY --fingerprint FP`",
        );
    }
    match files.load() {
        Err(e) => check(false, name, e.to_string()),
        Ok(c) => {
            let now = std::time::SystemTime::now();
            let left = c.facts.left(now).as_secs();
            let ca = crate::tls::fingerprint(&c.ca);
            if left == 0 {
                check(
                    false,
                    name,
                    format!(
                        "{} expired; `swarmhub pull` or `swarmhub service` renews it (hub CA {ca})",
                        c.facts.identity
                    ),
                )
            } else {
                check(
                    true,
                    name,
                    format!(
                        "{}, {} h {} min left{}, hub CA {ca}",
                        c.facts.identity,
                        left / 3600,
                        left % 3600 / 60,
                        if c.facts.needs_renewal(now) {
                            " (due for renewal)"
                        } else {
                            ""
                        }
                    ),
                )
            }
        }
    }
}

async fn tracker_check(hub: &HubClient) -> Check {
    let image = hub.images().await.ok().and_then(|l| l.into_iter().next());
    let info_hash = image
        .as_ref()
        .and_then(|i| unhex(&i.info_hash))
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .map_or(Id20::new([0; 20]), Id20::new);
    let req = AnnounceRequest {
        info_hash,
        peer_id: peer::new_peer_id(peer::CLIENT_PEER_ID_PREFIX),
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: AnnounceEvent::Stopped,
        numwant: Some(0),
        compact: true,
    };
    // Authenticated by the client certificate; no secret in the URL.
    let q = format!("/announce?{}", announce_query(&req));
    match hub.raw_get(&q).await {
        Err(e) => check(false, "tracker", e.to_string()),
        Ok((status, body)) => match (status, decode_announce_response(&body)) {
            (200, Ok(_)) => check(
                true,
                "tracker",
                format!(
                    "answered an announce for {}",
                    image.map_or("(no image)".to_owned(), |i| i.name)
                ),
            ),
            (404, Err(e)) if image.is_none() => check(
                true,
                "tracker",
                format!("answered (the hub has no images yet: {e})"),
            ),
            (403, Err(e))
                if e.to_string()
                    .contains("peer-to-peer distribution is disabled") =>
            {
                check(
                    true,
                    "tracker",
                    "answered: peer-to-peer is disabled on the hub, pulls use HTTP",
                )
            }
            (s, Err(e)) => check(false, "tracker", format!("HTTP {s}: {e}")),
            (s, Ok(_)) => check(false, "tracker", format!("unexpected HTTP {s}")),
        },
    }
}

async fn seeder_check(hub: &HubClient, port: u16) -> Check {
    let host = reqwest::Url::parse(hub.base())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let target = format!("{host}:{port}");
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(target.as_str()).await {
        Ok(a) => a.collect(),
        Err(e) => {
            return check(
                false,
                "hub seeder port",
                format!("cannot resolve {target}: {e}"),
            )
        }
    };
    for addr in &addrs {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await
        {
            return check(
                true,
                "hub seeder port",
                format!("{addr} accepts connections"),
            );
        }
    }
    check(
        false,
        "hub seeder port",
        format!("{target} does not accept TCP connections (firewall?)"),
    )
}

async fn listen_check(paths: &ClientPaths, ports: peer::PortRange) -> Check {
    let port = ports.first;
    if port == 0 {
        return check(true, "local listen port", "any free port (0)");
    }
    match tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await {
        Ok(_) => check(true, "local listen port", format!("{port} is free")),
        Err(e) => {
            let ours = std::fs::read_to_string(paths.run_file("service.port"))
                .ok()
                .map(|s| s.trim().to_owned());
            let pid = std::fs::read_to_string(paths.run_file("service.pid"))
                .ok()
                .map(|s| s.trim().to_owned());
            let alive = pid
                .as_ref()
                .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
            if ours.as_deref() == Some(&port.to_string()) && alive {
                check(
                    true,
                    "local listen port",
                    format!(
                        "{port} is in use by our service (pid {})",
                        pid.unwrap_or_default()
                    ),
                )
            } else {
                check(false, "local listen port", format!("{port} is taken by another program ({e}); set another range with `swarmhub config --peer-ports`"))
            }
        }
    }
}
