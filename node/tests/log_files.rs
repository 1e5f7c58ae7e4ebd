//! The hub's and a client's log files: written through the rolling,
//! non-blocking writer (flushed at a graceful stop), no secret in any line
//! (enrollment key, client secret, admin token, admin password, keys in a
//! query string), and no per-announce line at the files' default level.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use swarmhub_core::tracker::http::announce_query;
use swarmhub_core::tracker::{AnnounceEvent, AnnounceRequest};
use swarmhub_core::Id20;

/// Every log file in `dir`: (name, text).
fn log_files(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            Some((name, text))
        })
        .collect();
    files.sort();
    files
}

fn text_of<'a>(files: &'a [(String, String)], prefix: &str) -> &'a str {
    let found: Vec<&(String, String)> = files
        .iter()
        .filter(|(n, _)| n.starts_with(&format!("{prefix}.")) && n.ends_with(".log"))
        .collect();
    assert_eq!(found.len(), 1, "one {prefix}.DATE.log: {files:?}");
    &found[0].1
}

fn assert_no_secret(files: &[(String, String)], secrets: &[(&str, &str)]) {
    for (name, text) in files {
        for (what, secret) in secrets {
            assert!(
                !text.contains(secret),
                "{name} contains the {what} ({secret}):\n{text}"
            );
        }
    }
}

fn announce(info_hash: Id20, event: AnnounceEvent) -> String {
    let req = AnnounceRequest {
        info_hash,
        peer_id: Id20::new(*b"-LOGT00-abcdefghijkl"),
        ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
        port: 7777,
        uploaded: 0,
        downloaded: 0,
        left: 1,
        event,
        numwant: Some(50),
        compact: true,
    };
    format!("/announce?{}", announce_query(&req))
}

fn info_hash_of(c: &Client, image: &str) -> Id20 {
    let db = swarmhub_node::db::Db::open(&c.home.join("client.db")).expect("client db");
    let row = db.image(image).expect("read").expect("image row");
    let raw = swarmhub_node::util::unhex(&row.info_hash).expect("hex");
    Id20::new(raw.try_into().expect("20 bytes"))
}

/// Sign in to the admin console with `password` (the CSRF dance of the
/// sign-in form); returns the status of the POST.
fn console_sign_in(hub: &Hub, password: &str) -> u16 {
    let ca = swarmhub_node::tls::ca::HubCa::load(&hub.dir.join("ca")).expect("hub CA");
    let tls = swarmhub_node::tls::peer::hub_client_config(ca.cert_der(), None).expect("TLS config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let page = http
            .get(format!("{}/admin/login", hub.api))
            .send()
            .await
            .expect("login page");
        let cookie = page
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("swarmhub_login="))
            .and_then(|v| v.split(';').next())
            .expect("login cookie")
            .to_owned();
        let html = page.text().await.expect("body");
        let at = html.find(r#"name="csrf" value=""#).expect("csrf field") + 19;
        let csrf = html[at..].split('"').next().expect("value").to_owned();
        http.post(format!("{}/admin/login", hub.api))
            .header(reqwest::header::COOKIE, cookie)
            .form(&[("password", password), ("csrf", &csrf)])
            .send()
            .await
            .expect("sign in")
            .status()
            .as_u16()
    })
}

