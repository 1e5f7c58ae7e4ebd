//! The hub's certificate authority: made on first start, kept in `DIR/ca`
//! (folder 0700, key 0600), signs certificates bound to identities.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;

use super::{
    fingerprint, pem_cert, read, write_private, write_public, TlsError, HUB_NAME, PEER_NAME,
};

/// How long the CA itself is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Slack for clocks that run a little behind the hub's.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Largest certificate signing request accepted.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// The hub CA: its certificate and signing key.
pub struct HubCa {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for HubCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.key"), dir.join("ca.crt"))
}

fn to_time(t: SystemTime) -> time::OffsetDateTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn random_serial() -> Result<SerialNumber, TlsError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| TlsError::cert("serial number", e))?;
    b[0] &= 0x7f; // positive
    Ok(SerialNumber::from_slice(&b))
}

impl HubCa {
    /// Load the CA from `dir`, or create it there if it does not exist yet.
    pub fn load_or_create(dir: &Path) -> Result<HubCa, TlsError> {
        let (key_path, cert_path) = files(dir);
        if key_path.exists() || cert_path.exists() {
            return Self::load(dir);
        }
        let key = KeyPair::generate().map_err(|e| TlsError::cert("CA key", e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "swarmhub hub CA");
        dn.push(DnType::OrganizationName, "swarmhub");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        params.not_before = to_time(now - CLOCK_SKEW);
        params.not_after = to_time(now + CA_LIFETIME);
        params.serial_number = Some(random_serial()?);
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::cert("CA certificate", e))?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        write_public(&cert_path, cert.pem().as_bytes())?;
        tracing::info!(
            "created the hub CA in {} (SHA-256 {})",
            dir.display(),
            fingerprint(cert.der())
        );
        Self::load(dir)
    }

    /// Load an existing CA from `dir`.
    pub fn load(dir: &Path) -> Result<HubCa, TlsError> {
        let (key_path, cert_path) = files(dir);
        check_private(&key_path)?;
        let key_pem = String::from_utf8(read(&key_path)?)
            .map_err(|_| TlsError::cert(key_path.display().to_string(), "not PEM text"))?;
        let cert_pem = String::from_utf8(read(&cert_path)?)
            .map_err(|_| TlsError::cert(cert_path.display().to_string(), "not PEM text"))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| TlsError::cert(key_path.display().to_string(), e))?;
        let cert_der = pem_cert(&cert_pem, &cert_path.display().to_string())?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| TlsError::cert(cert_path.display().to_string(), e))?;
        Ok(HubCa {
            cert_der,
            cert_pem,
            issuer,
        })
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 fingerprint of the CA certificate.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Sign a certificate for `identity` valid for `lifetime` from the public
    /// key of a PEM certificate signing request. Everything else the request
    /// asks for (names, usages) is ignored: the hub decides what it certifies.
    pub fn sign_request(
        &self,
        identity: &str,
        csr_pem: &str,
        lifetime: Duration,
    ) -> Result<CertificateDer<'static>, TlsError> {
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(TlsError::cert(
                "certificate signing request",
                format!("larger than {MAX_CSR_BYTES} bytes"),
            ));
        }
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| TlsError::cert("certificate signing request", e))?;
        csr.params = leaf_params(identity, false, &[], SystemTime::now(), lifetime)?;
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|e| TlsError::cert(format!("certificate for {identity}"), e))?;
        Ok(cert.der().clone())
    }

    /// Sign a certificate for `identity` with `key`, valid from `start` for
    /// `lifetime` (`hub`: also named [`HUB_NAME`]). For the hub's own
    /// certificate and for tests.
    pub fn sign_key(
        &self,
        identity: &str,
        key: &KeyPair,
        start: SystemTime,
        lifetime: Duration,
    ) -> Result<CertificateDer<'static>, TlsError> {
        self.sign_hub_key(identity, key, start, lifetime, &[])
    }

    /// [`HubCa::sign_key`] that also names `hostnames` (DNS names and IP
    /// addresses), for the hub's own certificate: what browsers and stock
    /// clients check when they reach the hub by one of those names.
    pub fn sign_hub_key(
        &self,
        identity: &str,
        key: &KeyPair,
        start: SystemTime,
        lifetime: Duration,
        hostnames: &[crate::hub::hostnames::HostName],
    ) -> Result<CertificateDer<'static>, TlsError> {
        let hub = identity == super::HUB_IDENTITY;
        let params = leaf_params(identity, hub, hostnames, start, lifetime)?;
        let cert = params
            .signed_by(key, &self.issuer)
            .map_err(|e| TlsError::cert(format!("certificate for {identity}"), e))?;
        Ok(cert.der().clone())
    }
}

