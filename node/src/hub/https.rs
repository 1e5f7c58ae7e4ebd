//! The hub API over HTTPS: a TLS accept loop in front of the axum router.
//! Each connection carries the identity of its verified client certificate
//! (if it sent one) to the handlers in [`super::api::ConnInfo`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::api::ConnInfo;
use super::counters::HubCounters;
use crate::metrics::LinkMetrics;
use crate::tls::{cert_facts, cert_key};

/// Time a client has to finish the TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get to finish at shutdown.
const GRACE: Duration = Duration::from_secs(2);

/// Serve `app` over TLS on `listener` until `stop` turns true, counting
/// connections and failed handshakes in `metrics`.
pub(super) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    counters: Arc<HubCounters>,
    mut stop: watch::Receiver<bool>,
    metrics: LinkMetrics,
) {
    let mut conns = JoinSet::new();
    loop {
        let (tcp, remote) = tokio::select! {
            () = async { drop(stop.wait_for(|s| *s).await) } => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        metrics.accepted();
        let (acceptor, app, counters, metrics) = (
            acceptor.clone(),
            app.clone(),
            counters.clone(),
            metrics.clone(),
        );
        conns.spawn(async move {
            let local = tcp.local_addr().ok();
            let tls = match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    counters.tls_refused();
                    tracing::info!("API: TLS from {remote} refused: {e}");
                    metrics.tls_failed(crate::tls::handshake_failure_reason(&e));
                    return;
                }
                Err(_) => {
                    counters.tls_refused();
                    tracing::info!("API: TLS from {remote} timed out");
                    metrics.tls_failed("timeout");
                    return;
                }
            };
            let _open = counters.api_connection();
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            let facts = cert.and_then(|c| cert_facts(c).ok());
            let info = ConnInfo {
                remote,
                local,
                cert_not_after: facts.as_ref().map(|f| f.not_after),
                identity: facts.map(|f| f.identity.into()),
                cert_key: cert.and_then(|c| cert_key(c).ok()).map(Into::into),
            };
            let svc = TowerToHyperService::new(app.layer(Extension(ConnectInfo(info))));
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!("API: connection from {remote}: {e}");
            }
        });
        while conns.try_join_next().is_some() {}
    }
    let drain = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(GRACE, drain).await;
    conns.abort_all();
}
