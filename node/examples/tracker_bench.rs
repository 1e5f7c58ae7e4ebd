//! Tracker throughput over HTTPS with client certificates and keep-alive.
//!
//! Starts a real hub in a temporary folder (in this process, on a runtime of
//! its own, logging to its log files as `swarmhub hub serve` does), adds
//! `--images` small images, enrolls `--identities` clients, then opens
//! `--conns` TLS connections (each presenting one client's certificate) and
//! sends announces back to back on each, for `--seconds`, cycling over
//! `--peers` distinct peer ids per connection across the images' swarms.
//! While that runs, a separate client fetches a metainfo and a 256 KiB web
//! seed range every 100 ms, to show the hub still answers pulls.
//!
//! ```text
//! cargo run --release -p swarmhub-node --example tracker_bench -- --conns 64 --seconds 10
//! ```
//!
//! The hub and the load generator share this machine's cores; the CPU time
//! each used is printed next to the figures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use swarmhub_core::tracker::http::{announce_query, decode_announce_response};
use swarmhub_core::tracker::{AnnounceEvent, AnnounceRequest};
use swarmhub_core::Id20;
use swarmhub_node::client::{self, HubClient};
use swarmhub_node::hub::serve::{serve_until, ServeOptions};
use swarmhub_node::paths::{ClientPaths, HubPaths};
use swarmhub_node::tls::creds::{CredentialFiles, KeyStore};
use tokio::net::TcpStream;
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(about = "Announces/s of a real hub over HTTPS with client certificates and keep-alive")]
struct Args {
    /// Keep-alive HTTPS connections sending announces.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Enrolled client identities (connections take them in turn).
    #[arg(long, default_value_t = 8)]
    identities: usize,
    /// Images (swarms) announced to.
    #[arg(long, default_value_t = 4)]
    images: usize,
    /// Distinct peer ids per connection.
    #[arg(long, default_value_t = 256)]
    peers: usize,
    /// Peers asked for per announce.
    #[arg(long, default_value_t = 50)]
    numwant: u32,
    /// Worker threads of the hub's runtime (default: one per core, as
    /// `swarmhub hub serve`).
    #[arg(long)]
    hub_threads: Option<usize>,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    bench_threads: usize,
    /// Keep the hub folder (its logs) here instead of a temporary folder.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// The load generator's HTTP client: `raw` writes prepared request
    /// bytes on the TLS stream and reads the reply by its Content-Length;
    /// `hyper` is hyper's HTTP/1.1 client connection (the earlier generator).
    #[arg(long, value_enum, default_value_t = ClientKind::Raw)]
    client: ClientKind,
    /// Announces written back to back on a connection before reading their
    /// replies (HTTP/1.1 pipelining; `raw` only). 1 (the default) is one
    /// request in flight per connection, as tracker clients do.
    #[arg(long, default_value_t = 1)]
    depth: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ClientKind {
    Raw,
    Hyper,
}

/// What one connection measured.
#[derive(Default)]
struct ConnStats {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.conns == 0
        || args.identities == 0
        || args.images == 0
        || args.peers == 0
        || args.depth == 0
    {
        bail!("--conns, --identities, --images, --peers and --depth must be at least 1");
    }
    if args.depth > 1 && args.client != ClientKind::Raw {
        bail!("--depth above 1 needs --client raw");
    }
    swarmhub_node::util::raise_open_file_limit();
    let tmp = tempfile::Builder::new()
        .prefix("tracker-bench-")
        .tempdir()
        .context("scratch folder")?;
    let work = args.keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    let hub_paths = HubPaths::new(work.join("hub"));
    std::fs::create_dir_all(&hub_paths.root)?;
    let _logs = swarmhub_node::logging::init_hub(&hub_paths.logs())?;

