//! Mutual TLS on peer links, at the transport: the negative matrix (each case
//! fails and no BitTorrent byte crosses) and the positive case, on 127.0.0.1.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::KeyPair;
use rustls::pki_types::{CertificateDer, ServerName};
use swarmhub_core::wire::Handshake;
use swarmhub_core::Id20;
use swarmhub_node::peer::listener::Inbound;
use swarmhub_node::peer::{self, PortRange, Registry, Transport};
use swarmhub_node::tls::ca::HubCa;
use swarmhub_node::tls::creds::{certified_key, KeyStore};
use swarmhub_node::tls::peer::{Revocations, TlsTransport};
use swarmhub_node::tls::{provider, PEER_NAME};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const HOUR: Duration = Duration::from_secs(3600);
fn info_hash() -> Id20 {
    Id20::new([7; 20])
}

const BT_PROTOCOL: &[u8] = b"BitTorrent protocol";

struct Pki {
    _dir: tempfile::TempDir,
    ca: HubCa,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = HubCa::load_or_create(&dir.path().join("ca")).expect("CA");
        Pki { _dir: dir, ca }
    }

    fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.cert_der().clone()
    }

    /// A key and a certificate for `identity`, valid from `start` for `life`.
    fn issue(
        &self,
        identity: &str,
        start: SystemTime,
        life: Duration,
    ) -> (KeyPair, CertificateDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let cert = self.ca.sign_key(identity, &key, start, life).expect("sign");
        (key, cert)
    }

    fn store(&self, identity: &str) -> Arc<KeyStore> {
        let (key, cert) = self.issue(identity, SystemTime::now(), HOUR);
        KeyStore::new(certified_key(&key, cert).expect("certified key"))
    }

    fn transport(&self, identity: &str, revoked: Arc<Revocations>) -> TlsTransport {
        TlsTransport::new(&self.ca_der(), self.store(identity), revoked).expect("transport")
    }
}

fn handshake(info_hash: Id20) -> Vec<u8> {
    let mut b = Vec::new();
    Handshake {
        info_hash,
        peer_id: Id20::new(*b"-TEST00-abcdefghijkl"),
        extended: true,
        fast: false,
    }
    .encode(&mut b);
    b
}

/// A TLS listener (the "hub") routing `info_hash()` to the returned receiver.
async fn listener(t: TlsTransport) -> (SocketAddr, mpsc::Receiver<Inbound>) {
    let tcp = peer::bind_first_free(Ipv4Addr::LOCALHOST.into(), PortRange { first: 0, last: 0 })
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let registry = Registry::default();
    let (tx, rx) = mpsc::channel(4);
    registry.insert(info_hash(), tx);
    drop(peer::spawn_listener(tcp, Arc::new(t), registry));
    (addr, rx)
}

/// A rustls client with any certificate (or none) and no server checks of
/// its own: what an attacker would run.
fn attacker(client_key: Option<(KeyPair, CertificateDer<'static>)>) -> tokio_rustls::TlsConnector {
    #[derive(Debug)]
    struct AcceptAll;
    impl rustls::client::danger::ServerCertVerifier for AcceptAll {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll));
    let config = match client_key {
        Some((key, cert)) => {
            let ck = certified_key(&key, cert).expect("certified key");
            b.with_client_cert_resolver(KeyStore::new(ck))
        }
        None => b.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connect as the attacker, send a handshake, and return how the link
/// ended (`"eof"`, `"quiet"` or the read error) and every plaintext byte the
/// listener sent back.
async fn attack(
    addr: SocketAddr,
    client_key: Option<(KeyPair, CertificateDer<'static>)>,
    info_hash: Id20,
) -> (String, Vec<u8>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(PEER_NAME).expect("name");
    let mut got = Vec::new();
    let mut tls = match attacker(client_key).connect(name, tcp).await {
        Ok(tls) => tls,
        Err(e) => return (format!("handshake: {e}"), got),
    };
    // TLS 1.3: the client may finish before the server has checked its
    // certificate; the refusal shows up on the first read.
    let _ = tls.write_all(&handshake(info_hash)).await;
    let _ = tls.flush().await;
    let mut buf = [0u8; 4096];
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buf)).await {
            Ok(Ok(0)) => break "eof".to_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => break e.to_string(),
            Err(_) => break "quiet".to_owned(),
        }
    };
    (end, got)
}

/// The listener refused the certificate with a TLS alert and sent nothing else.
fn assert_refused(case: &str, (end, got): (String, Vec<u8>)) {
    assert!(got.is_empty(), "{case}: got {} plaintext bytes", got.len());
    assert!(
        end.contains("alert"),
        "{case}: no TLS alert, link ended with {end:?}"
    );
}