#[test]
fn log_files_hold_no_secret_and_no_announce_line_by_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "logs:1", 2 * MIB);
    let mut hub = Hub::start(&dir, &[]);
    let key = hub.add_user("a");
    let fp = hub.fingerprint();
    let a = Client {
        home: tmp.path().join("a"),
    };
    let o = a.run(&["login", &hub.api, "--key", &key, "--fingerprint", &fp]);
    assert!(o.status.success(), "login: {}", output_text(&o));
    let o = a.pull("logs:1", &[]);
    assert!(o.status.success(), "pull: {}", output_text(&o));

    let secret = swarmhub_node::db::Db::open(&a.home.join("client.db"))
        .expect("client db")
        .setting("secret")
        .expect("read")
        .expect("secret stored");
    let token = std::fs::read_to_string(dir.join("run/admin.token")).expect("admin token");
    let token = token.trim().to_owned();
    let password = std::fs::read_to_string(dir.join("admin-password.txt")).expect("password");
    let password = password.trim().to_owned();
    let secrets = [
        ("enrollment key", key.as_str()),
        ("client secret", secret.as_str()),
        ("admin token", token.as_str()),
        ("admin password", password.as_str()),
    ];
    for (what, s) in secrets {
        assert!(s.len() >= 16, "{what} {s:?} too short to search for");
    }

    // Announces: plain, with the secret as bearer and as a query key,
    // and malformed ones carrying the secrets in the values the tracker
    // rejects.
    let hash = info_hash_of(&a, "logs:1");
    let bearer = format!("Bearer {secret}");
    let plain = announce(hash, AnnounceEvent::Started);
    for (path, headers) in [
        (plain.clone(), vec![]),
        (plain.clone(), vec![("Authorization", bearer.as_str())]),
        (format!("{plain}&key={secret}&passkey={key}"), vec![]),
    ] {
        let (status, body) = http_get(&hub, Some(&a), &path, &headers);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let bad_event = announce(hash, AnnounceEvent::Periodic) + &format!("&event={secret}");
    let (status, _) = http_get(&hub, Some(&a), &bad_event, &[]);
    assert_eq!(status, 400);
    let (status, _) = http_get(&hub, Some(&a), &format!("/announce?info_hash={key}"), &[]);
    assert_eq!(status, 400);
    // The admin token and a wrong one, on the API; the password and a
    // wrong one (the token backwards), on the console.
    let (status, _) = http_get(
        &hub,
        None,
        "/api/v1/images",
        &[("x-swarmhub-admin", &token)],
    );
    assert_eq!(status, 200);
    let wrong: String = token.chars().rev().collect();
    let (status, _) = http_get(
        &hub,
        None,
        "/api/v1/images",
        &[("x-swarmhub-admin", &wrong)],
    );
    assert_eq!(status, 401);
    assert_eq!(console_sign_in(&hub, &password), 303);
    assert_eq!(console_sign_in(&hub, &wrong), 401);

    let status = hub.stop();
    assert!(status.success(), "graceful stop: {status:?}");
    let hub_logs = log_files(&dir.join("logs"));
    let client_logs = log_files(&a.home.join("logs"));
    let tracker = text_of(&hub_logs, "tracker");
    let torrent = text_of(&hub_logs, "torrent");
    text_of(&client_logs, "swarmhub");
    // The lines that were written reached the files (the writer thread was
    // flushed at the stop) and say what happened without the values.
    assert!(
        tracker.contains("announce from 127.0.0.1 refused: malformed: unknown \"event\""),
        "{tracker}"
    );
    assert!(
        tracker.contains("refused: malformed: \"info_hash\""),
        "{tracker}"
    );
    assert!(
        torrent.contains("admin console: signed in from"),
        "{torrent}"
    );
    assert!(torrent.contains("hub stopped"), "{torrent}");
    // One line per announce is trace, below the files' default level.
    assert!(!tracker.contains("announce Started from"), "{tracker}");
    assert_no_secret(&hub_logs, &secrets);
    assert_no_secret(&client_logs, &secrets);
    let stderr = hub.stderr();
    for (what, s) in secrets {
        assert!(
            !stderr.contains(s),
            "hub stderr contains the {what}:\n{stderr}"
        );
    }

    // Asked for (SWARMHUB_FILE_LOG), the per-announce line is there, in the
    // same day's file, and it carries no secret either.
    let mut hub = Hub::start_env(
        &dir,
        "127.0.0.1:0",
        &[],
        &[("SWARMHUB_FILE_LOG", "debug,tracker=trace")],
    );
    let (status, _) = http_get(
        &hub,
        Some(&a),
        &format!("{plain}&key={secret}"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(status, 200);
    let status = hub.stop();
    assert!(status.success(), "graceful stop: {status:?}");
    let hub_logs = log_files(&dir.join("logs"));
    let tracker = text_of(&hub_logs, "tracker");
    assert!(
        tracker.contains("announce Started from 127.0.0.1:7777 (Some(\"a\"), left 1)"),
        "{tracker}"
    );
    assert_no_secret(&hub_logs, &secrets);
}
