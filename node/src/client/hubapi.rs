//! The client side of the hub's HTTP API.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use swarmhub_core::Id20;

use crate::hub::admin::ImageInfo;
use crate::hub::api::{CaResponse, EnrollResponse, HubInfo, KeysResponse, RenewResponse};
use crate::hub::AUTH_HEADER;
use crate::image::ImageName;
use crate::peer::announce::read_limited;
use crate::tls::creds::KeyStore;
use crate::util::hex;

/// Largest metainfo accepted from the hub.
const MAX_METAINFO: usize = 64 << 20;

/// A failed hub call, naming the hub and what it said.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The URL is not usable.
    #[error("hub URL {0:?} is not valid: use https://HOST:PORT")]
    BadUrl(String),
    /// No answer.
    #[error("hub {url} unreachable: {detail}")]
    Unreachable {
        /// URL called.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The hub refused.
    #[error("hub refused {what} (HTTP {status}): {message}")]
    Refused {
        /// The call.
        what: String,
        /// HTTP status.
        status: u16,
        /// The hub's message.
        message: String,
    },
    /// The answer made no sense.
    #[error("hub answer to {what} is invalid: {detail}")]
    BadAnswer {
        /// The call.
        what: String,
        /// What is wrong.
        detail: String,
    },
}

/// A connection to one hub.
#[derive(Clone, Debug)]
pub struct HubClient {
    base: String,
    secret: Option<String>,
    http: reqwest::Client,
    keys: Option<Arc<KeyStore>>,
}

impl HubClient {
    /// A client for `url` (`https://hub:7070`) speaking TLS as `tls` says,
    /// with a secret and the certificate store `keys` when enrolled.
    pub fn new(
        url: &str,
        secret: Option<String>,
        tls: rustls::ClientConfig,
        keys: Option<Arc<KeyStore>>,
    ) -> Result<Self, HubError> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|_| HubError::BadUrl(url.to_owned()))?;
        if parsed.scheme() != "https" || parsed.host().is_none() {
            return Err(HubError::BadUrl(url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| HubError::Unreachable {
                url: base.clone(),
                detail: e.to_string(),
            })?;
        Ok(HubClient {
            base,
            secret,
            http,
            keys,
        })
    }

    /// The certificate this client presents (shared with the peer transport,
    /// so a renewal reaches both).
    pub fn keys(&self) -> Option<&Arc<KeyStore>> {
        self.keys.as_ref()
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The client secret.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// The HTTP client (shared with announces).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The tracker's announce URL.
    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.base)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.get(format!("{}{path}", self.base));
        match &self.secret {
            Some(s) => r.header(AUTH_HEADER, format!("Bearer {s}")),
            None => r,
        }
    }

    async fn send(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<Vec<u8>, HubError> {
        let resp = req.send().await.map_err(|e| HubError::Unreachable {
            url: self.base.clone(),
            detail: e.to_string(),
        })?;
        let status = resp.status();
        let body = read_limited(resp, max)
            .await
            .map_err(|detail| HubError::BadAnswer {
                what: what.to_owned(),
                detail,
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(HubError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, HubError> {
        let body = self.send(what, req, 4 << 20).await?;
        serde_json::from_slice(&body).map_err(|e| HubError::BadAnswer {
            what: what.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Trade an enrollment key for a client secret.
    pub async fn enroll(&self, key: &str, csr: &str) -> Result<EnrollResponse, HubError> {
        let req = self
            .http
            .post(format!("{}/api/v1/enroll", self.base))
            .json(&serde_json::json!({ "key": key, "csr": csr }));
        self.json("enrollment", req).await
    }

    /// The key each enrolled identity's certificates must carry.
    pub async fn cert_keys(&self) -> Result<KeysResponse, HubError> {
        self.json("certificate keys", self.get("/api/v1/keys"))
            .await
    }

    /// The hub CA certificate, to pin.
    pub async fn ca(&self) -> Result<CaResponse, HubError> {
        let req = self.http.get(format!("{}/api/v1/ca", self.base));
        self.json("CA certificate", req).await
    }

    /// A new certificate for the key in `csr` (PEM).
    pub async fn renew(&self, csr: &str) -> Result<String, HubError> {
        let mut req = self
            .http
            .post(format!("{}/api/v1/renew", self.base))
            .json(&serde_json::json!({ "csr": csr }));
        if let Some(s) = &self.secret {
            req = req.header(AUTH_HEADER, format!("Bearer {s}"));
        }
        let r: RenewResponse = self.json("certificate renewal", req).await?;
        Ok(r.certificate)
    }

    /// Hub facts (seeder port, switches).
    pub async fn info(&self) -> Result<HubInfo, HubError> {
        self.json("info", self.get("/api/v1/info")).await
    }

    /// The hub's images.
    pub async fn images(&self) -> Result<Vec<ImageInfo>, HubError> {
        self.json("image list", self.get("/api/v1/images")).await
    }

    /// The metainfo of an image.
    pub async fn metainfo(&self, image: &ImageName) -> Result<Vec<u8>, HubError> {
        let what = format!("metainfo of {image}");
        self.send(
            &what,
            self.get(&format!("/api/v1/images/{image}/metainfo")),
            MAX_METAINFO,
        )
        .await
    }

    /// Image bytes `first ..= last` from the web seed.
    pub async fn range(
        &self,
        info_hash: &Id20,
        first: u64,
        last: u64,
    ) -> Result<Vec<u8>, HubError> {
        let req = self
            .get(&format!("/webseed/{}", hex(&info_hash.0)))
            .header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
        let body = self
            .send("web seed range", req, (last - first + 1) as usize)
            .await?;
        if body.len() as u64 != last - first + 1 {
            return Err(HubError::BadAnswer {
                what: "web seed range".into(),
                detail: format!("{} bytes instead of {}", body.len(), last - first + 1),
            });
        }
        Ok(body)
    }

    /// A raw GET for doctor checks: status and body.
    pub async fn raw_get(&self, path_and_query: &str) -> Result<(u16, Vec<u8>), HubError> {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .map_err(|e| HubError::Unreachable {
                url: self.base.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, 1 << 20)
            .await
            .map_err(|detail| HubError::BadAnswer {
                what: path_and_query.to_owned(),
                detail,
            })?;
        Ok((status, body))
    }
}