async fn assert_nothing_routed(rx: &mut mpsc::Receiver<Inbound>, case: &str) {
    let r = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(r.is_err(), "{case}: the swarm was handed a link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_negative_matrix() {
    let pki = Pki::new();
    let revoked_list = Revocations::new();
    revoked_list.set(BTreeSet::from(["mallory".to_owned()]));
    let (addr, mut rx) = listener(pki.transport("hub", revoked_list.clone())).await;
    let now = SystemTime::now();

    // No client certificate.
    assert_refused("no cert", attack(addr, None, info_hash()).await);
    assert_nothing_routed(&mut rx, "no cert").await;

    // A certificate from another CA (same identity name).
    let other = Pki::new();
    assert_refused(
        "other CA",
        attack(addr, Some(other.issue("alice", now, HOUR)), info_hash()).await,
    );
    assert_nothing_routed(&mut rx, "other CA").await;

    // Expired.
    let expired = pki.issue("alice", now - 3 * HOUR, HOUR);
    assert_refused("expired", attack(addr, Some(expired), info_hash()).await);
    assert_nothing_routed(&mut rx, "expired").await;

    // Revoked.
    assert_refused(
        "revoked",
        attack(addr, Some(pki.issue("mallory", now, HOUR)), info_hash()).await,
    );
    assert_nothing_routed(&mut rx, "revoked").await;

    // An older certificate of a re-enrolled name: the hub bound "carol" to
    // another key since.
    let (old_key, old_cert) = pki.issue("carol", now, HOUR);
    let (_, new_cert) = pki.issue("carol", now, HOUR);
    let bound = swarmhub_node::tls::cert_key(&new_cert).expect("key");
    revoked_list.bind_key("carol", &bound);
    assert_refused(
        "old certificate of a re-enrolled name",
        attack(addr, Some((old_key, old_cert)), info_hash()).await,
    );
    assert_nothing_routed(&mut rx, "old certificate").await;

    // Another client's certificate, replayed without its key.
    let (_, alice_cert) = pki.issue("alice", now, HOUR);
    let (eve_key, _) = pki.issue("eve", now, HOUR);
    assert_refused(
        "replayed cert",
        attack(addr, Some((eve_key, alice_cert)), info_hash()).await,
    );
    assert_nothing_routed(&mut rx, "replayed cert").await;

    // Valid certificate, handshake for an image the listener does not serve.
    let (ok, got) = attack(
        addr,
        Some(pki.issue("alice", now, HOUR)),
        Id20::new([9; 20]),
    )
    .await;
    assert!(
        !ok.contains("alert"),
        "a valid certificate was refused: {ok}"
    );
    assert!(got.is_empty(), "wrong info hash: got {got:?}");
    assert_nothing_routed(&mut rx, "wrong info hash").await;

    // Plain-TCP BitTorrent handshake to the TLS port.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(&handshake(info_hash())).await.expect("send");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut got)).await;
    assert!(
        !got.windows(BT_PROTOCOL.len()).any(|w| w == BT_PROTOCOL),
        "plain TCP got a BitTorrent handshake back"
    );
    assert!(got.len() < 64, "plain TCP got {} bytes back", got.len());
    assert_nothing_routed(&mut rx, "plain TCP").await;

    // Positive control: the same attack code with a valid certificate gets through.
    let (end, _) = attack(addr, Some(pki.issue("alice", now, HOUR)), info_hash()).await;
    assert!(!end.contains("alert"), "valid certificate refused: {end}");
    let inbound = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("routed in time")
        .expect("inbound");
    assert_eq!(inbound.link.identity.as_deref(), Some("alice"));
    assert_eq!(inbound.handshake.info_hash, info_hash());
}

/// A TLS listener that records the plaintext it receives from the dialer.
async fn rogue_listener(
    config: rustls::ServerConfig,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let l = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let task = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.expect("accept");
        let mut got = Vec::new();
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut got)).await;
        }
        got
    });
    (addr, task)
}

fn server_with(key: KeyPair, cert: CertificateDer<'static>) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(KeyStore::new(certified_key(&key, cert).expect("ck")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_refuses_listeners_without_a_good_certificate() {
    let pki = Pki::new();
    let revoked = Revocations::new();
    revoked.set(BTreeSet::from(["mallory".to_owned()]));
    let dialer = pki.transport("alice", revoked);
    let now = SystemTime::now();
    let other = Pki::new();
    let cases = [
        ("other CA", other.issue("bob", now, HOUR)),
        ("expired", pki.issue("bob", now - 3 * HOUR, HOUR)),
        ("revoked", pki.issue("mallory", now, HOUR)),
    ];
    for (case, (key, cert)) in cases {
        let (addr, task) = rogue_listener(server_with(key, cert)).await;
        let r = dialer.connect(addr).await;
        assert!(r.is_err(), "{case}: dial succeeded");
        let got = task.await.expect("listener task");
        assert!(got.is_empty(), "{case}: listener got {} bytes", got.len());
    }
    // Replayed certificate: bob's certificate with eve's key.
    let (_, bob_cert) = pki.issue("bob", now, HOUR);
    let (eve_key, _) = pki.issue("eve", now, HOUR);
    let (addr, task) = rogue_listener(server_with(eve_key, bob_cert)).await;
    assert!(
        dialer.connect(addr).await.is_err(),
        "replayed cert: dial succeeded"
    );
    assert!(task.await.expect("task").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_enrolled_peers_connect_and_learn_each_others_identity() {
    let pki = Pki::new();
    let (addr, mut rx) = listener(pki.transport("hub", Revocations::new())).await;
    let dialer = pki.transport("alice", Revocations::new());
    let mut link = dialer.connect(addr).await.expect("dial");
    assert_eq!(link.identity.as_deref(), Some("hub"));
    link.stream
        .write_all(&handshake(info_hash()))
        .await
        .expect("send");
    link.stream.flush().await.expect("flush");
    let inbound = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("in time")
        .expect("inbound");
    assert_eq!(inbound.link.identity.as_deref(), Some("alice"));

    // Revocation heard later refuses new links at once.
    dialer.note_revocations(1, &["hub".to_owned()]);
    assert!(
        dialer.connect(addr).await.is_err(),
        "revoked listener accepted"
    );
}
