//! Mutual TLS on peer links: both sides present a hub-issued certificate,
//! both check the other's chain to the hub CA, its validity period and that
//! its identity is not revoked, before a single BitTorrent byte is sent. The
//! verified identity goes to the core node with the link.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{ClientConfig, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;

use super::creds::KeyStore;
use super::{cert_facts, provider, TlsError, PEER_NAME};
use crate::peer::{BoxFuture, PeerLink, Transport};

/// Identities the hub revoked, as last heard (hub database or announce
/// replies), with the tracker's revocation epoch they belong to.
/// The hub also knows the key each identity's certificates must carry
/// ([`super::cert_key`]) and refuses older certificates of re-enrolled names.
#[derive(Debug, Default)]
pub struct Revocations {
    list: RwLock<(u64, BTreeSet<String>)>,
    keys: RwLock<Option<std::collections::HashMap<String, String>>>,
}

impl Revocations {
    /// An empty list.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Whether `identity` is revoked.
    pub fn contains(&self, identity: &str) -> bool {
        self.list
            .read()
            .map(|g| g.1.contains(identity))
            .unwrap_or(true)
    }

    /// Whether a certificate of `identity` carrying `key` is refused: the
    /// identity is revoked, or the hub bound it to another key.
    pub fn refuses(&self, identity: &str, key: &str) -> bool {
        if self.contains(identity) {
            return true;
        }
        match self.keys.read() {
            Ok(g) => g
                .as_ref()
                .and_then(|m| m.get(identity))
                .is_some_and(|want| want != key),
            Err(_) => true,
        }
    }

    /// Bind one identity to a key (the hub, at enrollment).
    pub fn bind_key(&self, identity: &str, key: &str) {
        if let Ok(mut g) = self.keys.write() {
            g.get_or_insert_with(Default::default)
                .insert(identity.to_owned(), key.to_owned());
        }
    }

    /// Bind identities to keys (the hub, from its database).
    pub fn set_keys(&self, keys: std::collections::HashMap<String, String>) {
        if let Ok(mut g) = self.keys.write() {
            *g = Some(keys);
        }
    }

    /// Take the tracker's list of `epoch` if it is newer than ours. An
    /// announce reply carries the list only when the epoch moved.
    pub fn update(&self, epoch: u64, revoked: &[String]) {
        if let Ok(mut g) = self.list.write() {
            if epoch > g.0 {
                *g = (epoch, revoked.iter().cloned().collect());
            }
        }
    }

    /// Replace the whole list (the hub, from its database).
    pub fn set(&self, revoked: BTreeSet<String>) {
        if let Ok(mut g) = self.list.write() {
            g.1 = revoked;
        }
    }
}

fn revoked_error() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Revoked)
}

/// Check the identity of a certificate whose chain is already verified.
fn check_identity(cert: &CertificateDer<'_>, revoked: &Revocations) -> Result<(), rustls::Error> {
    let bad = |_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let facts = cert_facts(cert).map_err(bad)?;
    let key = super::cert_key(cert).map_err(bad)?;
    if revoked.refuses(&facts.identity, &key) {
        return Err(revoked_error());
    }
    Ok(())
}

/// Accepting side: a client certificate chained to the hub CA, valid now,
/// identity not revoked.
#[derive(Debug)]
struct PeerClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<Revocations>,
    mandatory: bool,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        check_identity(end_entity, &self.revoked)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Dialing side: the listener's certificate chained to the hub CA, valid
/// now, naming [`PEER_NAME`] (peers are dialed by address), not revoked.
#[derive(Debug)]
pub(crate) struct HubCertVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
    revoked: Arc<Revocations>,
}

impl HubCertVerifier {
    /// A verifier of certificates from `ca` that carry the DNS name `name`.
    pub(crate) fn new(
        ca: &CertificateDer<'static>,
        name: &'static str,
        revoked: Arc<Revocations>,
    ) -> Result<Self, TlsError> {
        let roots = Arc::new(roots(ca)?);
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError::cert("certificate verifier", e))?;
        let name = ServerName::try_from(name).map_err(|e| TlsError::cert("server name", e))?;
        Ok(HubCertVerifier {
            inner,
            name,
            revoked,
        })
    }
}

impl ServerCertVerifier for HubCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            &self.name,
            ocsp_response,
            now,
        )?;
        check_identity(end_entity, &self.revoked)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn roots(ca: &CertificateDer<'static>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| TlsError::cert("hub CA certificate", e))?;
    Ok(roots)
}

/// Server side of a mutual-TLS config: present `keys`, require a client
/// certificate from `ca` that is not revoked.
pub(crate) fn server_config(
    ca: &CertificateDer<'static>,
    keys: Arc<KeyStore>,
    revoked: Arc<Revocations>,
) -> Result<ServerConfig, TlsError> {
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .build()
        .map_err(|e| TlsError::cert("client certificate verifier", e))?;
    let verifier = Arc::new(PeerClientVerifier {
        inner,
        revoked,
        mandatory: true,
    });
    Ok(ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(keys))
}

