// Drives the hub's admin console in headless Chromium (playwright-core on
// Debian's /usr/bin/chromium). Started by node/tests/console_browser.rs,
// which runs the hub and passes everything through the environment.
import { chromium } from "playwright-core";
import { execFileSync, spawn } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing ${k}`); return v; };
const BIN = env("SWARMHUB_BIN"), HUB_DIR = env("HUB_DIR"), HUB = env("HUB_URL");
const PASSWORD = env("ADMIN_PASSWORD"), WORK = env("WORK_DIR");
const SHOTS = process.env.SHOTS_DIR || join(WORK, "shots");
mkdirSync(SHOTS, { recursive: true });

const log = (...a) => console.log("[browser]", ...a);
const hubCmd = (...args) => execFileSync(BIN, ["hub", "--dir", HUB_DIR, ...args], { encoding: "utf8" });
function check(cond, what) { if (!cond) throw new Error("FAILED: " + what); log("ok:", what); }
async function until(what, f, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) { log("ok:", what); return; }
    if (Date.now() > end) throw new Error("timed out: " + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Trust the hub CA for this browser only: Chromium skips certificate errors
// for chains holding this public key (base64 SHA-256 of the CA's SPKI); the
// hub certificate names 127.0.0.1 itself (hub config --hostname default).
const ca = new X509Certificate(readFileSync(join(HUB_DIR, "ca", "ca.crt")));
const spki = createHash("sha256").update(ca.publicKey.export({ type: "spki", format: "der" })).digest("base64");
const profile = mkdtempSync(join(tmpdir(), "swarmhub-chromium-"));
// A fresh profile folder: playwright passes it as --user-data-dir (which
// Chromium requires for the SPKI list to apply).
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    `--ignore-certificate-errors-spki-list=${spki}`,
  ],
});
let pull = null;
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("dialog", (d) => d.accept());
  const shot = async (name) => { await page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: true }); log("screenshot", name); };

  // Sign-in: the console sends a signed-out browser to the sign-in page.
  await page.goto(HUB + "/admin/");
  check(page.url().endsWith("/admin/login"), "signed out: redirected to the sign-in page");
  await shot("login");
  await page.fill("#password", "not the password");
  await page.click("button[type=submit]");
  check((await page.textContent("body")).includes("wrong password"), "wrong password refused");
  check(page.url().endsWith("/admin/login"), "still on the sign-in page");
  await page.fill("#password", PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/admin/storage");
  check(true, "signed in");

  // P2P off and on through Save; hub config --all agrees each time.
  const p2p = 'input[name="p2p"]';
  await page.uncheck(p2p);
  await page.click("form[action='/admin/storage'] button[type=submit]");
  await page.waitForSelector("text=Saved");
  check(hubCmd("config", "--all").includes("Peer-to-peer distribution: Disabled"), "P2P off: hub config --all says Disabled");
  check(!(await page.isChecked(p2p)), "the page shows P2P off");
  await page.check(p2p);
  await page.click("form[action='/admin/storage'] button[type=submit]");
  await page.waitForSelector("text=Saved");
  check(hubCmd("config", "--all").includes("Peer-to-peer distribution: Enabled"), "P2P on: hub config --all says Enabled");

  // A folder put in the cache by hand, then Update Cache.
  const dir = join(HUB_DIR, "cache", "tools", "1.0", "bin");
  mkdirSync(dir, { recursive: true });
  const data = Buffer.alloc(6 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  writeFileSync(join(dir, "tool"), data);
  await page.click("#update-cache");
  await page.waitForSelector("#cache-report");
  check((await page.textContent("#cache-report .added")).includes("tools:1.0"), "Update Cache lists tools:1.0 as added");
  await shot("storage");
  await page.goto(HUB + "/admin/images");
  await until("tools:1.0 in the Images table", async () => {
    await page.reload();
    return (await page.$('tr[data-image="tools:1.0"]')) !== null;
  });
  await shot("images");

  // Add a client; log a real swarmhub client in with the command shown.
  await page.goto(HUB + "/admin/clients");
  await page.fill('input[name="name"]', "browser-client");
  await page.click("form[action='/admin/clients/add'] button[type=submit]");
  const command = (await page.textContent("#login-command")).trim();
  check(command.startsWith("swarmhub login https://") && command.includes("--fingerprint"), "login command shown: " + command.replace(/--key \S+/, "--key ..."));
  await shot("clients");
  const home = join(WORK, "client-home");
  const args = command.split(/\s+/).slice(1);
  const out = execFileSync(BIN, args, { env: { ...process.env, SWARMHUB_HOME: home }, encoding: "utf8" });
  check(out.includes("logged in"), "swarmhub login with the key shown: " + out.trim());

  // A pull: the client appears in the swarm view.
  pull = spawn(BIN, ["pull", "tools:1.0", "--wait-after-exit", "--peer-ports", "0"], {
    env: { ...process.env, SWARMHUB_HOME: home }, stdio: ["ignore", "ignore", "pipe"],
  });
  let pullErr = "";
  pull.stderr.on("data", (d) => { pullErr += d; });
  await page.goto(HUB + "/admin/swarm?image=tools:1.0");
  await until("browser-client in the swarm view", async () => (await page.$('tr[data-peer="browser-client"]')) !== null, 60000);
  // Let a few announces show progress (not required: a fast pull may be done).
  for (let i = 0; i < 40; i++) {
    const v = await page.$eval('tr[data-peer="browser-client"] progress', (p) => p.value).catch(() => 0);
    if (v > 0) { log("swarm view: browser-client at", v + "%"); break; }
    await page.waitForTimeout(250);
  }
  await shot("swarm");

  await page.goto(HUB + "/admin/live");
  await page.waitForTimeout(12000);
  check((await page.textContent('[data-now="announces"]')).trim().length > 0, "live figures updated");
  await shot("live");

  await page.goto(HUB + "/admin/logs?log=tracker&level=info");
  await shot("logs");

  // Revoke: the client leaves the swarm view.
  await page.goto(HUB + "/admin/clients");
  await page.click('tr[data-client="browser-client"] button.danger');
  await page.waitForSelector("text=Revoked browser-client");
  check((await page.textContent('tr[data-client="browser-client"] td.state')).trim() === "revoked", "client shown revoked");
  await page.goto(HUB + "/admin/swarm?image=tools:1.0");
  await until("revoked client gone from the swarm view", async () => (await page.$('tr[data-peer="browser-client"]')) === null, 30000);
  if (pullErr.length > 0) log("pull stderr (last 300 chars):", pullErr.slice(-300).replace(/\s+/g, " "));

  // Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(HUB + "/admin/storage");
  await shot("storage-phone");

  // Sign-out.
  await page.click("form.signout button");
  await page.waitForURL("**/admin/login");
  await page.goto(HUB + "/admin/clients");
  check(page.url().endsWith("/admin/login"), "signed out: the console is closed again");
  console.log("CONSOLE BROWSER TEST PASSED");
} finally {
  if (pull) pull.kill("SIGTERM");
  await context.close();
}
