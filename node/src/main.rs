//! `swarmhub`: the hub and the client of swarmhub.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use swarmhub_node::client::{self, parse_max_peers, ConfigChanges, PullOptions};
use swarmhub_node::hub::{self, admin, serve::ServeOptions};
use swarmhub_node::metrics::server::DEFAULT_METRICS_LISTEN;
use swarmhub_node::metrics::MetricsListen;
use swarmhub_node::paths::{ClientPaths, HubPaths};
use swarmhub_node::peer::PortRange;
use swarmhub_node::util::{human_bytes, parse_size};

mod cli_oci;

#[derive(Parser)]
#[command(
    name = "swarmhub",
    version,
    about = "Peer-to-peer image distribution: hub and client"
)]
struct Cli {
    /// Client state folder (default: the platform data folder).
    #[arg(long, global = true, env = "SWARMHUB_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run or administer a hub.
    Hub(HubArgs),
    /// Enroll with a hub and store the credentials.
    Login {
        /// Hub URL, e.g. https://hub.example:7070
        hub_url: String,
        /// Enrollment key from `swarmhub hub user add NAME`.
        #[arg(long)]
        key: String,
        /// Expected SHA-256 fingerprint of the hub CA (from `swarmhub hub config
        /// --all`); without it, login asks.
        #[arg(long)]
        fingerprint: Option<String>,
    },
    /// Download an image (NAME:TAG) from the hub and peers.
    Pull {
        /// NAME:TAG
        image: String,
        /// Keep seeding after completion until interrupted.
        #[arg(long)]
        wait_after_exit: bool,
        /// Also place the files in this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        net: NetArgs,
        /// Seconds in which neither this client nor its peers make progress
        /// before HTTP from the hub is added, a few pieces at a time (a client
        /// whose peers progress without serving it waits 4 times as long).
        #[arg(long)]
        fallback_after: Option<u64>,
        /// Most connections for this image (default: the `max_peers` setting,
        /// else 50).
        #[arg(long, value_parser = parse_max_peers)]
        max_peers: Option<usize>,
        /// How long the hub may stay unreachable, while the pull needs it,
        /// before the pull gives up (e.g. 1h, 90m, 30s).
        #[arg(long, value_parser = parse_give_up, default_value = "1h")]
        give_up_after: std::time::Duration,
        /// Serve Prometheus metrics at http://ADDR/metrics (`off`: none);
        /// default 127.0.0.1:9070 with --wait-after-exit, none without.
        #[arg(long, value_name = "ADDR", env = "SWARMHUB_METRICS_LISTEN")]
        metrics_listen: Option<MetricsListen>,
    },
    /// Show or change client settings.
    Config {
        /// Switch on: p2pdownload.
        #[arg(long)]
        enable: Vec<String>,
        /// Switch off: p2pdownload.
        #[arg(long)]
        disable: Vec<String>,
        /// Print every setting.
        #[arg(long)]
        all: bool,
        /// Upload limit to store (e.g. 20M, unlimited).
        #[arg(long)]
        max_upload_rate: Option<String>,
        /// Download limit to store.
        #[arg(long)]
        max_download_rate: Option<String>,
        /// Peer port range to store (e.g. 6881-6889).
        #[arg(long)]
        peer_ports: Option<String>,
        /// HTTP fallback delay to store, seconds.
        #[arg(long)]
        fallback_after: Option<u64>,
        /// Most connections per image to store (a whole number, at least 1).
        #[arg(long)]
        max_peers: Option<String>,
    },
    /// Seed every local image and keep announcing (foreground).
    Service {
        #[command(flatten)]
        net: NetArgs,
        /// Serve Prometheus metrics at http://ADDR/metrics (`off`: none).
        #[arg(long, value_name = "ADDR", env = "SWARMHUB_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
        metrics_listen: MetricsListen,
    },
    /// Serve containerd and skopeo the OCI registry API on loopback, blobs from the swarm.
    Mirror(cli_oci::MirrorArgs),
    /// List local images.
    Images,
    /// Check hub, tracker, seeder and local port; non-zero exit if any check fails.
    Doctor,
}