fn leaf_params(
    identity: &str,
    hub: bool,
    hostnames: &[crate::hub::hostnames::HostName],
    start: SystemTime,
    lifetime: Duration,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identity);
    params.distinguished_name = dn;
    let mut names = vec![PEER_NAME];
    if hub {
        names.push(HUB_NAME);
    }
    for n in names {
        let dns = n
            .to_owned()
            .try_into()
            .map_err(|e| TlsError::cert("certificate name", e))?;
        params.subject_alt_names.push(SanType::DnsName(dns));
    }
    for h in hostnames {
        let san = match h {
            crate::hub::hostnames::HostName::Ip(ip) => SanType::IpAddress(*ip),
            crate::hub::hostnames::HostName::Dns(d) => SanType::DnsName(
                d.clone()
                    .try_into()
                    .map_err(|e| TlsError::cert(format!("host name {d:?}"), e))?,
            ),
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    // Backdated for clocks a little behind, by at most a quarter of the
    // lifetime so that renewal (at a third left) stays well after issue.
    let backdate = CLOCK_SKEW.min(lifetime / 4);
    params.not_before = to_time(start.checked_sub(backdate).unwrap_or(start));
    let end = start
        .checked_add(lifetime)
        .ok_or_else(|| TlsError::cert("certificate lifetime", "too long"))?;
    params.not_after = to_time(end);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// Refuse a CA key that others can read.
fn check_private(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| TlsError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TlsError::cert(
            path.display().to_string(),
            format!(
                "the CA key is readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::cert_facts;

    #[test]
    fn ca_is_created_once_with_private_key_and_signs_requests() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join("ca");
        let ca = HubCa::load_or_create(&ca_dir).expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&ca_dir.join("ca.key")), 0o600);
        assert_eq!(mode(&ca_dir), 0o700);
        let again = HubCa::load_or_create(&ca_dir).expect("load");
        assert_eq!(ca.fingerprint(), again.fingerprint(), "CA re-created");

        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "hub");
        let csr = p.serialize_request(&key).expect("csr").pem().expect("pem");
        let cert = ca
            .sign_request("alice", &csr, Duration::from_secs(3600))
            .expect("sign");
        let facts = cert_facts(&cert).expect("facts");
        assert_eq!(facts.identity, "alice", "the CSR's subject must be ignored");
        let life = facts
            .not_after
            .duration_since(facts.not_before)
            .expect("order");
        assert_eq!(life, Duration::from_secs(3600) + CLOCK_SKEW);
        let short = ca
            .sign_request("alice", &csr, Duration::from_secs(12))
            .expect("sign");
        let facts = cert_facts(&short).expect("facts");
        let life = facts
            .not_after
            .duration_since(facts.not_before)
            .expect("order");
        assert_eq!(life, Duration::from_secs(15), "backdated by a quarter");
        assert!(!facts.needs_renewal(SystemTime::now()));
        assert!(facts.needs_renewal(SystemTime::now() + Duration::from_secs(8)));
        assert!(ca
            .sign_request("bob", "garbage", Duration::from_secs(1))
            .is_err());

        std::fs::set_permissions(
            ca_dir.join("ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let err = HubCa::load(&ca_dir).expect_err("world-readable key accepted");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