    // Images, identities.
    let mut hashes = Vec::new();
    for i in 0..args.images {
        let src = work.join(format!("src{i}/image.bin"));
        std::fs::create_dir_all(src.parent().expect("parent"))?;
        std::fs::write(&src, vec![i as u8; 1 << 20])?;
        let meta = swarmhub_node::hub::admin::image_add(
            &hub_paths,
            &format!("bench{i}:1"),
            std::slice::from_ref(&src),
        )
        .context("hub image add")?;
        hashes.push(meta.info_hash);
    }
    let mut keys = Vec::new();
    for i in 0..=args.identities {
        keys.push(swarmhub_node::hub::admin::user_add(
            &hub_paths,
            &format!("b{i}"),
        )?);
    }
    let fingerprint = swarmhub_node::tls::ca::HubCa::load_or_create(&hub_paths.ca_dir())
        .map_err(|e| anyhow!("hub CA: {e}"))?
        .fingerprint();

    // The hub, on a runtime of its own.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.hub_threads.unwrap_or(cores))
        .thread_name("sh-hub")
        .enable_all()
        .build()?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        seed_ports: "0".parse().map_err(|e: String| anyhow!(e))?,
        max_upload_bps: 0,
        announce_interval_s: 60,
        advertise_ip: None,
        cert_lifetime: Duration::from_secs(24 * 3600),
        metrics_listen: swarmhub_node::metrics::MetricsListen(None),
    };
    let hub = hub_rt.spawn(serve_until(hub_paths.clone(), opts, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));

    let bench_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.bench_threads.max(1))
        .thread_name("sh-bench")
        .enable_all()
        .build()?;
    let result = bench_rt.block_on(bench(
        &args,
        &hub_paths,
        &work,
        &keys,
        &fingerprint,
        &hashes,
    ));
    let _ = stop_tx.send(true);
    let _ = hub_rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), hub).await });
    result
}

