//! Network namespaces, veth pairs, a bridge and tbf shaping.
//!
//! Layout: one namespace per host (`PREFIX-h0` for the hub, `PREFIX-cN` for
//! client N) and one for the bridge (`PREFIX-br`). Host N's `eth0` pairs with
//! `vN` on the bridge `br0`. A host's upload is shaped on the egress of its own
//! `eth0`, its download on the egress of `vN` (what the bridge sends to it).
//! Command construction is pure (and unit tested); [`run`] executes.

use std::process::{Command, Stdio};

use crate::plan::{HostPlan, LabPlan};

/// Bridge device inside the bridge namespace.
pub const BRIDGE: &str = "br0";
/// Prefix length of the lab network (10.77.0.0/16).
pub const PREFIX_LEN: u8 = 16;
/// Queueing allowance of the tbf shapers, milliseconds (sets their queue
/// length: `rate * latency + burst`).
pub const TBF_LATENCY_MS: u32 = 50;

/// One command line: program and arguments.
pub type Cmd = Vec<String>;

fn cmd(parts: &[&str]) -> Cmd {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Names of a lab's namespaces and devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (letters, digits; short, since the host
    /// namespace names must stay readable in `ip netns list`).
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_string(),
        }
    }

    /// `PREFIX-` (every namespace of this lab starts with it).
    pub fn ns_prefix(&self) -> String {
        format!("{}-", self.prefix)
    }

    /// The bridge namespace.
    pub fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// Namespace of host `id` (0 is the hub).
    pub fn host_ns(&self, id: usize) -> String {
        if id == 0 {
            format!("{}-h0", self.prefix)
        } else {
            format!("{}-c{id}", self.prefix)
        }
    }

    /// Bridge-side veth end of host `id`.
    pub fn port(id: usize) -> String {
        format!("v{id}")
    }
}

/// tbf burst for a rate: 10 ms worth of bytes, at least 32 KiB (several
/// full-size frames, so the bucket never holds back a single packet).
pub fn tbf_burst_bytes(rate_bps: f64) -> u64 {
    ((rate_bps / 8.0 * 0.010) as u64).max(32 * 1024)
}

/// `tc` command shaping the egress of `dev` in `ns` to `rate_bps`.
pub fn tbf(ns: &str, dev: &str, rate_bps: f64) -> Cmd {
    let rate = format!("{}bit", rate_bps.round() as u64);
    let burst = tbf_burst_bytes(rate_bps).to_string();
    let latency = format!("{TBF_LATENCY_MS}ms");
    cmd(&[
        "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst",
        &burst, "latency", &latency,
    ])
}

/// Commands creating the bridge namespace.
pub fn bridge_commands(names: &Names) -> Vec<Cmd> {
    let br = names.bridge_ns();
    vec![
        cmd(&["ip", "netns", "add", &br]),
        cmd(&["ip", "-n", &br, "link", "set", "lo", "up"]),
        cmd(&["ip", "-n", &br, "link", "add", BRIDGE, "type", "bridge"]),
        cmd(&["ip", "-n", &br, "link", "set", BRIDGE, "up"]),
    ]
}

