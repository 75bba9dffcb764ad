// End-to-end test of the devnet page (www/) in real browsers: starts `headway devnet` on its
// own loopback ports and folder, opens the page, connects, waits until synced, submits an
// event through the node's HTTP API, verifies it in the page, checks the reason shown for an
// unknown event, reloads and checks the client resumed from IndexedDB instead of downloading
// again, and saves docs/screenshot.png (Chromium, synced, with a verified event).
//
// Chromium is driven by playwright-core, Firefox ESR by puppeteer-core over WebDriver BiDi
// (Playwright cannot drive a stock Firefox). WebSocket in both, WebRTC-direct in Chromium
// only (Firefox refuses WebRTC to loopback). No browser is downloaded: Debian's are used.
//
// Run through scripts/e2e.sh, which builds pkg/ and the binary first. Environment:
//   HEADWAY_BIN     node binary (default ../target/debug/headway)
//   E2E_CASES       comma list of cases (default chromium-ws,firefox-ws,chromium-webrtc)
//   E2E_SCREENSHOT  where to save the screenshot (default ../docs/screenshot.png; "" for none)
//   E2E_MIN_HEAD    chain height to wait for before the first page opens (default 120), so
//                   the first sync downloads enough headers for the resume check to mean something
//   CHROMIUM, FIREFOX  browser executables (default /usr/bin/chromium, /usr/bin/firefox-esr)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const bin = path.resolve(root, process.env.HEADWAY_BIN ?? "target/debug/headway");
const out = path.join(here, "out");
const screenshotPath = process.env.E2E_SCREENSHOT ?? path.join(root, "docs", "screenshot.png");
const minHead = Number(process.env.E2E_MIN_HEAD ?? 120);
const cases = (process.env.E2E_CASES ?? "chromium-ws,firefox-ws,chromium-webrtc").split(",");
const VALIDATORS = 4;
const SYNC_TIMEOUT_MS = 120_000;
const viewport = { width: 1280, height: 1000 };
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

const timings = [];
const since = (t0) => (performance.now() - t0) / 1000;
function timed(label, seconds) {
  timings.push({ label, seconds: Number(seconds.toFixed(2)) });
  console.log(`timing: ${label}: ${seconds.toFixed(1)} s`);
}

// ---- devnet --------------------------------------------------------------------------------

function portFree(port, udp = false) {
  return new Promise((resolve) => {
    if (udp) {
      const s = dgram.createSocket("udp4");
      s.once("error", () => resolve(false));
      s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
    } else {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    }
  });
}

/** A base port whose devnet ports (see `headway devnet --help`) and HTTP port are all free. */
async function freePorts() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + 100 * Math.floor(Math.random() * 300);
    const tcp = [base, base + 1, base + 50, ...Array.from({ length: VALIDATORS }, (_, i) => base + 10 + i)];
    const free = await Promise.all([...tcp.map((p) => portFree(p)), portFree(base + 2, true)]);
    if (free.every(Boolean)) return { base, http: base + 50 };
  }
  throw new Error("no free loopback ports found");
}

const devnet = { child: null, dir: null, api: null, page: null, log: null, key: null };

async function poll(what, timeoutMs, fn) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

async function getJson(pathname) {
  const r = await fetch(devnet.api + pathname);
  if (!r.ok) throw new Error(`GET ${pathname}: ${r.status} ${await r.text()}`);
  return r.json();
}