#[derive(Args, Clone)]
struct NetArgs {
    /// Upload limit (bytes/s, e.g. 500K, 20M, unlimited).
    #[arg(long, value_parser = parse_size)]
    max_upload_rate: Option<u64>,
    /// Download limit (bytes/s).
    #[arg(long, value_parser = parse_size)]
    max_download_rate: Option<u64>,
    /// Peer ports (first free one is used; 0 = any).
    #[arg(long)]
    peer_ports: Option<PortRange>,
}

#[derive(Args)]
struct HubArgs {
    /// Hub state folder (accepted before or after the hub subcommand).
    #[arg(long, global = true, env = "SWARMHUB_HUB_DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: HubCmd,
}

#[derive(Subcommand)]
enum HubCmd {
    /// Serve the API, tracker, web seed and seeder until SIGINT/SIGTERM.
    Serve {
        /// API and tracker address.
        #[arg(long, default_value = "0.0.0.0:7070")]
        listen: SocketAddr,
        /// Seeder port range (first free port is used; 0 = any).
        #[arg(long, default_value = "6881-6889")]
        seed_ports: PortRange,
        /// Seeder upload limit (bytes/s).
        #[arg(long, value_parser = parse_size, default_value = "unlimited")]
        max_upload_rate: u64,
        /// Seconds between client announces.
        #[arg(long, default_value_t = 120)]
        announce_interval: u64,
        /// Address clients reach the seeder at (default: the address they reach the API on).
        #[arg(long)]
        advertise_ip: Option<IpAddr>,
        /// Lifetime of client certificates (e.g. 12h, 90m, 30s); clients renew
        /// when a third is left.
        #[arg(long, value_parser = parse_lifetime, default_value = "12h")]
        cert_lifetime: std::time::Duration,
        /// Serve Prometheus metrics at http://ADDR/metrics, plain HTTP (`off`: none).
        #[arg(long, value_name = "ADDR", env = "SWARMHUB_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
        metrics_listen: MetricsListen,
    },
    /// Manage cached images.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Manage the cache folder.
    Cache {
        #[command(subcommand)]
        cmd: CacheCmd,
    },
    /// Manage users (clients).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Show or change hub settings.
    Config {
        /// Switch on: cache, p2p, seed.
        #[arg(long)]
        enable: Vec<String>,
        /// Switch off: cache, p2p, seed.
        #[arg(long)]
        disable: Vec<String>,
        /// Print every setting.
        #[arg(long)]
        all: bool,
        /// Mutual TLS on peer links: on (default) or off (interoperability tests only).
        #[arg(long, value_name = "on|off")]
        peer_tls: Option<String>,
        /// Set a seeder setting, named as a scenario's `[hub]` key: upload,
        /// download (rates such as "10 Gbit/s"), connection_limit (per image),
        /// upload_slots, super_seed; VALUE `default`
        /// restores the default. Repeatable.
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Host names and addresses the hub is reached by, comma-separated
        /// (its server certificate names them); `default`: this machine's
        /// host name, the --listen address, localhost and 127.0.0.1.
        #[arg(long, value_name = "NAMES")]
        hostname: Option<String>,
        /// Sites: CIDR ranges mapped to site names, comma-separated, e.g.
        /// "10.1.0.0/16=paris, 10.2.0.0/16=london" (the longest prefix wins);
        /// `none` clears them. Clients are told their site and prefer peers
        /// of their own, so about one copy of an image crosses each link.
        #[arg(long, value_name = "CIDR=SITE,...")]
        sites: Option<String>,
    },
    /// The admin console's password.
    Admin {
        #[command(subcommand)]
        cmd: AdminCmd,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Set the admin console password, read from the first line of stdin.
    Passwd,
}

/// `12h`, `90m`, `30s` or plain seconds; from 10 s to 31 days (client
/// certificates are meant to be short-lived).
fn parse_lifetime(s: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("lifetime {s:?}: write a number with h, m or s (e.g. 12h), from 10s to 744h");
    let (num, unit) = match s.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s.trim()[..i], c),
        _ => (s.trim(), 's'),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        'h' => n.checked_mul(3600),
        'm' => n.checked_mul(60),
        's' => Some(n),
        _ => None,
    }
    .filter(|&x| (10..=31 * 24 * 3600).contains(&x))
    .ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(secs))
}

