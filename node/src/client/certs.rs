//! The client's certificate: pinning the hub CA at login, renewal before
//! expiry (also while pulls and the service run), and the peer transport
//! built from it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{ClientError, HubClient};
use crate::hub::api::HubInfo;
use crate::hub::PEER_TLS_OFF_WARNING;
use crate::paths::ClientPaths;
use crate::peer::{PlainTcp, Transport};
use crate::tls::creds::{csr_pem, new_key, CredentialFiles, Credentials, KeyStore};
use crate::tls::peer::{hub_client_config, Revocations, TlsTransport};
use crate::tls::{cert_facts, fingerprint, pem_cert, provider, same_fingerprint, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::DigitallySignedStruct;

fn tls_err(e: TlsError) -> ClientError {
    ClientError::Other(e.to_string())
}

/// The credential files of a client home.
pub fn files(paths: &ClientPaths) -> CredentialFiles {
    CredentialFiles::new(paths.root.join("tls"))
}

/// Records the certificates the hub presents and trusts them for one
/// request: fetching the CA to pin at login. Nothing secret is sent on it.
#[derive(Debug, Default)]
struct Capture(std::sync::Mutex<Vec<CertificateDer<'static>>>);

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.0.lock() {
            seen.clear();
            seen.push(end_entity.clone().into_owned());
            seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A hub client that trusts only `ca` (and presents no certificate).
pub(super) fn pinned(url: &str, ca: &CertificateDer<'static>) -> Result<HubClient, ClientError> {
    let tls = hub_client_config(ca, None).map_err(tls_err)?;
    Ok(HubClient::new(url, None, tls, None)?)
}

/// Fetch the hub CA, show its fingerprint and make sure it is the right one:
/// `expected` when given, else the person at the terminal says so. The CA
/// the TLS handshake presented must be the one the hub's answer names.
pub(super) async fn pin_ca(
    url: &str,
    expected: Option<&str>,
) -> Result<CertificateDer<'static>, ClientError> {
    let capture = Arc::new(Capture::default());
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.into()))?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let hub = HubClient::new(url, None, tls, None)?;
    let ca = hub.ca().await?;
    let der = pem_cert(&ca.certificate, "hub CA").map_err(tls_err)?;
    let presented = capture.0.lock().map(|c| c.last().cloned()).ok().flatten();
    if presented.as_ref() != Some(&der) {
        return Err(ClientError::Other(
            "the hub's TLS certificate chain does not end in the CA it names: not a swarmhub hub, \
             or someone in between; nothing was stored"
                .into(),
        ));
    }
    let fp = fingerprint(&der);
    if expected.is_none() {
        // Shown to be compared; a fingerprint given on the command line is
        // checked instead (and named in the error when it differs).
        eprintln!("hub CA fingerprint (SHA-256): {fp}");
    }
    match expected {
        Some(want) if same_fingerprint(want, &fp) => Ok(der),
        Some(want) => Err(ClientError::Other(format!(
            "the hub's CA fingerprint is {fp}, not {want}: this may not be your hub \
             (or the fingerprint was mistyped); nothing was stored"
        ))),
        None if std::io::stdin().is_terminal() => {
            eprint!("Is this your hub's CA fingerprint (compare with `swarmhub hub config --all` on the hub)? [y/N] ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| ClientError::Other(format!("reading the answer: {e}")))?;
            if matches!(line.trim(), "y" | "Y" | "yes") {
                Ok(der)
            } else {
                Err(ClientError::Other(
                    "hub CA not confirmed: nothing was stored".into(),
                ))
            }
        }
        None => Err(ClientError::Other(format!(
            "cannot ask whether to trust the hub CA {fp} (no terminal): pass \
             --fingerprint with the value `swarmhub hub config --all` prints on the hub"
        ))),
    }
}

/// A key pair made here and a request for the hub to certify it.
pub(super) fn new_request(identity_hint: &str) -> Result<(rcgen::KeyPair, String), ClientError> {
    let key = new_key().map_err(tls_err)?;
    let csr = csr_pem(&key, identity_hint).map_err(tls_err)?;
    Ok((key, csr))
}

/// Check that a certificate the hub sent is for `identity` and store it.
pub(super) fn store_new(
    paths: &ClientPaths,
    identity: &str,
    key: &rcgen::KeyPair,
    cert_pem: &str,
    ca: &CertificateDer<'static>,
) -> Result<(), ClientError> {
    let cert = pem_cert(cert_pem, "certificate from the hub").map_err(tls_err)?;
    check_issued(&cert, identity)?;
    files(paths).save(key, &cert, ca).map_err(tls_err)
}

fn check_issued(cert: &[u8], identity: &str) -> Result<(), ClientError> {
    let facts = cert_facts(cert).map_err(tls_err)?;
    if facts.identity != identity {
        return Err(ClientError::Other(format!(
            "the hub certified {:?} instead of {identity:?}",
            facts.identity
        )));
    }
    Ok(())
}

fn load(paths: &ClientPaths) -> Result<Credentials, ClientError> {
    let f = files(paths);
    if !f.exist() {
        return Err(ClientError::Other(
            "no client certificate: log in again with `swarmhub login HUB_URL --key KEY --fingerprint FP`"
                .into(),
        ));
    }
    f.load().map_err(tls_err)
}

/// A hub client presenting this home's certificate, renewed first if due.
pub(super) async fn connect(
    paths: &ClientPaths,
    url: &str,
    secret: &str,
) -> Result<HubClient, ClientError> {
    let creds = load(paths)?;
    let now = SystemTime::now();
    if creds.facts.left(now).is_zero() {
        return Err(ClientError::Other(format!(
            "the client certificate of {} has expired: log in again with a new key \
             (`swarmhub hub user add {}` on the hub, then `swarmhub login HUB_URL --key KEY --fingerprint FP`)",
            creds.facts.identity, creds.facts.identity
        )));
    }
    let keys = KeyStore::new(creds.certified_key().map_err(tls_err)?);
    let tls = hub_client_config(&creds.ca, Some(keys.clone())).map_err(tls_err)?;
    let hub = HubClient::new(url, Some(secret.to_owned()), tls, Some(keys.clone()))?;
    if creds.facts.needs_renewal(now) {
        let fresh = renew(paths, &hub, &creds).await?;
        keys.replace(fresh.certified_key().map_err(tls_err)?);
    }
    Ok(hub)
}

/// Ask the hub for a new certificate for the same key; store and return it.
async fn renew(
    paths: &ClientPaths,
    hub: &HubClient,
    creds: &Credentials,
) -> Result<Credentials, ClientError> {
    let csr = csr_pem(&creds.key, &creds.facts.identity).map_err(tls_err)?;
    let pem = hub.renew(&csr).await?;
    let cert = pem_cert(&pem, "renewed certificate").map_err(tls_err)?;
    check_issued(&cert, &creds.facts.identity)?;
    let f = files(paths);
    f.save_cert(&cert).map_err(tls_err)?;
    tracing::info!("renewed the client certificate");
    f.load().map_err(tls_err)
}

/// The peer transport for this client: mutual TLS with its certificate
/// (renewed in the background while it runs), or plain TCP when the hub has
/// peer TLS off (with a loud warning).
pub struct PeerTransport {
    /// The transport to hand to swarms and the listener.
    pub transport: Arc<dyn Transport>,
    /// Certificate renewal and key refresh, aborted on drop.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PeerTransport {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl PeerTransport {
    /// Build it for `hub` as `info` describes.
    pub async fn new(
        paths: &ClientPaths,
        hub: &HubClient,
        info: &HubInfo,
    ) -> Result<PeerTransport, ClientError> {
        if !info.peer_tls {
            eprintln!("{PEER_TLS_OFF_WARNING}");
            // Into the log file too (the terminal has it already).
            tracing::info!("{PEER_TLS_OFF_WARNING}");
            return Ok(PeerTransport {
                transport: Arc::new(PlainTcp::default()),
                tasks: Vec::new(),
            });
        }
        let creds = load(paths)?;
        let keys = hub
            .keys()
            .cloned()
            .ok_or_else(|| ClientError::Other("the hub client has no certificate".into()))?;
        let revocations = Revocations::new();
        let tls =
            TlsTransport::new(&creds.ca, keys.clone(), revocations.clone()).map_err(tls_err)?;
        let tasks = vec![
            tokio::spawn(refresh_keys(hub.clone(), revocations)),
            tokio::spawn(renew_loop(paths.clone(), hub.clone(), creds, keys)),
        ];
        Ok(PeerTransport {
            transport: Arc::new(tls),
            tasks,
        })
    }
}

/// How often peers re-read which key each identity must carry.
const KEYS_REFRESH: Duration = Duration::from_secs(30);

/// Keep the transport's identity-to-key bindings current, so that an older
/// certificate of a re-enrolled name is refused by this peer too.
async fn refresh_keys(hub: HubClient, revocations: Arc<Revocations>) {
    loop {
        match hub.cert_keys().await {
            Ok(k) => revocations.set_keys(k.keys.into_iter().collect()),
            Err(e) => tracing::warn!("cannot refresh certificate keys from the hub: {e}"),
        }
        tokio::time::sleep(KEYS_REFRESH).await;
    }
}

/// Renew whenever a third of the certificate's life is left; new links use
/// the new certificate, open ones carry on.
async fn renew_loop(
    paths: ClientPaths,
    hub: HubClient,
    mut creds: Credentials,
    keys: Arc<KeyStore>,
) {
    loop {
        let total = creds
            .facts
            .not_after
            .duration_since(creds.facts.not_before)
            .unwrap_or_default();
        let wait = creds
            .facts
            .left(SystemTime::now())
            .saturating_sub(total / 3)
            .max(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        match renew(&paths, &hub, &creds).await {
            Ok(fresh) => match fresh.certified_key() {
                Ok(k) => {
                    keys.replace(k);
                    creds = fresh;
                }
                Err(e) => tracing::error!("renewed certificate unusable: {e}"),
            },
            Err(e) => {
                tracing::warn!("certificate renewal failed, retrying in 10 s: {e}");
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }
    }
}