function devnetLogTail(lines = 30) {
  try {
    const all = fs.readFileSync(devnet.log, "utf8").trim().split("\n");
    const banner = all.findIndex((l) => l.startsWith("Ctrl-C stops every node."));
    const rest = all.slice(banner + 1).slice(-lines);
    return rest.length ? rest.join("\n") : "(nothing logged at warn level)";
  } catch {
    return "(no devnet log)";
  }
}

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  assert.ok(fs.existsSync(bin), `${bin} is missing: build it (scripts/e2e.sh does)`);
  assert.ok(fs.existsSync(path.join(root, "pkg", "headway.js")), "pkg/ is missing: run scripts/build-pkg.sh");
  devnet.dir = fs.mkdtempSync(path.join(os.tmpdir(), "headway-e2e-"));
  const { base, http } = await freePorts();
  devnet.api = `http://127.0.0.1:${http}`;
  devnet.log = path.join(out, "devnet.log");
  const t0 = performance.now();
  const args = [
    "devnet", "--dir", path.join(devnet.dir, "devnet"), "--http", `127.0.0.1:${http}`,
    "--base-port", String(base), "--validators", String(VALIDATORS), "--block-interval-ms", "300",
    "--events-per-second", "2", "--www", path.join(root, "www"),
  ];
  const log = fs.createWriteStream(devnet.log);
  devnet.child = spawn(bin, args, {
    cwd: root,
    env: { ...process.env, HEADWAY_LOG: process.env.HEADWAY_LOG ?? "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  devnet.child.stdout.on("data", (d) => {
    stdout += d;
    log.write(d);
  });
  devnet.child.stderr.on("data", (d) => log.write(d));
  const exited = new Promise((resolve) => devnet.child.once("exit", (code) => resolve(code)));
  // The devnet prints its page URL, then "Ctrl-C stops every node." once everything listens.
  await Promise.race([
    poll("the devnet's banner", 60_000, () => stdout.includes("Ctrl-C stops every node.")),
    exited.then((code) => {
      throw new Error(`headway devnet exited (${code}):\n${devnetLogTail()}`);
    }),
  ]);
  devnet.page = stdout.match(/^page:\s+(\S+)/m)?.[1];
  assert.ok(devnet.page, `the devnet printed no page URL:\n${stdout}`);
  timed("devnet start", since(t0));
  devnet.key = path.join(devnet.dir, "source.key");
  execFileSync(bin, ["keygen", "--out", devnet.key], { stdio: "ignore" });
  const t1 = performance.now();
  await poll(`chain height ${minHead}`, 180_000, async () => (await getJson("/status")).head_height >= minHead);
  timed(`devnet reaches height ${minHead}`, since(t1));
});

