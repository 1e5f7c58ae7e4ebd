//! The hub API over HTTPS: a TLS accept loop in front of the axum router.
//! Each connection carries the identity of its verified client certificate
//! (if it sent one) to the handlers in [`super::api::ConnInfo`].
//!
//! `GET /announce`, the one request clients send tens of thousands of times
//! a second, is answered by [`super::api::announce_reply`] on the connection
//! itself, before the router (whose routing, extractors, middleware and boxed
//! bodies cost about as much as the tracker's work); the connection also keeps
//! what its announces were authenticated as ([`super::api::AnnounceAuth`]).
//! Every other request goes through the router.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Method, Request, Response};
use axum::{Extension, Router};
use bytes::Bytes;
use futures_util::future::{ready, BoxFuture, Either, Ready};
use http_body_util::{Either as EitherBody, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::api::{announce_reply, bearer, AnnounceAuth, ConnInfo};
use super::counters::HubCounters;
use super::serve::HubState;
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
    state: Arc<HubState>,
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
        let (acceptor, app, state, counters, metrics) = (
            acceptor.clone(),
            app.clone(),
            state.clone(),
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
            let router = TowerToHyperService::new(app.layer(Extension(ConnectInfo(info.clone()))));
            let conn = Arc::new(Conn {
                state,
                info,
                announces: std::sync::Mutex::new(AnnounceAuth::default()),
            });
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| -> ConnFuture {
                if req.method() == Method::GET && req.uri().path() == "/announce" {
                    Either::Left(ready(Ok(conn.announce(&req))))
                } else {
                    let routed = hyper::service::Service::call(&router, req);
                    Either::Right(Box::pin(
                        async move { Ok(routed.await?.map(EitherBody::Right)) },
                    ))
                }
            });
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

/// What a connection's requests share: the hub, the connection's identity
/// and its announces' cached authentication.
struct Conn {
    state: Arc<HubState>,
    info: ConnInfo,
    /// Locked by one request at a time (a connection's requests are
    /// answered in order), so never contended.
    announces: std::sync::Mutex<AnnounceAuth>,
}

/// A response of the connection: the fast path's bencoded body or the router's.
type ConnBody = EitherBody<Full<Bytes>, axum::body::Body>;

/// The connection's service future: ready (announces) or the router's.
type ConnFuture = Either<
    Ready<Result<Response<ConnBody>, Infallible>>,
    BoxFuture<'static, Result<Response<ConnBody>, Infallible>>,
>;

impl Conn {
    /// `GET /announce`, as the router's handler answers it, timed into the
    /// same request-duration metric.
    fn announce(&self, req: &Request<Incoming>) -> Response<ConnBody> {
        let start = std::time::Instant::now();
        // The cache is only ever replaced whole, so a poisoned lock still
        // holds a consistent entry.
        let mut cache = self.announces.lock().unwrap_or_else(|p| p.into_inner());
        let (status, body) = announce_reply(
            &self.state,
            &self.info,
            &mut cache,
            req.uri().query().unwrap_or_default(),
            bearer(req.headers()),
        );
        drop(cache);
        let mut resp = Response::new(EitherBody::Left(Full::new(Bytes::from(body))));
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        self.state
            .metrics
            .observe_request("announce", start.elapsed().as_secs_f64());
        resp
    }
}
