//! A client of the OCI distribution (Docker Registry HTTP API v2) read API:
//! manifests and blobs, with bearer-token and basic authentication.
//! HTTPS unless the caller allows plain HTTP (`--insecure-registry`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use oci_spec::image::{Descriptor, MediaType};
use tokio::io::AsyncWriteExt;

use super::digest::{Hasher, Sha256Digest};
use super::reference::ImageRef;
use super::walk::{ManifestSource, WalkError};
use super::{media, MAX_MANIFEST_BYTES};
use crate::peer::announce::read_limited;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No answer.
    #[error("registry {url}: {detail}")]
    Unreachable {
        /// URL called.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The registry said no.
    #[error("registry refused GET {url} (HTTP {status}): {body}")]
    Refused {
        /// URL called.
        url: String,
        /// Status.
        status: u16,
        /// Its error text.
        body: String,
    },
    /// Something the registry sent is wrong.
    #[error("registry answer to {url}: {detail}")]
    BadAnswer {
        /// URL called.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// Credentials could not be read.
    #[error("{0}")]
    Credentials(String),
}

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Explicit credentials (`--username`, `--password-stdin`).
    pub credentials: Option<Credentials>,
    /// A Docker config file to take credentials from (default
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
}

/// The credentials a Docker config file holds for `registry`, if any.
pub fn docker_config_credentials(
    file: &Path,
    registry: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::Credentials(format!(
                "{}: {e}",
                file.display()
            )))
        }
    };
    let bad = |d: &str| RegistryError::Credentials(format!("{}: {d}", file.display()));
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|_| bad("not JSON"))?;
    let keys: Vec<String> = if matches!(registry, "docker.io" | "index.docker.io") {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            registry.to_owned(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    };
    let Some(entry) = keys.iter().find_map(|k| v.get("auths")?.get(k)) else {
        return Ok(None);
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .map_err(|_| bad("an `auth` entry is not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| bad("an `auth` entry is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad("an `auth` entry is not USER:PASSWORD"))?;
        return Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        }));
    }
    match (
        entry.get("username").and_then(|x| x.as_str()),
        entry.get("password").and_then(|x| x.as_str()),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        })),
        _ => Ok(None),
    }
}

/// The default Docker config file.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// `key="value"` pairs of a `WWW-Authenticate` challenge, with its scheme.
pub fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut escaped = false;
            for c in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    _ => {
                        escaped = false;
                        value.push(c);
                    }
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
    (scheme.to_ascii_lowercase(), out)
}

/// How requests authenticate, once a challenge was answered.
#[derive(Clone, Debug)]
enum Auth {
    None,
    Bearer(String),
    Basic,
}

/// A client for one repository of one registry.
#[derive(Debug)]
pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    auth: tokio::sync::Mutex<Auth>,
}

