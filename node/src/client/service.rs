//! `service`: seed every local image and keep announcing, until SIGINT/SIGTERM.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use swarmhub_core::metainfo::Metainfo;
use swarmhub_core::pieceset::PieceSet;

use super::{open_db, ClientConfig, ClientError};
use crate::image::ImageName;
use crate::metrics::{ClientMetrics, MetricsListen, MetricsServer, SwarmMetrics};
use crate::paths::{write_atomic, ClientPaths};
use crate::peer::{self, Announcer, Registry, SwarmHandle, SwarmSpec, Transport};
use crate::rate::Limits;
use crate::store::{self, Storage};

/// Run the service: returns after a signal, once every swarm said `stopped`.
/// With `config --enable=mirror`, the registry mirror runs inside it too.
pub async fn service(
    paths: &ClientPaths,
    peer_ports: Option<peer::PortRange>,
    up_bps: Option<u64>,
    down_bps: Option<u64>,
    metrics_listen: MetricsListen,
) -> Result<(), ClientError> {
    let cfg = ClientConfig::load(&open_db(paths)?)?;
    let metrics = Arc::new(ClientMetrics::new());
    let seeding = seed_all(
        paths,
        peer_ports,
        up_bps,
        down_bps,
        metrics.clone(),
        metrics_listen,
    );
    if !cfg.mirror {
        return seeding.await;
    }
    let listen = super::mirror::DEFAULT_LISTEN
        .parse()
        .map_err(|e| ClientError::Other(format!("{e}")))?;
    let opts = super::mirror::MirrorOptions {
        listen,
        peer_ports,
        // The service's own endpoint serves the mirror's families too.
        metrics_listen: MetricsListen(None),
    };
    super::mirror::with_seeding(super::mirror::serve(paths, &opts, metrics), seeding).await
}

/// Seed every local image until a signal, counting into `metrics` (served
/// at `metrics_listen`).
pub(crate) async fn seed_all(
    paths: &ClientPaths,
    peer_ports: Option<peer::PortRange>,
    up_bps: Option<u64>,
    down_bps: Option<u64>,
    metrics: Arc<ClientMetrics>,
    metrics_listen: MetricsListen,
) -> Result<(), ClientError> {
    let db = open_db(paths)?;
    let metrics_server = MetricsServer::start_optional(
        metrics_listen,
        metrics.registry(),
        &paths.run_file("metrics.addr"),
    )
    .await
    .map_err(|e| ClientError::Other(e.to_string()))?;
    let cfg = ClientConfig::load(&db)?;
    let hub = cfg.hub(paths).await?;
    let tcp = peer::bind_first_free(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        peer_ports.unwrap_or(cfg.peer_ports),
    )
    .await
    .map_err(|e| ClientError::Other(format!("cannot listen for peers: {e}")))?;
    let port = tcp
        .local_addr()
        .map_err(|e| ClientError::Other(e.to_string()))?
        .port();
    let run =
        |e: std::io::Error| ClientError::Other(format!("{}: {e}", paths.run_file("").display()));
    write_atomic(&paths.run_file("service.port"), port.to_string().as_bytes()).map_err(run)?;
    write_atomic(
        &paths.run_file("service.pid"),
        std::process::id().to_string().as_bytes(),
    )
    .map_err(run)?;
    let info = hub.info().await?;
    let peer_transport = super::certs::PeerTransport::new(paths, &hub, &info).await?;
    let transport: Arc<dyn Transport> = peer_transport.transport.clone();
    let registry = Registry::default();
    let listener = peer::spawn_counted_listener(
        tcp,
        transport.clone(),
        registry.clone(),
        metrics.peer_link(),
    );
    let limits = Arc::new(Limits::new(
        up_bps.unwrap_or(cfg.max_upload_bps),
        down_bps.unwrap_or(cfg.max_download_bps),
    ));
    println!("swarmhub service: seeding local images, peers on port {port}");
    if let Some(m) = &metrics_server {
        println!("swarmhub service: metrics on http://{}/metrics", m.addr());
    }
    let mut running: HashMap<String, SwarmHandle> = HashMap::new();
    let sig = super::pull::signal();
    tokio::pin!(sig);
    loop {
        for row in db.images()? {
            if running.contains_key(&row.info_hash) {
                continue;
            }
            let Ok(meta) = Metainfo::from_bytes(&row.metainfo) else {
                tracing::warn!("{}: stored metainfo is corrupt, not seeding", row.name);
                continue;
            };
            let Ok(image) = row.name.parse::<ImageName>() else {
                continue;
            };
            let dir = paths.image_dir(&image);
            match store::stamps(&dir, &meta) {
                Ok(s) if s == row.stamps => {}
                _ => {
                    tracing::warn!(
                        "{}: files changed or missing since the pull, not seeding; pull it again",
                        row.name
                    );
                    running.insert(row.info_hash.clone(), dead_handle());
                    continue;
                }
            }
            let meta = Arc::new(meta);
            let storage = match Storage::open(&dir, meta.clone(), false) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::warn!("{}: {e}", row.name);
                    continue;
                }
            };
            let spec = SwarmSpec {
                have: PieceSet::full(meta.num_pieces()),
                meta,
                storage,
                peer_id: peer::new_peer_id(peer::CLIENT_PEER_ID_PREFIX),
                listen_port: port,
                transport: transport.clone(),
                announcer: Announcer::Http {
                    client: hub.http().clone(),
                    url: hub.announce_url(),
                    key: hub.secret().unwrap_or_default().to_owned(),
                },
                limits: limits.clone(),
                registry: registry.clone(),
                hub: None,
                metrics: Some(SwarmMetrics::client(&metrics, &row.name)),
                max_peers: cfg.max_peers,
            };
            match peer::spawn_swarm(spec) {
                Ok(h) => {
                    tracing::info!("seeding {}", row.name);
                    eprintln!("seeding {}", row.name);
                    running.insert(row.info_hash.clone(), h);
                }
                Err(e) => tracing::error!("{}: cannot seed: {e}", row.name),
            }
        }
        tokio::select! {
            _ = &mut sig => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    listener.abort();
    for (_, h) in running.drain() {
        h.shutdown().await;
    }
    let _ = std::fs::remove_file(paths.run_file("service.port"));
    let _ = std::fs::remove_file(paths.run_file("service.pid"));
    if metrics_server.is_some() {
        let _ = std::fs::remove_file(paths.run_file("metrics.addr"));
    }
    Ok(())
}

/// A placeholder for an image we decided not to seed (so we do not retry every loop).
fn dead_handle() -> SwarmHandle {
    SwarmHandle::finished()
}
