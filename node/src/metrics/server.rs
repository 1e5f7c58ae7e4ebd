//! The `/metrics` endpoint: plain HTTP on `--metrics-listen` (default
//! [`DEFAULT_METRICS_LISTEN`]), Prometheus text format 0.0.4.

use std::net::SocketAddr;
use std::str::FromStr;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

/// Where `/metrics` is served unless told otherwise (loopback only: the
/// endpoint has no authentication).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9070";

/// Content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `--metrics-listen`: an address, or `off` for no endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" | "none" => Ok(MetricsListen(None)),
            t => t.parse().map(|a| MetricsListen(Some(a))).map_err(|_| {
                format!(
                    "metrics address {s:?}: write IP:PORT (e.g. {DEFAULT_METRICS_LISTEN}) or off"
                )
            }),
        }
    }
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The address could not be bound (in use, not local, no permission).
    #[error(
        "cannot serve metrics on {addr}: {error} (another swarmhub may be serving metrics \
         there: pass --metrics-listen with another address, or off)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        error: std::io::Error,
    },
}

/// A running `/metrics` endpoint; dropping it stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Bind `addr` and serve `registry` at `/metrics`.
    pub async fn start(
        addr: SocketAddr,
        registry: prometheus::Registry,
    ) -> Result<MetricsServer, MetricsError> {
        let bind = |error| MetricsError::Bind { addr, error };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let app = Router::new()
            .route(
                "/metrics",
                get(move || {
                    let text = super::encode(&registry);
                    async move { ([(header::CONTENT_TYPE, TEXT_FORMAT)], text) }
                }),
            )
            .fallback(|| async {
                (StatusCode::NOT_FOUND, "only /metrics is served here\n").into_response()
            });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("metrics endpoint on {local} stopped: {e}");
            }
        });
        tracing::info!("metrics on http://{local}/metrics");
        Ok(MetricsServer { addr: local, task })
    }

    /// Start on `listen` unless it is `off`; the address is also written to
    /// `run_file` (for scripts and tests, as `api.addr` is).
    pub async fn start_optional(
        listen: MetricsListen,
        registry: &prometheus::Registry,
        run_file: &std::path::Path,
    ) -> Result<Option<MetricsServer>, MetricsError> {
        let Some(addr) = listen.0 else {
            let _ = std::fs::remove_file(run_file);
            return Ok(None);
        };
        let server = MetricsServer::start(addr, registry.clone()).await?;
        if let Err(e) = crate::paths::write_atomic(run_file, server.addr.to_string().as_bytes()) {
            tracing::warn!("{}: {e}", run_file.display());
        }
        Ok(Some(server))
    }

    /// The bound address (with the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            "127.0.0.1:9070".parse(),
            Ok(MetricsListen(Some("127.0.0.1:9070".parse().unwrap())))
        );
        assert_eq!("off".parse(), Ok(MetricsListen(None)));
        let e = "localhost".parse::<MetricsListen>().unwrap_err();
        assert!(e.contains("IP:PORT"), "{e}");
    }

    #[tokio::test]
    async fn an_address_in_use_is_an_error_naming_it() {
        let r = prometheus::Registry::new();
        let first = MetricsServer::start("127.0.0.1:0".parse().unwrap(), r.clone())
            .await
            .unwrap();
        let err = MetricsServer::start(first.addr(), r)
            .await
            .err()
            .expect("second bind must fail");
        let text = err.to_string();
        assert!(text.contains(&first.addr().to_string()), "{text}");
        assert!(text.contains("--metrics-listen"), "{text}");
    }
}
