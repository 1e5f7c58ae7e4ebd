//! How a swarm reaches its tracker: HTTP for clients, a direct call for the
//! hub's own seeder.

use std::sync::Arc;

use swarmhub_core::node::AnnounceParams;
use swarmhub_core::tracker::http::{announce_query, decode_announce_response, MAX_BODY_LEN};
use swarmhub_core::tracker::AnnounceResponse;
use swarmhub_core::Id20;

use super::BoxFuture;

/// An in-process tracker call.
pub type LocalAnnounce =
    dyn Fn(Id20, Id20, AnnounceParams) -> Result<AnnounceResponse, String> + Send + Sync;

/// A swarm's way to announce.
#[derive(Clone)]
pub enum Announcer {
    /// `GET {url}?<announce query>`, the client secret in the
    /// `authorization` header (never in the URL: the standard `key`
    /// parameter is a stock client's random value, and URLs get logged).
    Http {
        /// HTTP client.
        client: reqwest::Client,
        /// The announce URL, e.g. `https://hub:7070/announce`.
        url: String,
        /// The client secret (passkey).
        key: String,
    },
    /// Call the tracker directly (the hub seeder).
    Local(Arc<LocalAnnounce>),
}

impl Announcer {
    /// Announce `params` for `info_hash` as `peer_id`.
    pub fn announce(
        &self,
        info_hash: Id20,
        peer_id: Id20,
        params: AnnounceParams,
    ) -> BoxFuture<Result<AnnounceResponse, String>> {
        match self {
            Announcer::Local(f) => {
                let r = f(info_hash, peer_id, params);
                Box::pin(async move { r })
            }
            Announcer::Http { client, url, key } => {
                let req =
                    params.to_request(info_hash, peer_id, std::net::Ipv4Addr::UNSPECIFIED.into());
                let full = format!("{url}?{}", announce_query(&req));
                let client = client.clone();
                let key = key.clone();
                Box::pin(async move { http_announce(client, full, key).await })
            }
        }
    }
}

async fn http_announce(
    client: reqwest::Client,
    url: String,
    key: String,
) -> Result<AnnounceResponse, String> {
    let mut req = client.get(&url);
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let resp = req
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| format!("tracker unreachable: {e}"))?;
    let status = resp.status();
    let body = read_limited(resp, MAX_BODY_LEN).await?;
    match decode_announce_response(&body) {
        Ok(r) => Ok(r),
        Err(e) => Err(format!("HTTP {status}: {e}")),
    }
}

/// Read a response body of at most `max` bytes.
pub async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("answer is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