/// Commands creating host `h`'s namespace, its veth pair, address and shapers.
pub fn host_commands(names: &Names, h: &HostPlan) -> Vec<Cmd> {
    let br = names.bridge_ns();
    let ns = names.host_ns(h.id);
    let port = Names::port(h.id);
    let addr = format!("{}/{PREFIX_LEN}", h.addr);
    vec![
        cmd(&["ip", "netns", "add", &ns]),
        cmd(&["ip", "-n", &ns, "link", "set", "lo", "up"]),
        cmd(&[
            "ip", "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]),
        cmd(&["ip", "-n", &br, "link", "set", &port, "master", BRIDGE]),
        cmd(&["ip", "-n", &br, "link", "set", &port, "up"]),
        cmd(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"]),
        cmd(&["ip", "-n", &ns, "link", "set", "eth0", "up"]),
        tbf(&ns, "eth0", h.upload_bps),
        tbf(&br, &port, h.download_bps),
    ]
}

/// Every command that builds a lab for `plan`, bridge first.
pub fn setup_commands(names: &Names, plan: &LabPlan) -> Vec<Cmd> {
    let mut all = bridge_commands(names);
    for h in plan.hosts() {
        all.extend(host_commands(names, h));
    }
    all
}

/// Prefix a command so it runs inside namespace `ns`.
pub fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// Why a lab command failed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed: {message}")]
pub struct NetError {
    /// The command line.
    pub command: String,
    /// Its stderr or the spawn error.
    pub message: String,
}

/// Run one command, failing with its stderr.
pub fn run(c: &[String]) -> Result<String, NetError> {
    let fail = |message: String| NetError {
        command: c.join(" "),
        message,
    };
    let out = Command::new(&c[0])
        .args(&c[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Namespaces whose names start with `prefix` (from `ip netns list`).
pub fn list_namespaces(prefix: &str) -> Result<Vec<String>, NetError> {
    let out = run(&cmd(&["ip", "netns", "list"]))?;
    Ok(parse_netns_list(&out, prefix))
}

/// Names from `ip netns list` output (`NAME` or `NAME (id: N)` per line).
pub fn parse_netns_list(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Process ids inside namespace `ns` (`ip netns pids`).
pub fn namespace_pids(ns: &str) -> Vec<i32> {
    run(&cmd(&["ip", "netns", "pids", ns]))
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kill every process in the lab's namespaces and delete them (host
/// namespaces first, so their veth pairs go with them). Returns the
/// namespaces removed; errors are reported, not fatal, so cleanup goes on.
pub fn teardown(names: &Names) -> Vec<String> {
    let Ok(mut found) = list_namespaces(&names.ns_prefix()) else {
        return Vec::new();
    };
    let bridge = names.bridge_ns();
    found.sort_by_key(|n| *n == bridge);
    for ns in &found {
        for pid in namespace_pids(ns) {
            crate::procs::kill_pid(pid, true);
        }
    }
    for ns in &found {
        if let Err(e) = run(&cmd(&["ip", "netns", "del", ns])) {
            eprintln!("swarmhub-lab: cleanup: {e}");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::HUB_ADDR;

    fn host(id: usize) -> HostPlan {
        HostPlan {
            id,
            group: "g".into(),
            addr: crate::plan::client_addr(id),
            upload_bps: 20e6,
            download_bps: 30e6,
            join_s: 0.0,
        }
    }

    #[test]
    fn tbf_command_names_rate_burst_and_queue() {
        let c = tbf("lab-c1", "eth0", 20e6);
        assert_eq!(
            c.join(" "),
            "tc -n lab-c1 qdisc replace dev eth0 root tbf rate 20000000bit burst 32768 latency 50ms"
        );
        assert_eq!(tbf_burst_bytes(100e6), 125_000, "10 ms at 100 Mbit/s");
        assert_eq!(tbf_burst_bytes(1e6), 32 * 1024, "floor of 32 KiB");
    }

    #[test]
    fn upload_is_shaped_on_the_host_end_and_download_on_the_bridge_end() {
        let names = Names::new("lab");
        let cmds = host_commands(&names, &host(3));
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(lines[0], "ip netns add lab-c3");
        assert!(lines.contains(
            &"ip -n lab-br link add v3 type veth peer name eth0 netns lab-c3".to_string()
        ));
        assert!(lines.contains(&"ip -n lab-c3 addr add 10.77.1.3/16 dev eth0".to_string()));
        let up = lines
            .iter()
            .find(|l| l.contains("dev eth0 root tbf"))
            .expect("upload");
        assert!(
            up.starts_with("tc -n lab-c3 ") && up.contains("rate 20000000bit"),
            "{up}"
        );
        let down = lines
            .iter()
            .find(|l| l.contains("dev v3 root tbf"))
            .expect("download");
        assert!(
            down.starts_with("tc -n lab-br ") && down.contains("rate 30000000bit"),
            "{down}"
        );
        // The veth pair must exist before it is enslaved, addressed or shaped.
        let pos = |needle: &str| lines.iter().position(|l| l.contains(needle)).expect(needle);
        assert!(pos("type veth") < pos("master br0"));
        assert!(pos("type veth") < pos("root tbf"));
    }

    #[test]
    fn setup_builds_the_bridge_then_every_host() {
        let plan = LabPlan {
            hub: HostPlan {
                id: 0,
                addr: HUB_ADDR,
                ..host(0)
            },
            clients: vec![host(1), host(2)],
            leave: crate::plan::Leave::AtEnd,
            image_bytes: 1,
            piece_bytes: 1,
            p2p: true,
            announce_interval_s: 1,
            duration_s: 1.0,
        };
        let names = Names::new("x");
        let all = setup_commands(&names, &plan);
        assert_eq!(all[0].join(" "), "ip netns add x-br");
        let adds: Vec<String> = all
            .iter()
            .filter(|c| c[1] == "netns" && c[2] == "add")
            .map(|c| c[3].clone())
            .collect();
        assert_eq!(adds, ["x-br", "x-h0", "x-c1", "x-c2"]);
        assert_eq!(all.iter().filter(|c| c[0] == "tc").count(), 6);
    }

    #[test]
    fn netns_list_is_filtered_by_prefix() {
        let text = "lab-c2 (id: 3)\nlab-br (id: 0)\nother\nlabx-c1\n";
        assert_eq!(parse_netns_list(text, "lab-"), ["lab-c2", "lab-br"]);
    }
}