/// The hub API's TLS config: present `keys` (the hub certificate and the CA,
/// so a client can pin the CA at login); a client certificate is optional at
/// the TLS level (enrollment needs none) but, when sent, must be from `ca`,
/// valid and not revoked. The API decides what needs one.
pub fn api_server_config(
    ca: &CertificateDer<'static>,
    keys: Arc<KeyStore>,
    revoked: Arc<Revocations>,
) -> Result<ServerConfig, TlsError> {
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::cert("client certificate verifier", e))?;
    let verifier = Arc::new(PeerClientVerifier {
        inner,
        revoked,
        mandatory: false,
    });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(keys);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client config for the hub API: the hub certificate must chain to `ca`
/// (pinned at login) and name [`super::HUB_NAME`]; `keys`, when given, is the
/// client certificate to present.
pub fn hub_client_config(
    ca: &CertificateDer<'static>,
    keys: Option<Arc<KeyStore>>,
) -> Result<ClientConfig, TlsError> {
    let verifier = Arc::new(HubCertVerifier::new(
        ca,
        super::HUB_NAME,
        Revocations::new(),
    )?);
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match keys {
        Some(k) => b.with_client_cert_resolver(k),
        None => b.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Client side of a mutual-TLS config: present `keys`, accept a server
/// certificate from `ca` naming `name`, not revoked.
pub(crate) fn client_config(
    ca: &CertificateDer<'static>,
    name: &'static str,
    keys: Arc<KeyStore>,
    revoked: Arc<Revocations>,
) -> Result<ClientConfig, TlsError> {
    let verifier = Arc::new(HubCertVerifier::new(ca, name, revoked)?);
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(keys))
}

/// Peer links over mutual TLS with hub-issued certificates.
#[derive(Clone)]
pub struct TlsTransport {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    revoked: Arc<Revocations>,
    connect_timeout: Duration,
}

impl TlsTransport {
    /// A transport presenting the certificate in `keys`, trusting `ca`,
    /// refusing identities in `revoked`.
    pub fn new(
        ca: &CertificateDer<'static>,
        keys: Arc<KeyStore>,
        revoked: Arc<Revocations>,
    ) -> Result<Self, TlsError> {
        let server = server_config(ca, keys.clone(), revoked.clone())?;
        let client = client_config(ca, PEER_NAME, keys, revoked.clone())?;
        Ok(TlsTransport {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            revoked,
            connect_timeout: Duration::from_secs(5),
        })
    }

    /// The revocation list this transport checks.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revoked
    }
}

fn peer_identity(certs: Option<&[CertificateDer<'static>]>) -> io::Result<String> {
    let cert = certs.and_then(|c| c.first()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::PermissionDenied, "peer sent no certificate")
    })?;
    cert_facts(cert)
        .map(|f| f.identity)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Bytes read from the socket at once under the TLS layer: rustls asks for
/// one record (at most about 16 KiB, often 4 KiB) per read, so without this
/// buffer a 1 GiB pull costs a hundred thousand receive syscalls. 64 KiB
/// (four full records) per connection: a hub or a fleet holds thousands.
const TLS_READ_BUF: usize = 64 * 1024;

fn buffered(tcp: TcpStream) -> tokio::io::BufReader<TcpStream> {
    tokio::io::BufReader::with_capacity(TLS_READ_BUF, tcp)
}

impl Transport for TlsTransport {
    fn accept(&self, tcp: TcpStream, remote: SocketAddr) -> BoxFuture<io::Result<PeerLink>> {
        let acceptor = self.acceptor.clone();
        Box::pin(async move {
            tcp.set_nodelay(true)?;
            let tls = acceptor.accept(buffered(tcp)).await?;
            let identity = peer_identity(tls.get_ref().1.peer_certificates())?;
            Ok(PeerLink {
                stream: Box::new(tls),
                remote,
                identity: Some(identity),
            })
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<PeerLink>> {
        let connector = self.connector.clone();
        let limit = self.connect_timeout;
        Box::pin(async move {
            let setup = async {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let name = ServerName::try_from(PEER_NAME)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                connector.connect(name, buffered(tcp)).await
            };
            let tls = tokio::time::timeout(limit, setup)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS connect timed out"))??;
            let identity = peer_identity(tls.get_ref().1.peer_certificates())?;
            Ok(PeerLink {
                stream: Box::new(tls),
                remote: addr,
                identity: Some(identity),
            })
        })
    }

    fn authenticates(&self) -> bool {
        true
    }

    fn note_revocations(&self, epoch: u64, revoked: &[String]) {
        self.revoked.update(epoch, revoked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_lists_follow_the_epoch_and_keys_bind_identities() {
        let r = Revocations::new();
        assert!(!r.contains("eve"));
        r.update(2, &["eve".to_owned()]);
        assert!(r.contains("eve"));
        // An older or equal epoch never overrides a newer list.
        r.update(1, &[]);
        r.update(2, &[]);
        assert!(r.contains("eve"));
        // Unrevoked at epoch 3: the new, shorter list wins.
        r.update(3, &[]);
        assert!(!r.contains("eve"));

        assert!(!r.refuses("bob", "k1"), "no bindings yet");
        r.bind_key("bob", "k1");
        assert!(!r.refuses("bob", "k1"));
        assert!(r.refuses("bob", "k0"), "an older key of bob");
        assert!(!r.refuses("carol", "kc"), "unbound identities pass");
        r.update(4, &["bob".to_owned()]);
        assert!(r.refuses("bob", "k1"), "revoked beats a good key");
    }
}
