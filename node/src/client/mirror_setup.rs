//! `swarmhub mirror setup --containerd`: containerd's `hosts.toml` pointing
//! a registry (or every registry, `_default`) at the local mirror, and the
//! doctor's mirror checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::doctor::Check;
use super::ClientError;
use crate::paths::ClientPaths;

/// containerd's default hosts folder (its CRI `config_path`).
pub const DEFAULT_HOSTS_DIR: &str = "/etc/containerd/certs.d";
/// containerd's default configuration file.
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";

/// What `mirror setup` writes.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    /// Registry host (`docker.io`, `registry.example:5000`); None: `_default`.
    pub registry: Option<String>,
    /// Upstream URL containerd falls back to (default `https://HOST`, for
    /// Docker Hub `https://registry-1.docker.io`).
    pub server: Option<String>,
    /// The mirror's address.
    pub mirror: SocketAddr,
    /// containerd's hosts folder.
    pub hosts_dir: PathBuf,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && !h.starts_with('.')
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
        && !h.contains("..")
}

/// The file's path and text.
pub fn render(opts: &SetupOptions) -> Result<(PathBuf, String), ClientError> {
    let folder = match &opts.registry {
        Some(h) if valid_host(h) => h.clone(),
        Some(h) => {
            return Err(ClientError::Other(format!(
                "--registry {h:?}: write a registry host such as docker.io or registry.example:5000"
            )))
        }
        None => "_default".into(),
    };
    let server = match (&opts.server, opts.registry.as_deref()) {
        (Some(s), _) => Some(s.clone()),
        (None, Some("docker.io")) => Some("https://registry-1.docker.io".into()),
        (None, Some(h)) => Some(format!("https://{h}")),
        (None, None) => None,
    };
    if let Some(s) = &server {
        if !(s.starts_with("https://") || s.starts_with("http://")) || s.contains('"') {
            return Err(ClientError::Other(format!(
                "--server {s:?}: write a URL such as https://registry.example:5000"
            )));
        }
    }
    let mut text = String::from(
        "# Written by `swarmhub mirror setup --containerd`: pulls go through the local\n\
         # swarmhub mirror first; what the hub does not have falls back to the server.\n",
    );
    if let Some(s) = server {
        text.push_str(&format!("server = \"{s}\"\n"));
    }
    text.push_str(&format!(
        "\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
        opts.mirror
    ));
    Ok((opts.hosts_dir.join(folder).join("hosts.toml"), text))
}

/// Write the file; returns its path.
pub fn write(opts: &SetupOptions) -> Result<PathBuf, ClientError> {
    let (path, text) = render(opts)?;
    crate::paths::write_atomic(&path, text.as_bytes())
        .map_err(|e| ClientError::Other(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// The doctor's mirror checks, when this client runs (or ran) a mirror.
pub async fn doctor_checks(paths: &ClientPaths) -> Vec<Check> {
    let Ok(addr) = std::fs::read_to_string(paths.run_file("mirror.addr")) else {
        return Vec::new();
    };
    let addr = addr.trim().to_owned();
    let url = format!("http://{addr}/v2/");
    let answer = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await;
    let api = match answer {
        Ok(r) if r.status().is_success() => {
            let pulling: Vec<String> = running_pulls(paths)
                .await
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect();
            let pulling = if pulling.is_empty() {
                String::new()
            } else {
                format!("; {}", pulling.join(", "))
            };
            Check {
                ok: true,
                name: "mirror",
                detail: format!("{url} answers{pulling}"),
            }
        }
        Ok(r) => Check {
            ok: false,
            name: "mirror",
            detail: format!("{url} answers HTTP {}", r.status()),
        },
        Err(e) => Check {
            ok: false,
            name: "mirror",
            detail: format!("{url} does not answer ({e}): is `swarmhub mirror` running?"),
        },
    };
    vec![api, containerd_check(Path::new(CONTAINERD_CONFIG), &addr)]
}

/// An image the running mirror is pulling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningPull {
    /// `NAME:TAG`.
    pub image: String,
    /// Percent verified.
    pub percent: u64,
    /// Bytes verified.
    pub bytes: u64,
    /// The image's size.
    pub total: u64,
}

impl std::fmt::Display for RunningPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: downloading {}% ({} of {})",
            self.image,
            self.percent,
            crate::util::human_bytes(self.bytes),
            crate::util::human_bytes(self.total)
        )
    }
}

