//! The admin console driven in a real headless Chromium (Debian's
//! `/usr/bin/chromium` through npm's playwright-core, both installed by
//! `.ci/run`): sign-in, wrong password, P2P off and on as `hub config --all`
//! shows, Update Cache, adding a client and logging a real client in with
//! the key shown, the swarm view during a pull, revocation, sign-out. The
//! script is `node/tests/browser/console.mjs`; screenshots go to a temporary
//! folder, or to `SWARMHUB_CONSOLE_SHOTS` when set (the README's are made
//! with `SWARMHUB_CONSOLE_SHOTS=docs/console`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const PASSWORD: &str = "browser test password";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium not installed (apt-get install chromium)".into());
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node not installed".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some(format!(
            "playwright-core not installed (npm ci --prefix {})",
            browser_dir().display()
        ));
    }
    None
}

#[test]
fn console_in_headless_chromium() {
    if let Some(why) = missing() {
        eprintln!("skipped console_in_headless_chromium: {why}");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("hub");
    std::fs::create_dir_all(&dir).expect("hub dir");
    let mut passwd = Command::new(BIN)
        .args([
            "hub",
            "--dir",
            dir.to_str().expect("utf8"),
            "admin",
            "passwd",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("admin passwd");
    writeln!(passwd.stdin.take().expect("stdin"), "{PASSWORD}").expect("write");
    assert!(passwd.wait().expect("wait").success());
    let hub = Hub::start(
        &dir,
        &["--announce-interval", "2", "--max-upload-rate", "1M"],
    );

    let shots = std::env::var_os("SWARMHUB_CONSOLE_SHOTS")
        .map(|d| {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(d)
            }
        })
        .unwrap_or_else(|| tmp.path().join("shots"));
    let mut child = Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .current_dir(browser_dir())
        .env("SWARMHUB_BIN", BIN)
        .env("HUB_DIR", &dir)
        .env("HUB_URL", &hub.api)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("WORK_DIR", tmp.path())
        .env("SHOTS_DIR", &shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let status = wait_child(&mut child, Duration::from_secs(300), "the browser script");
    let o = child.wait_with_output().expect("output");
    let out = String::from_utf8_lossy(&o.stdout);
    println!("{out}");
    assert!(
        status.success() && out.contains("CONSOLE BROWSER TEST PASSED"),
        "browser script failed: {status}\n{out}\n{}\nhub stderr:\n{}",
        String::from_utf8_lossy(&o.stderr),
        hub.stderr()
    );
    for name in [
        "login", "storage", "images", "clients", "swarm", "live", "logs",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "no {name}.png");
    }
    let list = hub.cmd(&["image", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("tools:1.0"));
}
