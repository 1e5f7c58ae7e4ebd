//! Certificates and TLS.
//!
//! - [`ca`]: the hub's own certificate authority (rcgen): created on first
//!   start, signs short-lived certificates bound to enrolled identities.
//! - [`creds`]: a client's key pair (made locally) and its hub-issued
//!   certificate, stored under its home, renewed before expiry.
//! - [`peer`]: mutual TLS on peer links (rustls), the [`peer::TlsTransport`].
//!
//! Every hub-issued certificate names its identity in the subject common name
//! and carries the DNS name [`PEER_NAME`]; the hub's own certificate also
//! carries [`HUB_NAME`]. Peers are dialed by address, so verifiers check those
//! fixed names instead of host names: what matters is the chain to the hub CA,
//! the validity period and the identity.

pub mod ca;
pub mod creds;
pub mod peer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use sha2::{Digest, Sha256};

/// DNS name every hub-issued certificate carries; peers verify it.
pub const PEER_NAME: &str = "peer.swarmhub.invalid";
/// DNS name of the hub's own certificate (API and seeder).
pub const HUB_NAME: &str = "hub.swarmhub.invalid";
/// Identity of the hub's own certificate.
pub const HUB_IDENTITY: &str = "hub";

/// What went wrong with a key, a certificate or a TLS setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        error: std::io::Error,
    },
    /// A certificate, key or request could not be made or parsed.
    #[error("{what}: {detail}")]
    Cert {
        /// What was being handled.
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// rustls refused a configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl TlsError {
    pub(crate) fn cert(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        TlsError::Cert {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        TlsError::Io {
            path: path.to_owned(),
            error,
        }
    }
}

/// The crypto provider (ring) all configs use, preferring AES-128-GCM (the
/// cheapest suite with AES instructions; peer links carry bulk data).
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(p)
}

/// SHA-256 fingerprint of a DER certificate: `AB:CD:...` (32 pairs).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// A fingerprint as typed by a person: colons, spaces and case do not matter.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_hexdigit())
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    let (a, b) = (norm(a), norm(b));
    a.len() == 64 && a == b
}

/// The `reason` label of a failed TLS handshake (for the
/// `*_tls_handshake_failures_total` metrics): what rustls or the socket said,
/// as one fixed word.
pub fn handshake_failure_reason(e: &std::io::Error) -> &'static str {
    use rustls::{CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<E>()) else {
        return match e.kind() {
            std::io::ErrorKind::TimedOut => "timeout",
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => "closed",
            std::io::ErrorKind::InvalidData => "protocol",
            _ => "io",
        };
    };
    match tls {
        E::NoCertificatesPresented => "no_certificate",
        E::InvalidCertificate(c) => match c {
            C::Revoked => "revoked",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
            C::UnknownIssuer => "unknown_ca",
            _ => "bad_certificate",
        },
        E::AlertReceived(_) => "alert_received",
        E::PeerIncompatible(_) => "incompatible",
        E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::InvalidMessage(_)
        | E::PeerMisbehaved(_) => "protocol",
        _ => "other",
    }
}

/// Facts read from a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    /// The identity (subject common name).
    pub identity: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl CertFacts {
    /// Whether less than a third of the validity period is left at `now`
    /// (or it is over): time to renew.
    pub fn needs_renewal(&self, now: SystemTime) -> bool {
        let total = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        match self.not_after.duration_since(now) {
            Ok(left) => left < total / 3,
            Err(_) => true,
        }
    }

    /// Time left at `now` (zero once expired).
    pub fn left(&self, now: SystemTime) -> Duration {
        self.not_after.duration_since(now).unwrap_or_default()
    }
}

/// Read identity and validity from a DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::cert("certificate", format!("does not parse: {e}")))?;
    let identity = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| TlsError::cert("certificate", "no subject common name (identity)"))?
        .to_owned();
    let at = |t: x509_parser::time::ASN1Time| -> SystemTime {
        let secs = t.timestamp();
        if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH
        }
    };
    Ok(CertFacts {
        identity,
        not_before: at(cert.validity().not_before),
        not_after: at(cert.validity().not_after),
    })
}

/// The key a certificate carries: SHA-256 of its subject public key info, hex.
/// Binds an identity to one key pair, so that an older certificate of a
/// re-enrolled name stops working.
pub fn cert_key(der: &[u8]) -> Result<String, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::cert("certificate", format!("does not parse: {e}")))?;
    Ok(crate::util::hex(&Sha256::digest(
        cert.tbs_certificate.subject_pki.raw,
    )))
}

/// Write `bytes` to `path` readable by the owner only (atomic replace).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| TlsError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| TlsError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TlsError::io(path, e))
}

/// Write a public file (certificates) with an atomic replace.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    crate::paths::write_atomic(path, bytes).map_err(|e| TlsError::io(path, e))
}

/// Read a file, naming it on failure.
pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::io(path, e))
}

/// The first certificate of a PEM text, as DER.
pub fn pem_cert(
    pem: &str,
    what: &str,
) -> Result<rustls::pki_types::CertificateDer<'static>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError::cert(what, format!("not a PEM certificate: {e}")))
}

/// A DER certificate as PEM.
pub fn cert_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_loosely_but_not_too_loosely() {
        let f = fingerprint(b"x");
        assert_eq!(f.len(), 95);
        assert!(same_fingerprint(&f, &f.replace(':', "").to_lowercase()));
        assert!(!same_fingerprint(&f, &fingerprint(b"y")));
        assert!(!same_fingerprint("", ""));
        assert!(!same_fingerprint("AB", "ab"));
    }

    #[test]
    fn pem_round_trips() {
        let der = b"\x30\x03\x02\x01\x05hello world, a few bytes more".to_vec();
        let pem = cert_pem(&der);
        let back = pem_cert(&pem, "test").expect("parse");
        assert_eq!(back.as_ref(), &der[..]);
    }
}