impl RegistryClient {
    /// A client for the repository of `r`.
    pub fn new(r: &ImageRef, opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let scheme = if opts.insecure { "http" } else { "https" };
        let base = format!("{scheme}://{}", r.api_host());
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => match opts.docker_config.clone().or_else(default_docker_config) {
                Some(file) => docker_config_credentials(&file, &r.registry)?,
                None => None,
            },
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| RegistryError::Unreachable {
                url: base.clone(),
                detail: e.to_string(),
            })?;
        Ok(RegistryClient {
            http,
            base,
            repository: r.repository.clone(),
            credentials,
            auth: tokio::sync::Mutex::new(Auth::None),
        })
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository)
    }

    async fn request(&self, url: &str, accept: bool) -> Result<reqwest::Response, RegistryError> {
        for attempt in 0..2 {
            let mut req = self.http.get(url);
            if accept {
                req = req.header(reqwest::header::ACCEPT, media::ALL_MANIFESTS.join(", "));
            }
            req = match (&*self.auth.lock().await, &self.credentials) {
                (Auth::Bearer(t), _) => req.bearer_auth(t),
                (Auth::Basic, Some(c)) => req.basic_auth(&c.username, Some(&c.password)),
                _ => req,
            };
            let resp = req.send().await.map_err(|e| RegistryError::Unreachable {
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED || attempt == 1 {
                return self.check(url, resp).await;
            }
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let auth = self.answer(url, &challenge).await?;
            *self.auth.lock().await = auth;
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn check(
        &self,
        url: &str,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, RegistryError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
        Err(RegistryError::Refused {
            url: url.to_owned(),
            status,
            body: String::from_utf8_lossy(&body).chars().take(400).collect(),
        })
    }

    /// Answer a `WWW-Authenticate` challenge: fetch a token, or use basic auth.
    async fn answer(&self, url: &str, challenge: &str) -> Result<Auth, RegistryError> {
        let (scheme, params) = parse_challenge(challenge);
        let get = |k: &str| params.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        match scheme.as_str() {
            "basic" if self.credentials.is_some() => Ok(Auth::Basic),
            "bearer" => {
                let realm = get("realm").ok_or_else(|| RegistryError::BadAnswer {
                    url: url.to_owned(),
                    detail: "a Bearer challenge without realm".into(),
                })?;
                let mut token_url =
                    reqwest::Url::parse(&realm).map_err(|e| RegistryError::BadAnswer {
                        url: url.to_owned(),
                        detail: format!("token realm {realm:?}: {e}"),
                    })?;
                {
                    let mut q = token_url.query_pairs_mut();
                    if let Some(s) = get("service") {
                        q.append_pair("service", &s);
                    }
                    let scope = get("scope")
                        .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                    q.append_pair("scope", &scope);
                }
                let mut req = self.http.get(token_url.clone());
                if let Some(c) = &self.credentials {
                    req = req.basic_auth(&c.username, Some(&c.password));
                }
                let what = token_url.as_str().to_owned();
                let resp = req.send().await.map_err(|e| RegistryError::Unreachable {
                    url: what.clone(),
                    detail: e.to_string(),
                })?;
                let resp = self.check(&what, resp).await?;
                let body = read_limited(resp, 1 << 20).await.map_err(|detail| {
                    RegistryError::BadAnswer {
                        url: what.clone(),
                        detail,
                    }
                })?;
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| RegistryError::BadAnswer {
                        url: what.clone(),
                        detail: format!("token answer is not JSON: {e}"),
                    })?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| RegistryError::BadAnswer {
                        url: what,
                        detail: "token answer has no token".into(),
                    })?;
                Ok(Auth::Bearer(token.to_owned()))
            }
            _ => Err(RegistryError::Refused {
                url: url.to_owned(),
                status: 401,
                body: format!(
                    "authentication required ({challenge}); give --username and --password-stdin \
                     or a Docker config file with credentials for this registry"
                ),
            }),
        }
    }

    /// The top manifest or index of `reference` (tag or digest): its
    /// descriptor (digest computed from the bytes, checked against the
    /// `Docker-Content-Digest` header and a digest reference) and bytes.
    pub async fn top_manifest(
        &self,
        reference: &str,
    ) -> Result<(Descriptor, Vec<u8>), RegistryError> {
        let url = self.url("manifests", reference);
        let resp = self.request(&url, true).await?;
        let bad = |detail: String| RegistryError::BadAnswer {
            url: url.clone(),
            detail,
        };
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let claimed = header("docker-content-digest");
        let bytes = read_limited(resp, MAX_MANIFEST_BYTES as usize)
            .await
            .map_err(&bad)?;
        let digest = Sha256Digest::of(&bytes);
        for want in claimed
            .iter()
            .map(String::as_str)
            .chain(reference.starts_with("sha256:").then_some(reference))
        {
            if want != digest.to_string() {
                return Err(bad(format!(
                    "manifest hashes to {digest}, not to {want}; refused"
                )));
            }
        }
        let media_type = content_type
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|t| media::ALL_MANIFESTS.contains(&t.as_str()))
            .unwrap_or_else(|| super::walk::manifest_media_type(&bytes));
        let d = oci_spec::image::Digest::from_str(&digest.to_string())
            .map_err(|e| bad(e.to_string()))?;
        let desc = Descriptor::new(MediaType::from(media_type.as_str()), bytes.len() as u64, d);
        Ok((desc, bytes))
    }

    /// Download blob `digest` of `size` bytes into `dest`, refusing (and
    /// removing `dest`) unless it hashes to its digest.
    pub async fn blob_to(
        &self,
        digest: &Sha256Digest,
        size: u64,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        let url = self.url("blobs", &digest.to_string());
        let result = self.blob_to_inner(&url, digest, size, dest).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(dest).await;
        }
        result
    }

    async fn blob_to_inner(
        &self,
        url: &str,
        digest: &Sha256Digest,
        size: u64,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        let bad = |detail: String| RegistryError::BadAnswer {
            url: url.to_owned(),
            detail,
        };
        let mut resp = self.request(url, false).await?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| bad(format!("{}: {e}", parent.display())))?;
        }
        let mut out = tokio::fs::File::create(dest)
            .await
            .map_err(|e| bad(format!("{}: {e}", dest.display())))?;
        let mut h = Hasher::default();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| bad(format!("reading the blob: {e}")))?
        {
            h.update(&chunk);
            if h.len() > size {
                return Err(bad(format!(
                    "blob {digest} is longer than the {size} bytes its descriptor says; refused"
                )));
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| bad(format!("{}: {e}", dest.display())))?;
        }
        out.sync_all()
            .await
            .map_err(|e| bad(format!("{}: {e}", dest.display())))?;
        let (actual, len) = h.finish();
        if len != size {
            return Err(bad(format!(
                "blob {digest} is {len} bytes, its descriptor says {size}; refused"
            )));
        }
        if actual != *digest {
            return Err(bad(format!(
                "blob hashes to {actual}, not to its digest {digest}; refused"
            )));
        }
        Ok(())
    }
}