async fn bench(
    args: &Args,
    hub_paths: &HubPaths,
    work: &Path,
    keys: &[String],
    fingerprint: &str,
    hashes: &[Id20],
) -> Result<()> {
    let api_file = hub_paths.run_file("api.addr");
    let addr: SocketAddr = loop {
        if let Ok(a) = tokio::fs::read_to_string(&api_file).await {
            break a.trim().parse()?;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let url = format!("https://{addr}");
    let mut homes = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let home = ClientPaths::new(work.join(format!("b{i}")));
        client::login(&home, &url, key, Some(fingerprint))
            .await
            .map_err(|e| anyhow!("login b{i}: {e}"))?;
        homes.push(home);
    }
    // b0 probes; b1.. announce.
    let probe_hub = client::ClientConfig::load(&client::open_db(&homes[0])?)?
        .hub(&homes[0])
        .await?;
    let ca = swarmhub_node::tls::ca::HubCa::load(&hub_paths.ca_dir())
        .map_err(|e| anyhow!("hub CA: {e}"))?;
    let mut connectors = Vec::new();
    for home in &homes[1..] {
        let creds = CredentialFiles::new(home.root.join("tls"))
            .load()
            .map_err(|e| anyhow!("{e}"))?;
        let keys = KeyStore::new(creds.certified_key().map_err(|e| anyhow!("{e}"))?);
        let tls = swarmhub_node::tls::peer::hub_client_config(ca.cert_der(), Some(keys))
            .map_err(|e| anyhow!("{e}"))?;
        let secret = client::ClientConfig::load(&client::open_db(home)?)?
            .secret
            .ok_or_else(|| anyhow!("no secret stored"))?;
        connectors.push((tokio_rustls::TlsConnector::from(Arc::new(tls)), secret));
    }

    let idle = probe_round(&probe_hub, hashes[0], 10).await;

    // Open every connection, then start together.
    let mut conns = Vec::with_capacity(args.conns);
    for c in 0..args.conns {
        let (connector, secret) = &connectors[c % connectors.len()];
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(swarmhub_node::tls::HUB_NAME)?;
        let tls = connector.connect(name, tcp).await.context("TLS connect")?;
        let reqs = requests(args, c, hashes, addr, secret)?;
        conns.push(match args.client {
            ClientKind::Hyper => {
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
                tokio::spawn(conn);
                Conn::Hyper(sender, reqs)
            }
            ClientKind::Raw => Conn::Raw(Box::new(tls), reqs.iter().map(Announce::bytes).collect()),
        });
    }
    let go = Arc::new(tokio::sync::Barrier::new(args.conns + 1));
    let running = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    let depth = args.depth;
    for conn in conns {
        let (go, running) = (go.clone(), running.clone());
        tasks.push(tokio::spawn(async move {
            go.wait().await;
            match conn {
                Conn::Hyper(sender, reqs) => drive(sender, reqs, &running).await,
                Conn::Raw(tls, reqs) => drive_raw(*tls, reqs, depth, &running).await,
            }
        }));
    }
    let cpu0 = cpu_by_thread();
    go.wait().await;
    let t0 = Instant::now();
    let (probe_stop_tx, probe_stop) = watch::channel(false);
    let probe = tokio::spawn(probe_loop(probe_hub.clone(), hashes[0], probe_stop));
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    running.store(false, Ordering::Relaxed);
    let _ = probe_stop_tx.send(true);
    let mut all = ConnStats::default();
    for t in tasks {
        let s = t.await?;
        all.latencies_us.extend(s.latencies_us);
        all.errors += s.errors;
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_by_thread();
    let loaded = probe.await?;

    all.latencies_us.sort_unstable();
    let ok = all.latencies_us.len();
    let ms = |q: f64| percentile_us(&all.latencies_us, q) as f64 / 1e3;
    println!(
        "tracker_bench: hub on {url} in this process ({} hub threads, {} bench threads, {} cores)",
        args.hub_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        args.bench_threads,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  {} connections, {} identities, {} images, {} peer ids per connection, numwant {}, \
         {:?} client, {} request(s) in flight per connection",
        args.conns, args.identities, args.images, args.peers, args.numwant, args.client, args.depth
    );
    println!(
        "  announces: {ok} answered in {wall:.2} s = {:.0}/s; errors {}{}",
        ok as f64 / wall,
        all.errors,
        all.first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "  announce latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(0.50),
        ms(0.99),
        ms(1.0)
    );
    println!("  pulls while loaded: {}", loaded.line());
    println!("  pulls idle (before): {}", idle.line());
    let used = |prefix: &str| cpu_delta(&cpu0, &cpu1, prefix);
    println!(
        "  CPU over the window: hub threads {:.2} cores, bench threads {:.2} cores, other {:.2} cores",
        used("sh-hub") / wall,
        used("sh-bench") / wall,
        (used("") - used("sh-hub") - used("sh-bench")) / wall
    );
    if ok > 0 {
        println!(
            "  CPU per announce: hub {:.1} us, bench {:.1} us (the hub alone on every core: about {:.0}/s)",
            used("sh-hub") / ok as f64 * 1e6,
            used("sh-bench") / ok as f64 * 1e6,
            ok as f64 / used("sh-hub").max(1e-9)
                * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
        );
    }
    Ok(())
}

/// One prepared announce (the header values are shared, not copied, by
/// every request made from it).
struct Announce {
    uri: hyper::Uri,
    host: hyper::header::HeaderValue,
    bearer: hyper::header::HeaderValue,
}

impl Announce {
    /// The whole HTTP/1.1 request, as the raw client writes it.
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.uri.to_string().as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(self.host.as_bytes());
        out.extend_from_slice(b"\r\nauthorization: ");
        out.extend_from_slice(self.bearer.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out
    }
}

/// A connection ready to send: hyper's client, or the TLS stream itself.
enum Conn {
    Hyper(
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        Vec<Announce>,
    ),
    Raw(
        Box<tokio_rustls::client::TlsStream<TcpStream>>,
        Vec<Vec<u8>>,
    ),
}

/// The announce requests of connection `c`: for each of its peers, a
/// `started` then a periodic announce, over the images in turn.
fn requests(
    args: &Args,
    c: usize,
    hashes: &[Id20],
    addr: SocketAddr,
    secret: &str,
) -> Result<Vec<Announce>> {
    let mut out = Vec::with_capacity(args.peers * 2);
    let bearer = hyper::header::HeaderValue::from_str(&format!("Bearer {secret}"))?;
    let host = hyper::header::HeaderValue::from_str(&addr.to_string())?;
    for event in [AnnounceEvent::Started, AnnounceEvent::Periodic] {
        for p in 0..args.peers {
            let n = c * args.peers + p;
            let mut id = *b"-SB0001-000000000000";
            id[8..20].copy_from_slice(format!("{n:012}").as_bytes());
            let req = AnnounceRequest {
                info_hash: hashes[n % hashes.len()],
                peer_id: Id20::new(id),
                ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
                // Distinct ports: the tracker evicts a second peer id on the
                // same address.
                port: 1024 + (n % 64_000) as u16,
                uploaded: 0,
                downloaded: 0,
                left: (n % 3) as u64 * (1 << 20),
                event,
                numwant: Some(args.numwant),
                compact: true,
            };
            let uri = format!("/announce?{}", announce_query(&req));
            out.push(Announce {
                uri: uri.parse()?,
                host: host.clone(),
                bearer: bearer.clone(),
            });
        }
    }
    Ok(out)
}

/// Send announces one after another on one connection while `running`.
async fn drive(
    mut sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    reqs: Vec<Announce>,
    running: &AtomicBool,
) -> ConnStats {
    let mut stats = ConnStats::default();
    // The first round is `started`; after it, periodic announces.
    let half = reqs.len() / 2;
    let mut i = 0;
    while running.load(Ordering::Relaxed) {
        let r = &reqs[i];
        let req = hyper::Request::get(r.uri.clone())
            .header(hyper::header::HOST, r.host.clone())
            .header(hyper::header::AUTHORIZATION, r.bearer.clone())
            .body(Empty::<Bytes>::new());
        i += 1;
        if i == reqs.len() {
            i = half;
        }
        let t = Instant::now();
        let outcome = match req {
            Ok(req) => match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.into_body().collect().await {
                        Ok(b) => {
                            let body = b.to_bytes();
                            if status.is_success() && !contains(&body, b"failure reason") {
                                Ok(())
                            } else {
                                Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))
                            }
                        }
                        Err(e) => Err(format!("body: {e}")),
                    }
                }
                Err(e) => Err(format!("send: {e}")),
            },
            Err(e) => Err(format!("request: {e}")),
        };
        match outcome {
            Ok(()) => stats
                .latencies_us
                .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32),
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(e);
                if sender.is_closed() {
                    break;
                }
            }
        }
    }
    stats
}