/// The pulls the mirror running on this machine (its `run/mirror.addr`)
/// has in progress; None when no mirror runs or it does not answer.
pub async fn running_pulls(paths: &ClientPaths) -> Option<Vec<RunningPull>> {
    let addr = std::fs::read_to_string(paths.run_file("mirror.addr")).ok()?;
    let url = format!("http://{}{}", addr.trim(), super::mirror::STATS_PATH);
    let stats: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    Some(
        stats["pulling"]
            .as_array()?
            .iter()
            .filter_map(|p| {
                Some(RunningPull {
                    image: p["image"].as_str()?.to_owned(),
                    percent: n(p, "percent"),
                    bytes: n(p, "bytes"),
                    total: n(p, "total"),
                })
            })
            .collect(),
    )
}

/// Does containerd's configuration point some registry at `addr`?
pub fn containerd_check(config: &Path, addr: &str) -> Check {
    let name = "containerd mirror config";
    let fail = |detail: String| Check {
        ok: false,
        name,
        detail,
    };
    let text = std::fs::read_to_string(config).unwrap_or_default();
    let hosts_dir = text
        .lines()
        .map(str::trim)
        .find_map(|l| {
            let v = l
                .strip_prefix("config_path")?
                .trim()
                .strip_prefix('=')?
                .trim();
            Some(v.trim_matches(|c| c == '"' || c == '\'').to_owned())
        })
        .filter(|v| !v.is_empty());
    let Some(dir) = hosts_dir else {
        return fail(format!(
            "{} sets no registry config_path: add config_path = \"{DEFAULT_HOSTS_DIR}\" under \
             [plugins.\"io.containerd.grpc.v1.cri\".registry] (ctr takes --hosts-dir instead)",
            config.display()
        ));
    };
    let entries = std::fs::read_dir(&dir).map(|rd| rd.filter_map(Result::ok).collect::<Vec<_>>());
    let pointing: Vec<String> = entries
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("hosts.toml"))
                .is_ok_and(|t| t.contains(&format!("http://{addr}")))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if pointing.is_empty() {
        return fail(format!(
            "no hosts.toml under {dir} points at the mirror {addr}: run `swarmhub mirror setup --containerd`"
        ));
    }
    Check {
        ok: true,
        name,
        detail: format!("{dir}: {} use the mirror", pointing.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_for_a_registry_and_for_default() {
        let mut o = SetupOptions {
            registry: Some("docker.io".into()),
            server: None,
            mirror: "127.0.0.1:5050".parse().expect("addr"),
            hosts_dir: "/etc/containerd/certs.d".into(),
        };
        let (path, text) = render(&o).expect("render");
        assert_eq!(
            path,
            Path::new("/etc/containerd/certs.d/docker.io/hosts.toml")
        );
        assert!(
            text.contains("server = \"https://registry-1.docker.io\""),
            "{text}"
        );
        assert!(text.contains("[host.\"http://127.0.0.1:5050\"]"), "{text}");
        assert!(
            text.contains("capabilities = [\"pull\", \"resolve\"]"),
            "{text}"
        );
        o.registry = None;
        let (path, text) = render(&o).expect("render");
        assert!(path.ends_with("_default/hosts.toml"));
        assert!(!text.contains("server ="));
        o.registry = Some("../etc".into());
        assert!(render(&o).is_err());
    }

    #[test]
    fn containerd_check_finds_the_mirror() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let certs = tmp.path().join("certs.d");
        let cfg = tmp.path().join("config.toml");
        std::fs::write(&cfg, "version = 2\n").expect("write");
        assert!(!containerd_check(&cfg, "127.0.0.1:5050").ok);
        std::fs::write(&cfg, format!("  config_path = \"{}\"\n", certs.display())).expect("write");
        assert!(!containerd_check(&cfg, "127.0.0.1:5050").ok);
        let o = SetupOptions {
            registry: Some("reg.example:5000".into()),
            server: None,
            mirror: "127.0.0.1:5050".parse().expect("addr"),
            hosts_dir: certs,
        };
        write(&o).expect("write");
        let c = containerd_check(&cfg, "127.0.0.1:5050");
        assert!(c.ok, "{c}");
    }
}