impl ManifestSource for RegistryClient {
    async fn manifest(&self, digest: &Sha256Digest, size: u64) -> Result<Vec<u8>, WalkError> {
        let url = self.url("manifests", &digest.to_string());
        let resp = self
            .request(&url, true)
            .await
            .map_err(|e| WalkError::Source(e.to_string()))?;
        read_limited(resp, size.min(MAX_MANIFEST_BYTES) as usize + 1)
            .await
            .map_err(|e| WalkError::Source(format!("{url}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_in_quotes() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "reg.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        let (scheme, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!((scheme.as_str(), p.len()), ("basic", 1));
    }

    #[test]
    fn docker_config_credentials_are_found_by_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        std::fs::write(
            &file,
            format!(
                r#"{{"auths":{{"reg.example:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"username":"hub","password":"pw"}}}}}}"#
            ),
        )
        .expect("write");
        let c = docker_config_credentials(&file, "reg.example:5000")
            .expect("read")
            .expect("found");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("bob", "s3cret")
        );
        let c = docker_config_credentials(&file, "docker.io")
            .expect("read")
            .expect("found");
        assert_eq!(c.username, "hub");
        assert!(docker_config_credentials(&file, "other.example")
            .expect("read")
            .is_none());
        assert!(!format!("{c:?}").contains("pw"));
    }

    /// A registry that wants a bearer token from its own token endpoint,
    /// which wants basic credentials: the client follows the challenge.
    #[tokio::test]
    async fn bearer_token_challenge_is_answered() {
        use axum::extract::Query;
        use axum::http::{header, HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        use std::collections::HashMap;

        let manifest: &'static [u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let challenge = format!(
            r#"Bearer realm="http://{addr}/token",service="test-registry",scope="repository:team/app:pull""#
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bob:pw")
        );
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::get(
                    move |q: Query<HashMap<String, String>>, h: HeaderMap| async move {
                        let auth = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                        let ok = auth == Some(basic.as_str())
                            && q.get("scope").map(String::as_str)
                                == Some("repository:team/app:pull")
                            && q.get("service").map(String::as_str) == Some("test-registry");
                        if ok {
                            (StatusCode::OK, r#"{"token":"T1"}"#).into_response()
                        } else {
                            StatusCode::UNAUTHORIZED.into_response()
                        }
                    },
                ),
            )
            .route(
                "/v2/team/app/manifests/1",
                axum::routing::get(move |h: HeaderMap| async move {
                    let auth = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                    if auth == Some("Bearer T1") {
                        (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, media::OCI_MANIFEST)],
                            manifest,
                        )
                            .into_response()
                    } else {
                        (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, challenge.clone())],
                        )
                            .into_response()
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = ImageRef::parse(&format!("{addr}/team/app:1")).expect("ref");
        let mut opts = RegistryOptions {
            insecure: true,
            credentials: Some(Credentials {
                username: "bob".into(),
                password: "pw".into(),
            }),
            docker_config: None,
        };
        let client = RegistryClient::new(&r, &opts).expect("client");
        let (desc, bytes) = client.top_manifest("1").await.expect("manifest");
        assert_eq!(bytes, manifest);
        assert_eq!(
            desc.digest().to_string(),
            Sha256Digest::of(manifest).to_string()
        );
        assert_eq!(desc.media_type().to_string(), media::OCI_MANIFEST);
        // Wrong credentials: the token endpoint refuses, and the error says so.
        opts.credentials = Some(Credentials {
            username: "bob".into(),
            password: "wrong".into(),
        });
        let client = RegistryClient::new(&r, &opts).expect("client");
        let e = client.top_manifest("1").await.expect_err("refused");
        assert!(e.to_string().contains("/token"), "{e}");
    }
}