/// Send announces on one TLS stream while `running`: write `depth` prepared
/// requests, then read as many replies, each up to its Content-Length, and
/// check each is a 200 whose body decodes as an announce answer.
async fn drive_raw(
    mut tls: tokio_rustls::client::TlsStream<TcpStream>,
    reqs: Vec<Vec<u8>>,
    depth: usize,
    running: &AtomicBool,
) -> ConnStats {
    use tokio::io::AsyncWriteExt;
    let mut stats = ConnStats::default();
    let half = reqs.len() / 2;
    let mut i = 0;
    let mut out = Vec::with_capacity(depth * 256);
    let mut buf = ReplyBuf::default();
    while running.load(Ordering::Relaxed) {
        out.clear();
        for _ in 0..depth {
            out.extend_from_slice(&reqs[i]);
            i += 1;
            if i == reqs.len() {
                i = half;
            }
        }
        let t = Instant::now();
        if let Err(e) = async {
            tls.write_all(&out).await?;
            tls.flush().await
        }
        .await
        {
            stats.errors += depth as u64;
            stats.first_error.get_or_insert(format!("write: {e}"));
            break;
        }
        for _ in 0..depth {
            match buf.read_reply(&mut tls).await {
                Ok((200, body)) => match decode_announce_response(body) {
                    Ok(_) => stats
                        .latencies_us
                        .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32),
                    Err(e) => {
                        stats.errors += 1;
                        stats
                            .first_error
                            .get_or_insert(format!("HTTP 200 with a bad announce reply: {e}"));
                    }
                },
                Ok((status, body)) => {
                    stats.errors += 1;
                    stats
                        .first_error
                        .get_or_insert(format!("HTTP {status}: {}", String::from_utf8_lossy(body)));
                }
                Err(e) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert(e.to_string());
                    return stats;
                }
            }
        }
    }
    stats
}

/// Bytes read from one connection and not yet consumed as a reply.
struct ReplyBuf {
    data: Vec<u8>,
    /// Start of the unconsumed bytes.
    start: usize,
    /// End of the bytes read.
    end: usize,
}

impl Default for ReplyBuf {
    fn default() -> Self {
        ReplyBuf {
            data: vec![0; 16 << 10],
            start: 0,
            end: 0,
        }
    }
}

