//! The admin console of a real hub over HTTPS, verified against the hub CA
//! by address (the hub certificate names its host names): every console
//! route refuses callers without a session and form posts without the CSRF
//! token, a wrong password is refused, sign-in and sign-out work, client
//! certificates grant nothing, and Save changes what `hub config` prints.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use swarmhub_node::hub::console::GUARDED_ROUTES;

const PASSWORD: &str = "console test password";

pub fn set_password(dir: &Path, password: &str) {
    let mut child = Command::new(BIN)
        .args([
            "hub",
            "--dir",
            dir.to_str().expect("utf8"),
            "admin",
            "passwd",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn admin passwd");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write");
    let o = child.wait_with_output().expect("admin passwd");
    assert!(o.status.success(), "admin passwd: {}", output_text(&o));
}

/// An HTTPS client that trusts only the hub CA and checks the name it
/// connects by (no redirects followed, no cookie store).
fn client(hub_dir: &Path, resolve: Option<(&str, std::net::SocketAddr)>) -> reqwest::Client {
    let ca = swarmhub_node::tls::ca::HubCa::load(&hub_dir.join("ca")).expect("hub CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("root");
    let tls = rustls::ClientConfig::builder_with_provider(swarmhub_node::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20));
    if let Some((name, addr)) = resolve {
        b = b.resolve(name, addr);
    }
    b.build().expect("client")
}

/// The value of a hidden `name="csrf"` field in `html`.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("csrf field") + 19;
    html[at..].split('"').next().expect("value").to_owned()
}

/// `NAME=VALUE` of the `Set-Cookie` named `name`.
fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or_default().to_owned();
            (pair, v.to_owned())
        })
}

struct Console {
    http: reqwest::Client,
    base: String,
}

impl Console {
    /// Sign in with `password`: (status, session cookie pair if any).
    async fn sign_in(&self, password: &str, with_csrf: bool) -> (StatusCode, Option<String>) {
        let page = self
            .http
            .get(format!("{}/admin/login", self.base))
            .send()
            .await
            .expect("login page");
        assert_eq!(page.status(), StatusCode::OK);
        let (login_cookie, _) = cookie_of(&page, "swarmhub_login").expect("login cookie");
        let csrf = csrf_of(&page.text().await.expect("body"));
        let mut form = vec![("password", password.to_owned())];
        if with_csrf {
            form.push(("csrf", csrf));
        }
        let r = self
            .http
            .post(format!("{}/admin/login", self.base))
            .header(COOKIE, login_cookie)
            .form(&form)
            .send()
            .await
            .expect("sign in");
        let status = r.status();
        let session = cookie_of(&r, "swarmhub_session").map(|(pair, full)| {
            for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/admin"] {
                assert!(full.contains(attr), "session cookie without {attr}: {full}");
            }
            pair
        });
        (status, session)
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).form(form),
        };
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send().await.expect("request")
    }
}

