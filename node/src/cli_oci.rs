//! The container image commands: `hub image import` and `mirror [setup]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use swarmhub_node::client;
use swarmhub_node::metrics::MetricsListen;
use swarmhub_node::oci::import as oci_import;
use swarmhub_node::paths::HubPaths;
use swarmhub_node::peer::PortRange;
use swarmhub_node::util::human_bytes;

#[derive(Args)]
pub(crate) struct MirrorArgs {
    /// Address to serve on (loopback only); `setup` points containerd at it.
    #[arg(long, global = true, default_value = client::mirror::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Peer ports (first free one is used; 0 = any).
    #[arg(long)]
    peer_ports: Option<PortRange>,
    /// Serve Prometheus metrics at http://ADDR/metrics (default `off`: the
    /// service serves them when it runs the mirror).
    #[arg(long, value_name = "ADDR", default_value = "off")]
    metrics_listen: MetricsListen,
    #[command(subcommand)]
    cmd: Option<MirrorCmd>,
}

#[derive(Subcommand)]
pub(crate) enum MirrorCmd {
    /// Point containerd at the mirror: write hosts.toml for a registry (or `_default`).
    Setup {
        /// Configure containerd (the only target so far).
        #[arg(long, required = true)]
        containerd: bool,
        /// Registry host to mirror (e.g. docker.io); default: every registry (`_default`).
        #[arg(long)]
        registry: Option<String>,
        /// Upstream URL containerd falls back to (default https://HOST).
        #[arg(long)]
        server: Option<String>,
        /// containerd's hosts folder.
        #[arg(long, default_value = client::mirror_setup::DEFAULT_HOSTS_DIR)]
        hosts_dir: PathBuf,
        /// Print the file instead of writing it.
        #[arg(long)]
        print: bool,
    },
}

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// Image reference, e.g. registry.example:5000/team/app:1.2 (not with --oci-layout).
    #[arg(required_unless_present = "oci_layout", conflicts_with = "oci_layout")]
    reference: Option<String>,
    /// Import from an OCI image layout folder instead: DIR or DIR:TAG.
    #[arg(long, value_name = "DIR[:TAG]")]
    oci_layout: Option<String>,
    /// Repository and tag the image answers to in the mirror (REPOSITORY:TAG).
    #[arg(long = "as", value_name = "NAME:TAG")]
    as_name: Option<String>,
    /// Keep only these platforms of a multi-platform index (OS/ARCH[/VARIANT]; repeatable).
    #[arg(long)]
    platform: Vec<String>,
    /// Registry user name (the password is read from standard input).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Docker config file with registry credentials (default ~/.docker/config.json).
    #[arg(long)]
    docker_config: Option<PathBuf>,
    /// Talk plain HTTP to the registry (never for registries outside a trusted network).
    #[arg(long)]
    insecure_registry: bool,
}

/// `hub image import`: import and say what was done.
pub(crate) async fn import(paths: &HubPaths, args: ImportArgs) -> Result<()> {
    let r = oci_import::import(paths, &args_to_import(args)?).await?;
    println!(
        "imported {} as {} ({} blobs, {}; {} fetched, {} reused from the cache) digest {}",
        r.repository,
        r.image,
        r.blobs,
        human_bytes(r.size),
        human_bytes(r.fetched_bytes),
        human_bytes(r.reused_bytes),
        r.digest
    );
    Ok(())
}

pub(crate) async fn run_mirror(home: Option<PathBuf>, m: MirrorArgs) -> Result<ExitCode> {
    use client::mirror_setup;
    match m.cmd {
        None => {
            let paths = crate::client_paths(home)?;
            let _logs = swarmhub_node::logging::init_client(&paths.logs());
            let opts = client::mirror::MirrorOptions {
                listen: m.listen,
                peer_ports: m.peer_ports,
                metrics_listen: m.metrics_listen,
            };
            client::mirror::mirror(&paths, &opts).await?;
        }
        Some(MirrorCmd::Setup {
            containerd: _,
            registry,
            server,
            hosts_dir,
            print,
        }) => {
            let opts = mirror_setup::SetupOptions {
                registry,
                server,
                mirror: m.listen,
                hosts_dir,
            };
            if print {
                let (path, text) = mirror_setup::render(&opts)?;
                println!("# {}\n{text}", path.display());
            } else {
                let path = mirror_setup::write(&opts)?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hub image import` arguments as import options.
fn args_to_import(a: ImportArgs) -> Result<oci_import::ImportOptions> {
    use swarmhub_node::oci::{reference, registry};
    let platforms = a
        .platform
        .iter()
        .map(|p| p.parse())
        .collect::<Result<Vec<_>, _>>()?;
    let as_name = a.as_name.as_deref().map(reference::parse_as).transpose()?;
    let source = match (a.oci_layout, a.reference) {
        (Some(l), _) => {
            let (dir, tag) = swarmhub_node::oci::layout::split_dir_tag(&l);
            oci_import::ImportSource::Layout { dir, tag }
        }
        (None, Some(r)) => {
            let credentials = match a.username {
                Some(username) => {
                    let mut password = String::new();
                    std::io::stdin()
                        .read_line(&mut password)
                        .context("reading the password from standard input")?;
                    Some(registry::Credentials {
                        username,
                        password: password.trim_end_matches(['\r', '\n']).to_owned(),
                    })
                }
                None => None,
            };
            oci_import::ImportSource::Registry {
                reference: reference::ImageRef::parse(&r)?,
                options: registry::RegistryOptions {
                    insecure: a.insecure_registry,
                    credentials,
                    docker_config: a.docker_config,
                },
            }
        }
        (None, None) => return Err(anyhow!("name an image reference or --oci-layout DIR")),
    };
    Ok(oci_import::ImportOptions {
        source,
        as_name,
        platforms,
    })
}