impl ReplyBuf {
    /// Read one HTTP/1.1 reply: its status and body (the body's length
    /// from `Content-Length`, which the hub always sends).
    async fn read_reply<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
    ) -> Result<(u16, &[u8])> {
        let head = loop {
            if let Some(n) = find(&self.data[self.start..self.end], b"\r\n\r\n") {
                break n + 4;
            }
            self.fill(io).await?;
        };
        let (status, len) = parse_head(&self.data[self.start..self.start + head])?;
        let total = head + len;
        while self.end - self.start < total {
            self.fill(io).await?;
        }
        let body = self.start + head..self.start + total;
        self.start += total;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok((status, &self.data[body]))
    }

    /// Read more bytes, moving what is unconsumed to the front (and growing
    /// the buffer) when the end is reached.
    async fn fill<R: tokio::io::AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<()> {
        use tokio::io::AsyncReadExt;
        if self.end == self.data.len() {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.data.len() {
                let n = self.data.len() * 2;
                self.data.resize(n, 0);
            }
        }
        let n = io.read(&mut self.data[self.end..]).await.context("read")?;
        if n == 0 {
            bail!("connection closed by the hub");
        }
        self.end += n;
        Ok(())
    }
}

/// Status and Content-Length of a reply head (status line and headers,
/// through the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, usize)> {
    let text = std::str::from_utf8(head).context("reply head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut len = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            len = Some(value.trim().parse::<usize>().context("Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("unexpected Transfer-Encoding {value:?}");
        }
    }
    Ok((
        status,
        len.ok_or_else(|| anyhow!("reply without Content-Length"))?,
    ))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn percentile_us(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies of the pull-side probe requests.
#[derive(Default)]
struct Probe {
    metainfo_us: Vec<u32>,
    webseed_us: Vec<u32>,
    errors: usize,
}

impl Probe {
    fn line(mut self) -> String {
        self.metainfo_us.sort_unstable();
        self.webseed_us.sort_unstable();
        let f = |v: &[u32]| {
            format!(
                "p50 {:.1} ms, max {:.1} ms",
                percentile_us(v, 0.5) as f64 / 1e3,
                percentile_us(v, 1.0) as f64 / 1e3
            )
        };
        format!(
            "metainfo {} ({}); web seed 256 KiB {} ({}); errors {}",
            self.metainfo_us.len(),
            f(&self.metainfo_us),
            self.webseed_us.len(),
            f(&self.webseed_us),
            self.errors
        )
    }

    async fn once(&mut self, hub: &HubClient, hash: Id20) {
        let image = "bench0:1".parse().expect("image name");
        let t = Instant::now();
        match hub.metainfo(&image).await {
            Ok(_) => self.metainfo_us.push(t.elapsed().as_micros() as u32),
            Err(_) => self.errors += 1,
        }
        let t = Instant::now();
        match hub.range(&hash, 0, (256 << 10) - 1).await {
            Ok(_) => self.webseed_us.push(t.elapsed().as_micros() as u32),
            Err(_) => self.errors += 1,
        }
    }
}

async fn probe_round(hub: &HubClient, hash: Id20, n: usize) -> Probe {
    let mut p = Probe::default();
    for _ in 0..n {
        p.once(hub, hash).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p
}

async fn probe_loop(hub: HubClient, hash: Id20, mut stop: watch::Receiver<bool>) -> Probe {
    let mut p = Probe::default();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        p.once(&hub, hash).await;
    }
    p
}

/// CPU seconds (user + system) of each thread of this process, by name.
fn cpu_by_thread() -> Vec<(String, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let name = stat[open + 1..close].to_owned();
            let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let user: f64 = f.get(11)?.parse().ok()?;
            let sys: f64 = f.get(12)?.parse().ok()?;
            Some((
                format!("{name}#{}", e.file_name().to_string_lossy()),
                (user + sys) / tick,
            ))
        })
        .collect()
}

fn cpu_delta(a: &[(String, f64)], b: &[(String, f64)], prefix: &str) -> f64 {
    b.iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, s)| s - a.iter().find(|(m, _)| m == n).map_or(0.0, |(_, x)| *x))
        .sum()
}