fn config_line(hub: &Hub, prefix: &str) -> String {
    let o = hub.cmd(&["config", "--all"]);
    assert!(o.status.success(), "config: {}", output_text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_routes_need_a_session_and_forms_need_the_csrf_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "app:1", MIB);
    set_password(&dir, PASSWORD);
    let hub = Hub::start(&dir, &[]);
    let addr: std::net::SocketAddr = hub
        .api
        .trim_start_matches("https://")
        .parse()
        .expect("addr");
    let c = Console {
        http: client(&dir, None),
        base: hub.api.clone(),
    };

    // Without a session: page views go to the sign-in page, the rest is 401.
    for (method, path) in GUARDED_ROUTES {
        let r = c.request(method, path, None, &[("csrf", "x")]).await;
        let status = r.status();
        let to_login = r
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l == "/admin/login");
        assert!(
            status == StatusCode::UNAUTHORIZED || (status == StatusCode::SEE_OTHER && to_login),
            "{method} {path} without a session: {status}"
        );
        let forged = c
            .request(method, path, Some("swarmhub_session=forged"), &[])
            .await;
        assert!(
            matches!(
                forged.status(),
                StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
            ),
            "{method} {path} with a forged session: {}",
            forged.status()
        );
    }

    // An enrolled client's certificate grants nothing.
    let user = hub.client(tmp.path(), "alice");
    let (status, _) = http_get(&hub, Some(&user), "/admin/storage", &[]);
    assert_eq!(status, 303, "a client certificate opened the console");
    let (status, _) = http_get(&hub, Some(&user), "/admin/live.json", &[]);
    assert_eq!(status, 401);

    // Wrong password, or no CSRF token on the sign-in form: no session.
    let (status, session) = c.sign_in("wrong password!", true).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(session.is_none());
    let (status, session) = c.sign_in(PASSWORD, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(session.is_none());

    // The admin token signs in too; the password does.
    let token = std::fs::read_to_string(dir.join("run/admin.token")).expect("token");
    let (status, session) = c.sign_in(token.trim(), true).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(session.is_some());
    let (status, session) = c.sign_in(PASSWORD, true).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let session = session.expect("session cookie");

    // Signed in: every page renders; every form post without the token is 403.
    let mut csrf = String::new();
    for (method, path) in GUARDED_ROUTES {
        if *method == "GET" {
            let path = if path.starts_with("/admin/swarm") {
                format!("{path}?image=app:1")
            } else {
                (*path).to_owned()
            };
            let r = c.request("GET", &path, Some(&session), &[]).await;
            let s = r.status();
            assert!(
                s == StatusCode::OK || (s == StatusCode::SEE_OTHER && path == "/admin/"),
                "GET {path}: {s}"
            );
            let body = r.text().await.expect("body");
            if path == "/admin/storage" {
                csrf = csrf_of(&body);
            }
        } else {
            let r = c
                .request(
                    "POST",
                    path,
                    Some(&session),
                    &[("image", "app:1"), ("name", "alice")],
                )
                .await;
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "POST {path} without the CSRF token"
            );
            let r = c
                .request(
                    "POST",
                    path,
                    Some(&session),
                    &[("csrf", "wrong"), ("name", "alice")],
                )
                .await;
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "POST {path} with a wrong CSRF token"
            );
        }
    }
    assert!(!csrf.is_empty());
    assert_eq!(
        config_line(&hub, "Peer-to-peer"),
        "Peer-to-peer distribution: Enabled"
    );
    // The refused posts changed nothing.
    let list = hub.cmd(&["image", "list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("app:1"),
        "{}",
        output_text(&list)
    );
    let page = c
        .request("GET", "/admin/clients", Some(&session), &[])
        .await;
    let page = page.text().await.expect("body");
    assert!(
        page.contains(r#"<td class="state">enrolled</td>"#),
        "alice revoked: {page}"
    );

    // Save: P2P off (its checkbox absent), the rest on, through hub config's path.
    let form = [
        ("csrf", csrf.as_str()),
        ("cache", "on"),
        ("seed", "on"),
        ("peer_tls", "on"),
        ("hostname", ""),
    ];
    let r = c
        .request("POST", "/admin/storage", Some(&session), &form)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("Saved"));
    assert_eq!(
        config_line(&hub, "Peer-to-peer"),
        "Peer-to-peer distribution: Disabled"
    );
    assert_eq!(config_line(&hub, "Image cache"), "Image cache: Enabled");

    // Images: add from a path on the hub, by upload (CSRF token in a header), remove.
    let src = tmp.path().join("tool.bin");
    write_image(&src, 300_000, 3);
    let form = [
        ("csrf", csrf.as_str()),
        ("image", "tool:1"),
        ("path", src.to_str().expect("utf8")),
    ];
    let r = c
        .request("POST", "/admin/images/add", Some(&session), &form)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("Added tool:1"));
    // (The refusal comes before the body is read; a small body is sent whole first.)
    let up = |token: &str, len: usize| {
        c.http
            .post(format!(
                "{}/admin/images/upload?image=up:1&file=data.bin",
                c.base
            ))
            .header(COOKIE, &session)
            .header("x-csrf-token", token.to_owned())
            .body(vec![9u8; len])
            .send()
    };
    assert_eq!(
        up("wrong", 10).await.expect("upload").status(),
        StatusCode::FORBIDDEN
    );
    let r = up(&csrf, 70_000).await.expect("upload");
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let list = String::from_utf8_lossy(&hub.cmd(&["image", "list"]).stdout).to_string();
    assert!(list.contains("tool:1") && list.contains("up:1"), "{list}");
    assert!(dir.join("cache/up/1/data.bin").exists());
    let form = [("csrf", csrf.as_str()), ("image", "tool:1")];
    let r = c
        .request("POST", "/admin/images/remove", Some(&session), &form)
        .await;
    assert!(r.text().await.expect("body").contains("Removed tool:1"));
    let list = String::from_utf8_lossy(&hub.cmd(&["image", "list"]).stdout).to_string();
    assert!(!list.contains("tool:1"), "{list}");

    // Host names: the certificate follows the setting within a second or two.
    let o = hub.cmd(&["config", "--hostname", "hub.test.invalid"]);
    assert!(o.status.success(), "config --hostname: {}", output_text(&o));
    let by_name = Console {
        http: client(&dir, Some(("hub.test.invalid", addr))),
        base: format!("https://hub.test.invalid:{}", addr.port()),
    };
    wait_until_async("certificate naming hub.test.invalid", || async {
        by_name
            .http
            .get(format!("{}/admin/login", by_name.base))
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(
        client(&dir, None)
            .get(format!("{}/admin/login", hub.api))
            .send()
            .await
            .is_err(),
        "the certificate still names 127.0.0.1"
    );
    assert!(hub
        .cmd(&["config", "--hostname", "default"])
        .status
        .success());
    wait_until_async("certificate naming 127.0.0.1 again", || async {
        client(&dir, None)
            .get(format!("{}/admin/login", hub.api))
            .send()
            .await
            .is_ok()
    })
    .await;

    // Sign-out ends the session.
    let r = c
        .request("POST", "/admin/logout", Some(&session), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c
        .request("GET", "/admin/live.json", Some(&session), &[])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn wait_until_async<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_without_a_password_writes_one_to_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = Hub::prepare(tmp.path(), "app:1", 1000);
    let hub = Hub::start(&dir, &[]);
    let file = dir.join("admin-password.txt");
    let mode = std::fs::metadata(&file)
        .expect("password file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        hub.stderr().contains("admin-password.txt"),
        "{}",
        hub.stderr()
    );
    let c = Console {
        http: client(&dir, None),
        base: hub.api.clone(),
    };
    let password = std::fs::read_to_string(&file).expect("read");
    let (status, session) = c.sign_in(password.trim(), true).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(session.is_some());
}
