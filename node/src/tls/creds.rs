//! Key pairs and hub-issued certificates of a node, and the live store the
//! TLS configs read them from (so a renewal swaps them without a restart).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::{cert_facts, cert_pem, pem_cert, provider, read, write_private, write_public};
use super::{CertFacts, TlsError};

/// A fresh key pair, made here: the private key never leaves this machine.
pub fn new_key() -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(|e| TlsError::cert("key pair", e))
}

/// A certificate signing request for `key` (the hub decides the identity).
pub fn csr_pem(key: &KeyPair, identity_hint: &str) -> Result<String, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identity_hint);
    params.distinguished_name = dn;
    params
        .serialize_request(key)
        .and_then(|r| r.pem())
        .map_err(|e| TlsError::cert("certificate signing request", e))
}

/// A certified key for rustls from a key pair and its certificate.
pub fn certified_key(
    key: &KeyPair,
    cert: CertificateDer<'static>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = provider()
        .key_provider
        .load_private_key(der)
        .map_err(TlsError::Config)?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], signer)))
}

/// A certified key presenting a whole chain (leaf first).
pub fn certified_key_chain(
    key: &KeyPair,
    chain: Vec<CertificateDer<'static>>,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = provider()
        .key_provider
        .load_private_key(der)
        .map_err(TlsError::Config)?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// A node's TLS credentials on disk: `DIR/node.key` (0600), `DIR/node.crt`,
/// `DIR/ca.crt` (the pinned hub CA).
#[derive(Clone, Debug)]
pub struct CredentialFiles {
    dir: PathBuf,
}

/// Credentials loaded from disk.
pub struct Credentials {
    /// The hub CA (trust anchor).
    pub ca: CertificateDer<'static>,
    /// Our certificate.
    pub cert: CertificateDer<'static>,
    /// Our key pair.
    pub key: KeyPair,
    /// Identity and validity of `cert`.
    pub facts: CertFacts,
}

impl CredentialFiles {
    /// Credentials kept in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CredentialFiles { dir: dir.into() }
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("node.key")
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.join("node.crt")
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Whether credentials were stored.
    pub fn exist(&self) -> bool {
        self.cert_path().exists()
    }

    /// Store a key, its certificate and the pinned CA.
    pub fn save(
        &self,
        key: &KeyPair,
        cert: &CertificateDer<'_>,
        ca: &CertificateDer<'_>,
    ) -> Result<(), TlsError> {
        write_private(&self.key_path(), key.serialize_pem().as_bytes())?;
        write_public(&self.ca_path(), cert_pem(ca).as_bytes())?;
        write_public(&self.cert_path(), cert_pem(cert).as_bytes())
    }

    /// Replace the certificate (renewal with the same key).
    pub fn save_cert(&self, cert: &CertificateDer<'_>) -> Result<(), TlsError> {
        write_public(&self.cert_path(), cert_pem(cert).as_bytes())
    }

    /// Load everything.
    pub fn load(&self) -> Result<Credentials, TlsError> {
        let text = |p: &Path| -> Result<String, TlsError> {
            String::from_utf8(read(p)?)
                .map_err(|_| TlsError::cert(p.display().to_string(), "not PEM text"))
        };
        let key_path = self.key_path();
        let key = KeyPair::from_pem(&text(&key_path)?)
            .map_err(|e| TlsError::cert(key_path.display().to_string(), e))?;
        let cert_path = self.cert_path();
        let cert = pem_cert(&text(&cert_path)?, &cert_path.display().to_string())?;
        let ca_path = self.ca_path();
        let ca = pem_cert(&text(&ca_path)?, &ca_path.display().to_string())?;
        let facts = cert_facts(&cert)?;
        Ok(Credentials {
            ca,
            cert,
            key,
            facts,
        })
    }
}

impl Credentials {
    /// The key and certificate for rustls.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        certified_key(&self.key, self.cert.clone())
    }
}

/// The certificate a node presents, swappable while connections run.
#[derive(Debug)]
pub struct KeyStore(RwLock<Arc<CertifiedKey>>);

impl KeyStore {
    /// A store holding `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Arc<Self> {
        Arc::new(KeyStore(RwLock::new(key)))
    }

    /// Present `key` on new connections from now on.
    pub fn replace(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut k) = self.0.write() {
            *k = key;
        }
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

impl rustls::client::ResolvesClientCert for KeyStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for KeyStore {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}