/// `--give-up-after`: a number with h, m or s (plain: seconds), at least 1 s.
fn parse_give_up(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?}: write a duration with h, m or s (e.g. 1h, 90m, 30s)");
    let t = s.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'h') => (&t[..t.len() - 1], 3600),
        Some(b'm') => (&t[..t.len() - 1], 60),
        Some(b's') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    n.checked_mul(mult)
        .filter(|&secs| secs >= 1)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Copy files into the cache and build the metainfo.
    Add {
        /// NAME:TAG
        image: String,
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Import a container image from a registry (REF) or an OCI layout.
    Import(cli_oci::ImportArgs),
    /// List cached images.
    List,
    /// Remove an image.
    Rm {
        /// NAME:TAG
        image: String,
    },
}

#[derive(Subcommand)]
enum CacheCmd {
    /// Re-scan the cache folder: hash new or changed images, drop stale ones.
    Update,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user and print its one-time enrollment key.
    Add {
        /// User name.
        name: String,
    },
    /// Revoke a user.
    Rm {
        /// User name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    swarmhub_node::util::raise_open_file_limit();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn client_paths(home: Option<PathBuf>) -> Result<ClientPaths> {
    home.or_else(ClientPaths::default_root)
        .map(ClientPaths::new)
        .ok_or_else(|| anyhow!("no home folder: pass --home DIR or set SWARMHUB_HOME"))
}

fn on_off(b: bool) -> &'static str {
    if b {
        "Enabled"
    } else {
        "Disabled"
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Hub(h) => {
            let dir = h
                .dir
                .or_else(|| ClientPaths::default_root().map(|r| r.join("hub")))
                .ok_or_else(|| anyhow!("no hub folder: pass --dir DIR"))?;
            run_hub(HubPaths::new(dir), h.cmd).await
        }
        Cmd::Login {
            hub_url,
            key,
            fingerprint,
        } => {
            let paths = client_paths(cli.home)?;
            let id = client::login(&paths, &hub_url, &key, fingerprint.as_deref()).await?;
            println!("logged in to {hub_url} as {id}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Pull {
            image,
            wait_after_exit,
            out,
            net,
            fallback_after,
            max_peers,
            give_up_after,
            metrics_listen,
        } => {
            let paths = client_paths(cli.home)?;
            let _logs = swarmhub_node::logging::init_client(&paths.logs());
            let metrics_listen = match metrics_listen {
                Some(m) => m,
                None if wait_after_exit => {
                    DEFAULT_METRICS_LISTEN.parse().map_err(|e| anyhow!("{e}"))?
                }
                None => MetricsListen(None),
            };
            let opts = PullOptions {
                metrics_listen,
                image,
                wait_after_exit,
                out,
                max_upload_bps: net.max_upload_rate,
                max_download_bps: net.max_download_rate,
                fallback_after_s: fallback_after,
                peer_ports: net.peer_ports,
                give_up_after: Some(give_up_after),
                max_peers,
                link: None,
                metrics: None,
            };
            client::pull(&paths, &opts).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Config {
            enable,
            disable,
            all,
            max_upload_rate,
            max_download_rate,
            peer_ports,
            fallback_after,
            max_peers,
        } => {
            let paths = client_paths(cli.home)?;
            let changes = ConfigChanges {
                enable,
                disable,
                max_upload_rate,
                max_download_rate,
                peer_ports,
                fallback_after_s: fallback_after,
                max_peers,
            };
            let cfg = client::config(&paths, &changes)?;
            if all {
                for line in cfg.lines() {
                    println!("{line}");
                }
            } else {
                println!("Peer-to-peer download: {}", on_off(cfg.p2p_download));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Service {
            net,
            metrics_listen,
        } => {
            let paths = client_paths(cli.home)?;
            let _logs = swarmhub_node::logging::init_client(&paths.logs());
            client::service(
                &paths,
                net.peer_ports,
                net.max_upload_rate,
                net.max_download_rate,
                metrics_listen,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Mirror(m) => cli_oci::run_mirror(cli.home, m).await,
        Cmd::Images => {
            let paths = client_paths(cli.home)?;
            let list = client::images(&paths)?;
            let pulling = client::mirror_setup::running_pulls(&paths)
                .await
                .unwrap_or_default();
            if list.is_empty() && pulling.is_empty() {
                println!("no local images");
            }
            for p in &pulling {
                println!("{p}\t(through the mirror)");
            }
            for i in list {
                // Container images (from the mirror) also show their digest.
                let digest = swarmhub_node::oci::stored_root(&i.path)
                    .map(|r| format!("\t{}", r.digest))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{} files\t{}{digest}",
                    i.name,
                    human_bytes(i.size),
                    i.files,
                    i.path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Doctor => {
            let paths = client_paths(cli.home)?;
            let checks = client::doctor(&paths).await?;
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed > 0 {
                eprintln!("{failed} check(s) failed");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_hub(paths: HubPaths, cmd: HubCmd) -> Result<ExitCode> {
    match cmd {
        HubCmd::Serve {
            listen,
            seed_ports,
            max_upload_rate,
            announce_interval,
            advertise_ip,
            cert_lifetime,
            metrics_listen,
        } => {
            std::fs::create_dir_all(&paths.root)
                .with_context(|| format!("creating {}", paths.root.display()))?;
            // Held until serve returns: dropping it writes out the queued lines.
            let _logs = swarmhub_node::logging::init_hub(&paths.logs())
                .with_context(|| format!("opening log files in {}", paths.logs().display()))?;
            let opts = ServeOptions {
                listen,
                seed_ports,
                max_upload_bps: max_upload_rate,
                announce_interval_s: announce_interval,
                advertise_ip,
                cert_lifetime,
                metrics_listen,
            };
            hub::serve::serve(paths, opts).await?;
        }
        HubCmd::Image {
            cmd: ImageCmd::Add {
                image,
                paths: inputs,
            },
        } => {
            let p = paths.clone();
            let meta = tokio::task::spawn_blocking(move || admin::image_add(&p, &image, &inputs))
                .await??;
            println!(
                "added {} ({}, {} files, {} pieces of {})",
                meta.name,
                human_bytes(meta.total_length()),
                meta.files.len(),
                meta.num_pieces(),
                human_bytes(u64::from(meta.piece_length))
            );
        }
        HubCmd::Image {
            cmd: ImageCmd::Import(args),
        } => {
            cli_oci::import(&paths, args).await?;
        }
        HubCmd::Image {
            cmd: ImageCmd::List,
        } => {
            let db = admin::open_db(&paths)?;
            let mut list = admin::image_list(&db)?;
            if let Some(live) = live_images(&paths).await {
                for i in &mut list {
                    if let Some(l) = live.iter().find(|l| l.name == i.name) {
                        i.seeders = l.seeders;
                        i.leechers = l.leechers;
                    }
                }
            }
            if list.is_empty() {
                println!("no images in the cache");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<32} {:>12} {:>8} {:>8} {:>8}  DIGEST",
                "IMAGE", "SIZE", "PIECES", "SEEDERS", "LEECHERS"
            );
            for i in list {
                let n = |v: Option<u32>| v.map_or("-".to_owned(), |x| x.to_string());
                let digest = swarmhub_node::oci::hub_image_digest(&paths, &i.name);
                println!(
                    "{:<32} {:>12} {:>8} {:>8} {:>8}  {}",
                    i.name,
                    human_bytes(i.size),
                    i.pieces,
                    n(i.seeders),
                    n(i.leechers),
                    digest.as_deref().unwrap_or("-")
                );
            }
        }
        HubCmd::Image {
            cmd: ImageCmd::Rm { image },
        } => {
            admin::image_rm(&paths, &image)?;
            println!("removed {image}");
        }
        HubCmd::Cache {
            cmd: CacheCmd::Update,
        } => {
            let p = paths.clone();
            let report = tokio::task::spawn_blocking(move || {
                let db = admin::open_db(&p)?;
                admin::cache_update(&p, &db)
            })
            .await??;
            for n in &report.hashed {
                println!("hashed {n}");
            }
            for n in &report.dropped {
                println!("dropped {n} (folder gone)");
            }
            for n in &report.skipped {
                println!("skipped {n}");
            }
            println!("{} unchanged", report.unchanged.len());
        }
        HubCmd::User {
            cmd: UserCmd::Add { name },
        } => {
            let key = admin::user_add(&paths, &name)?;
            let ca = swarmhub_node::tls::ca::HubCa::load_or_create(&paths.ca_dir())?;
            println!("{key}");
            eprintln!(
                "one-time enrollment key for {name}: on the client run \
                 `swarmhub login HUB_URL --key {key} --fingerprint {}`",
                ca.fingerprint()
            );
        }
        HubCmd::User {
            cmd: UserCmd::Rm { name },
        } => {
            admin::user_rm(&paths, &name)?;
            println!("revoked {name}");
        }
        HubCmd::Admin {
            cmd: AdminCmd::Passwd,
        } => admin_passwd(&paths)?,
        HubCmd::Config {
            enable,
            disable,
            all,
            peer_tls,
            set,
            hostname,
            sites,
        } => {
            // Every setting is printed, with or without --all (there are few).
            let _ = all;
            let change = admin::ConfigChange {
                enable,
                disable,
                peer_tls,
                set,
                hostname,
                sites,
            };
            let s = admin::config(&paths, &change)?;
            let ca = swarmhub_node::tls::ca::HubCa::load_or_create(&paths.ca_dir())?;
            println!("Image cache: {}", on_off(s.cache));
            println!("Peer-to-peer distribution: {}", on_off(s.p2p));
            println!("Hub seeder: {}", on_off(s.seed));
            println!("Peer TLS: {}", on_off(s.peer_tls));
            for key in hub::SEEDER_KEYS {
                println!("{key}: {}", hub::seeder_setting_text(&s.seeder, key));
            }
            match &s.hostnames {
                Some(names) => println!("Host names: {}", hub::hostnames::list_text(names)),
                None => println!(
                    "Host names: default ({}, and the --listen address)",
                    hub::hostnames::list_text(&hub::hostnames::default_names(None))
                ),
            }
            println!("Sites: {}", s.sites);
            println!("Hub CA fingerprint (SHA-256): {}", ca.fingerprint());
            if !s.peer_tls {
                eprintln!("{}", hub::PEER_TLS_OFF_WARNING);
                println!("{}", hub::PEER_TLS_OFF_WARNING);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hub admin passwd`: the new password from stdin's first line (a prompt
/// on stderr when stdin is a terminal; the password is echoed there).
fn admin_passwd(paths: &HubPaths) -> Result<()> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!(
            "new admin console password (at least {} characters): ",
            hub::passwd::MIN_PASSWORD_CHARS
        );
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    let db = admin::open_db(paths)?;
    hub::passwd::set_password(&db, password)?;
    let generated = paths.root.join(hub::passwd::GENERATED_FILE);
    if generated.exists() {
        let _ = std::fs::remove_file(&generated);
    }
    println!("admin console password set");
    Ok(())
}

/// Live counts from a running hub (through its admin token), if one runs.
async fn live_images(paths: &HubPaths) -> Option<Vec<admin::ImageInfo>> {
    let addr = std::fs::read_to_string(paths.run_file("api.addr")).ok()?;
    let token = std::fs::read_to_string(paths.run_file("admin.token")).ok()?;
    let addr: SocketAddr = addr.trim().parse().ok()?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), addr.port())
    } else {
        addr
    };
    let ca = swarmhub_node::tls::ca::HubCa::load(&paths.ca_dir()).ok()?;
    let tls = swarmhub_node::tls::peer::hub_client_config(ca.cert_der(), None).ok()?;
    let resp = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .ok()?
        .get(format!("https://{host}/api/v1/images"))
        .header(hub::ADMIN_HEADER, token.trim())
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}