after(async () => {
  if (devnet.child && devnet.child.exitCode === null) {
    const exited = new Promise((resolve) => devnet.child.once("exit", resolve));
    devnet.child.kill("SIGINT"); // clean shutdown of every node
    const timer = setTimeout(() => devnet.child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (devnet.dir) fs.rmSync(devnet.dir, { recursive: true, force: true });
  fs.writeFileSync(path.join(out, "timings.json"), JSON.stringify(timings, null, 1));
  console.log("timings (s):");
  for (const t of timings) console.log(`  ${t.label.padEnd(48)} ${t.seconds}`);
});

/** Signs an event with `headway sign-event`, submits it, and waits until it is finalized. */
async function submitEvent(actor) {
  const body = execFileSync(bin, [
    "sign-event", "--key", devnet.key, "--kind", "e2e.check", "--actor", actor, "--resource", "www/index.html",
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const r = await fetch(`${devnet.api}/events`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const text = await r.text();
  assert.equal(r.status, 202, `POST /events: ${text}`);
  const { id } = JSON.parse(text);
  return poll(`event ${id} in a finalized block`, 30_000, async () => {
    const r = await fetch(`${devnet.api}/events/${id}`);
    return r.ok ? r.json() : null;
  });
}

// ---- browsers --------------------------------------------------------------------------------

/** The few operations that differ between playwright-core and puppeteer-core. */
const drivers = {
  chromium: {
    launch: () => chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS }),
    newPage: async (browser) => (await browser.newContext({ viewport })).newPage(),
    wait: (page, fn, arg, timeout) => page.waitForFunction(fn, arg, { timeout, polling: 250 }),
  },
  firefox: {
    launch: () => puppeteer.launch({
      browser: "firefox",
      executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr",
      headless: true,
    }),
    newPage: async (browser) => {
      const page = await browser.newPage();
      await page.setViewport(viewport);
      return page;
    },
    wait: (page, fn, arg, timeout) => page.waitForFunction(fn, { timeout, polling: 250 }, arg),
  },
};

/** The page's machine-readable state (`#debug`'s data- attributes, see www/app.js). */
const readState = (page) => page.evaluate(() => {
  const d = { ...document.getElementById("debug").dataset };
  for (const k of ["verified", "target", "headersReceived", "headersVerified", "storeWrites"]) {
    d[k] = d[k] === undefined || d[k] === "" ? null : Number(d[k]);
  }
  d.storedAtStart = d.storedAtStart ? Number(d.storedAtStart) : null;
  d.lastError = document.getElementById("last-error").textContent;
  d.connectError = document.getElementById("connect-error").textContent;
  return d;
});

const setValue = (page, selector, value) => page.evaluate(([s, v]) => {
  document.querySelector(s).value = v;
}, [selector, value]);

async function verifyInPage(c, eventId) {
  await setValue(c.page, "#event-id", eventId);
  await c.page.click("#verify");
  await c.wait(c.page, (id) => {
    const box = document.getElementById("verify-result");
    return ["ok", "error"].includes(box.dataset.state) && document.getElementById("event-id").value === id;
  }, eventId, 60_000);
  return c.page.evaluate(() => {
    const box = document.getElementById("verify-result");
    return { ...box.dataset, text: box.innerText };
  });
}

async function waitSynced(c, what) {
  const t0 = performance.now();
  try {
    await c.wait(c.page, () => document.getElementById("debug").dataset.synced === "true", null, SYNC_TIMEOUT_MS);
  } catch (e) {
    const s = await readState(c.page).catch(() => ({}));
    const known = c.transport === "webrtc"
      ? " KNOWN ISSUE: browser sync over WebRTC fails until the fix in src/net/codec.rs lands."
      : "";
    throw new Error(
      `${c.name}: ${what}: the page did not sync within ${SYNC_TIMEOUT_MS / 1000} s ` +
      `(phase=${s.phase} verified=${s.verified} target=${s.target} received=${s.headersReceived} ` +
      `lastError=${JSON.stringify(s.lastError)} connectError=${JSON.stringify(s.connectError)}).${known}`,
      { cause: e },
    );
  }
  timed(`${c.name}: ${what}`, since(t0));
  return readState(c.page);
}

async function runCase(name, { driver, transport, screenshot, staleAlarm }) {
  const d = drivers[driver];
  const c = { name, transport, wait: d.wait, page: null, console: [] };
  const t0 = performance.now();
  const browser = await d.launch();
  try {
    c.page = await d.newPage(browser);
    c.page.on("console", (m) => c.console.push(`${m.type()}: ${m.text()}`));
    c.page.on("pageerror", (e) => c.console.push(`pageerror: ${e.message}`));
    const lc = await getJson("/light-config");
    // ?trustPeriodMs=1000 makes the devnet's checkpoint "stale" at once: the alarm must show.
    await c.page.goto(devnet.page + (staleAlarm ? "?trustPeriodMs=1000" : ""));
    await c.wait(c.page, () => !document.getElementById("connect").disabled
      && document.getElementById("bootnode").value !== "", null, 60_000);
    timed(`${name}: page loaded, wasm compiled`, since(t0));
    if (transport === "webrtc") await c.page.click('input[name="transport"][value="webrtc"]');
    const bootnode = await c.page.evaluate(() => document.getElementById("bootnode").value);
    assert.equal(bootnode, lc.bootnodes[transport], "the bootnode is prefilled from /light-config");

    // 1. Connect and sync from the checkpoint.
    await c.page.click("#connect");
    const s1 = await waitSynced(c, "first sync");
    assert.equal(s1.transport, transport);
    // WebRTC runs on the page's thread (no RTCPeerConnection in Workers), WebSocket in a Worker.
    assert.equal(s1.host, transport === "webrtc" ? "page" : "worker");
    assert.equal(s1.storedAtStart, null, "a fresh browser profile stores nothing");
    assert.ok(s1.verified >= minHead, `verified ${s1.verified} >= ${minHead}`);
    // Every height after the checkpoint was verified here. Counted as verified, not as received
    // in range responses: heads that arrive by finalized gossip while the ranges finish are
    // verified without a range (a WebRTC run failed the old `headersReceived` form by one).
    assert.ok(s1.headersVerified >= s1.verified - lc.checkpointHeight - 1,
      `verified ${s1.headersVerified} headers from checkpoint ${lc.checkpointHeight} to ${s1.verified}`);
    // The head card and the table follow the stored head, which trails the verified one by a
    // store write and the page's refresh (500 ms); on this 300 ms chain the client fetches a
    // few new heads after every pushed Status. Wait for the page to show all three rather than
    // race them (the assertions below name what is missing).
    await c.wait(c.page, () => /^#[\d,]+$/.test(document.getElementById("head-height").textContent)
      && document.querySelectorAll("#headers tr").length >= 5
      && /synced/.test(document.getElementById("progress-text").textContent), null, 10_000)
      .catch(() => {});
    const shown = await c.page.evaluate(() => ({
      head: document.getElementById("head-height").textContent,
      rows: document.querySelectorAll("#headers tr").length,
      progress: document.getElementById("progress-text").textContent,
    }));
    assert.match(shown.head, /^#[\d,]+$/, "the live head is shown");
    assert.ok(shown.rows >= 5, `the latest headers table has ${shown.rows} rows`);
    assert.match(shown.progress, /synced/);
    if (staleAlarm) {
      const alarm = await c.page.evaluate(() => document.querySelector('[data-alarm="stale"]')?.textContent ?? "");
      assert.match(alarm, /Stale checkpoint/, "the stale-checkpoint alarm shows");
    }

    // 2. An event submitted through the node's HTTP API, verified in the page.
    const t2 = performance.now();
    const event = await submitEvent(name);
    timed(`${name}: event submitted and finalized`, since(t2));
    await c.wait(c.page, (h) => Number(document.getElementById("debug").dataset.verified) >= h,
      event.height, 30_000);
    // The exact reason for an event no one has: an error code and the client's message.
    const unknown = await verifyInPage(c, "ab".repeat(32));
    assert.equal(unknown.state, "error");
    assert.match(unknown.code, /^[A-Z_]+$/);
    assert.ok(unknown.text.includes(unknown.code), unknown.text);
    console.log(`${name}: unknown event shows: ${unknown.text.replace(/\s+/g, " ")}`);
    const t3 = performance.now();
    const v = await verifyInPage(c, event.id);
    timed(`${name}: verifyEvent in the page`, since(t3));
    assert.equal(v.state, "ok", `verification failed: ${v.text}`);
    assert.equal(Number(v.height), event.height);
    assert.equal(v.blockHash, event.block_hash);
    assert.equal(Number(v.index), event.index);
    if (screenshot && screenshotPath) {
      await c.page.screenshot({ path: screenshotPath, fullPage: true });
      console.log(`${name}: screenshot saved to ${screenshotPath}`);
    }

    // 3. Reload: the page reconnects with its saved session and resumes from IndexedDB.
    const before = await readState(c.page);
    await c.page.reload();
    const s2 = await waitSynced(c, "resume after reload");
    assert.ok(s2.storedAtStart !== null, "IndexedDB held headers after the reload");
    // The store may trail the verified head by one write batch.
    assert.ok(s2.storedAtStart >= before.verified - 256,
      `resumed from ${s2.storedAtStart}, had verified ${before.verified}`);
    assert.ok(s2.headersReceived <= s2.verified - s2.storedAtStart + 128,
      `after the reload it downloaded ${s2.headersReceived} headers for ${s2.verified - s2.storedAtStart} new heights`);
    assert.ok(s2.headersReceived < before.headersReceived,
      `after the reload ${s2.headersReceived} headers, before ${before.headersReceived}`);
    console.log(`${name}: first sync downloaded ${before.headersReceived} headers; after the reload, ` +
      `resumed from #${s2.storedAtStart} and downloaded ${s2.headersReceived}`);
    timed(`${name}: whole case`, since(t0));
  } catch (e) {
    if (c.page) {
      await c.page.screenshot({ path: path.join(out, `${name}-failure.png`), fullPage: true }).catch(() => {});
    }
    const consoleTail = c.console.slice(-25).join("\n");
    e.message += `\n--- browser console (last 25) ---\n${consoleTail}\n--- devnet log (tail) ---\n${devnetLogTail(15)}`;
    throw e;
  } finally {
    await browser.close();
  }
}

const caseOptions = {
  "chromium-ws": { driver: "chromium", transport: "ws", screenshot: true },
  "firefox-ws": { driver: "firefox", transport: "ws", staleAlarm: true },
  "chromium-webrtc": { driver: "chromium", transport: "webrtc" },
};

for (const name of cases) {
  const options = caseOptions[name];
  if (!options) throw new Error(`unknown case ${name}: expected one of ${Object.keys(caseOptions)}`);
  test(name, { timeout: 300_000 }, () => runCase(name, options));
}
