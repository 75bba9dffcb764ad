// The page: a form, a few cards and a message channel to the light client (client-host.js,
// in worker.js or, for WebRTC, on this page's thread).
// No framework: the whole state is `ui` below and every update goes through `render*`.
// The connection used last is kept in localStorage, because the headers kept in IndexedDB
// belong to its checkpoint: a reload reconnects with it and resumes from the stored head.

const $ = (id) => document.getElementById(id);
const SESSION_KEY = "headway-demo:session";

/** Builds an element; strings become text nodes (never HTML: ids and messages come from peers). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.dataset[k.slice(5).replace(/-(.)/g, (_, c) => c.toUpperCase())] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const short = (hash) => (hash ? `${hash.slice(0, 10)}…${hash.slice(-6)}` : "–");

const ui = {
  /** The current host loaded its wasm; `hostWhere` is "worker" or "page". */
  hostReady: false,
  hostWhere: null,
  busy: false,
  connected: false,
  /** GET /light-config of the serving node, or null when the page is served elsewhere. */
  lightConfig: null,
  /** Height the progress bar starts from: the checkpoint's, or the stored head on resume. */
  baseHeight: null,
  /** The stored head IndexedDB held when the client was created (null: nothing stored). */
  storedAtStart: null,
  transport: "ws",
  alarms: new Map(),
  lastStatus: null,
};

// ---- light-client host: a Worker, or this page for WebRTC ---------------------------------

// The client runs in a dedicated Worker (worker.js) so verification never blocks the page.
// WebRTC cannot run there (no RTCPeerConnection in Workers; libp2p's webrtc-websys needs
// `window`), so for WebRTC the same host code (client-host.js) runs on the page's thread.
let host = null;
let pageHost = null;
let hostReady = null;
let resolveReady = null;
let nextId = 1;
const pending = new Map();

function startWorker() {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data }) => onHostMessage(data);
  // A failed import (pkg/ missing) or a wasm panic ("unreachable") ends up here.
  worker.onerror = (e) => {
    e.preventDefault();
    hostCrashed(e.message || "the worker failed to start (is pkg/ built? Run scripts/build-pkg.sh)");
  };
  return { kind: "worker", send: (m) => worker.postMessage(m), terminate: () => worker.terminate() };
}

function startPageHost() {
  // One per page: a wasm instance cannot be unloaded, so it is kept for the next connect.
  pageHost ??= import("./client-host.js").then(({ createHost }) => createHost(onHostMessage, "page"));
  return { kind: "page", send: (m) => pageHost.then((handle) => handle(m)), terminate: () => {} };
}

/** Makes `kind` ("worker" or "page") the host; resolves once its wasm is loaded. */
function useHost(kind) {
  if (host?.kind === kind) return hostReady;
  host?.terminate();
  hostReady = new Promise((resolve) => (resolveReady = resolve));
  ui.hostReady = false;
  const reused = kind === "page" && pageHost;
  host = kind === "worker" ? startWorker() : startPageHost();
  // A reused page host announced "ready" when it was first made.
  if (reused) pageHost.then(() => onHostMessage({ type: "ready", where: "page" }));
  renderButtons();
  return hostReady;
}

/** Sends a request to the host; resolves with its value or rejects with { code, message }. */
function call(type, fields = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    host.send({ id, type, ...fields });
  });
}

function hostCrashed(message) {
  for (const p of pending.values()) p.reject({ code: "INTERNAL", message: `the light client crashed: ${message}` });
  pending.clear();
  const wasConnected = ui.connected;
  ui.connected = false;
  ui.busy = false;
  showConnectError(`The light client stopped: ${message}.${wasConnected ? " Connect again to resume." : ""}`);
  renderPhase("stopped");
  // A fresh worker for the next attempt (a panicked wasm instance is unusable), unless this
  // one never loaded: then a new one would fail the same way.
  const loaded = ui.hostReady;
  host?.terminate();
  host = null;
  ui.hostReady = false;
  if (loaded) useHost("worker");
  renderButtons();
}

function onHostMessage(msg) {
  switch (msg.type) {
    case "reply": {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.ok) p?.resolve(msg.value);
      else p?.reject(msg.error);
      break;
    }
    case "ready":
      ui.hostReady = true;
      ui.hostWhere = msg.where;
      resolveReady();
      renderButtons();
      break;
    case "fatal":
      showConnectError(`The light client failed to load (${msg.error.message}). Is pkg/ built? Run scripts/build-pkg.sh.`);
      break;
    case "status":
      renderStatus(msg.status, msg.head, msg.headers);
      break;
    case "event":
      onClientEvent(msg.name, msg.payload);
      break;
  }
}

// ---- session and prefill ---------------------------------------------------------------------

function readSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    return null;
  }
}

function writeSession(session) {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

/** The height field of the text checkpoint (`headway1:chain:height:hash:validators:sum`). */
function checkpointHeight(text) {
  const height = Number(text.trim().split(":")[2]);
  return Number.isSafeInteger(height) ? height : null;
}

async function fetchLightConfig() {
  try {
    const r = await fetch("/light-config", { cache: "no-store" });
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

function setTransport(transport, { fillBootnode }) {
  ui.transport = transport;
  for (const radio of document.querySelectorAll('input[name="transport"]')) {
    radio.checked = radio.value === transport;
  }
  const addr = ui.lightConfig?.bootnodes?.[transport];
  if (fillBootnode && addr) $("bootnode").value = addr;
}

function fillFromLightConfig() {
  const lc = ui.lightConfig;
  $("checkpoint").value = lc.checkpoint;
  $("genesis").value = lc.genesisHash;
  setTransport(ui.transport, { fillBootnode: true });
  $("config-source").textContent =
    `Prefilled from this node's /light-config: checkpoint at height ${fmt(lc.checkpointHeight)}, ` +
    `${fmt(lc.headHeight - lc.checkpointHeight)} blocks below its head.`;
}

async function init() {
  useHost("worker");
  ui.lightConfig = await fetchLightConfig();
  const lc = ui.lightConfig;
  if (lc) $("chain-id").textContent = lc.chainId;
  $("recent-event").hidden = !lc;

  const session = readSession();
  if (session) {
    $("checkpoint").value = session.checkpoint;
    $("genesis").value = session.genesisHash ?? "";
    $("bootnode").value = session.bootnode;
    setTransport(session.transport ?? "ws", { fillBootnode: false });
    const stale = lc && session.genesisHash && lc.genesisHash !== session.genesisHash;
    $("config-source").textContent = stale
      ? "Your saved session is for another chain than this node's (new devnet?): use “Forget stored headers” to start over."
      : "Your last session: the headers stored in this browser belong to this checkpoint.";
    $("config-source").classList.toggle("warn", Boolean(stale));
  } else if (lc) {
    fillFromLightConfig();
  } else {
    $("config-source").textContent = "Paste a bootnode multiaddr, a checkpoint and the genesis hash.";
  }
  renderButtons();
  if (session?.connected) connect();
}

// ---- actions ---------------------------------------------------------------------------------

async function connect() {
  const checkpoint = $("checkpoint").value.trim();
  const genesisHash = $("genesis").value.trim();
  const bootnode = $("bootnode").value.trim();
  const config = { checkpoint, bootnodes: [bootnode] };
  if (genesisHash) config.genesisHash = genesisHash;
  // Demo and test knob: ?trustPeriodMs=1000 shows the stale-checkpoint alarm on a fresh devnet.
  const trust = new URLSearchParams(location.search).get("trustPeriodMs");
  if (trust !== null) config.trustPeriodMs = Number(trust);
  showConnectError(null);
  ui.alarms.clear();
  renderAlarms();
  ui.busy = true;
  renderButtons();
  renderPhase("connecting");
  try {
    await useHost(ui.transport === "webrtc" ? "page" : "worker");
    $("host").textContent = ui.hostWhere === "worker" ? "Web Worker" : "page thread (WebRTC)";
    const { storedHeight } = await call("connect", { config });
    ui.connected = true;
    ui.storedAtStart = storedHeight ?? null;
    ui.baseHeight = storedHeight ?? checkpointHeight(checkpoint);
    $("resumed").textContent = storedHeight === null || storedHeight === undefined
      ? "checkpoint"
      : `#${fmt(storedHeight)} (stored)`;
    writeSession({ transport: ui.transport, bootnode, checkpoint, genesisHash, connected: true });
  } catch (e) {
    renderPhase("stopped");
    const hint = {
      CHECKPOINT_MISMATCH: " The headers in this browser belong to another checkpoint: “Forget stored headers” to use this one.",
      STORE_LOCKED: " Another tab runs the light client on this store: close it, or disconnect it.",
      HANDSHAKE_FAILED: " Check the genesis hash: the peer is on another chain.",
    }[e.code] ?? "";
    showConnectError(`${e.code}: ${e.message}.${hint}`);
    const session = readSession();
    if (session) writeSession({ ...session, connected: false });
  } finally {
    ui.busy = false;
    renderButtons();
  }
}

async function disconnect() {
  ui.busy = true;
  renderButtons();
  try {
    await call("disconnect");
  } finally {
    ui.connected = false;
    ui.busy = false;
    const session = readSession();
    if (session) writeSession({ ...session, connected: false });
    renderPhase("stopped");
    renderButtons();
  }
}

async function forget() {
  ui.busy = true;
  renderButtons();
  try {
    await call("forget");
    writeSession(null);
    ui.connected = false;
    ui.storedAtStart = null;
    ui.alarms.clear();
    renderAlarms();
    renderPhase("idle");
    $("headers").replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "none yet")));
    $("config-source").classList.remove("warn");
    if (ui.lightConfig) fillFromLightConfig();
    else $("config-source").textContent = "Stored headers deleted.";
  } catch (e) {
    showConnectError(`${e.code}: ${e.message}`);
  } finally {
    ui.busy = false;
    renderButtons();
  }
}

async function verify(eventId) {
  const box = $("verify-result");
  box.dataset.state = "pending";
  box.replaceChildren(el("p", { class: "muted" }, "Fetching a proof and checking it against the verified head…"));
  try {
    const v = await call("verify", { eventId });
    Object.assign(box.dataset, { state: "ok", height: v.height, blockHash: v.blockHash, index: v.index });
    box.replaceChildren(
      el("p", { class: "verdict" }, "✓ Verified: this event is in the chain"),
      el("dl", { class: "kv" },
        el("dt", {}, "block height"), el("dd", { id: "verified-height" }, `#${fmt(v.height)}`),
        el("dt", {}, "block hash"), el("dd", { class: "mono", id: "verified-hash" }, v.blockHash),
        el("dt", {}, "index in block"), el("dd", { id: "verified-index" }, String(v.index)),
        el("dt", {}, "event id"), el("dd", { class: "mono" }, v.eventId)),
    );
  } catch (e) {
    for (const k of ["height", "blockHash", "index"]) delete box.dataset[k];
    Object.assign(box.dataset, { state: "error", code: e.code });
    box.replaceChildren(
      el("p", { class: "verdict" }, "✗ Not verified"),
      el("p", {}, el("code", { id: "verify-code" }, e.code), " ", el("span", { id: "verify-message" }, e.message)),
    );
  }
}

// ---- rendering -------------------------------------------------------------------------------

function renderButtons() {
  $("connect").disabled = !ui.hostReady || ui.busy || ui.connected;
  $("disconnect").disabled = ui.busy || !ui.connected;
  $("forget").disabled = ui.busy;
  $("verify").disabled = !ui.connected;
  for (const input of document.querySelectorAll("#connect-form input, #connect-form textarea")) {
    input.disabled = ui.connected || ui.busy;
  }
}

function renderPhase(phase) {
  const pill = $("phase");
  pill.textContent = phase === "waitingForPeers" ? "waiting for peers" : phase;
  pill.dataset.phase = phase;
}

function showConnectError(text) {
  $("connect-error").hidden = !text;
  $("connect-error").textContent = text ?? "";
}

function setAlarm(key, level, title, text) {
  ui.alarms.set(key, { level, title, text });
  renderAlarms();
}

function renderAlarms() {
  $("alarms").replaceChildren(
    ...[...ui.alarms].map(([key, a]) =>
      el("li", { class: `alarm ${a.level}`, "data-alarm": key }, el("strong", {}, a.title), " ", a.text)),
  );
}

const days = (ms) => (ms / 86_400_000).toFixed(1);

/** Alarms that the status carries, so they also show after a reload. */
function alarmsFromStatus(s) {
  if (s.forkHeight !== null && !ui.alarms.has("fork")) {
    setAlarm("fork", "danger", "Fork detected", `at height ${fmt(s.forkHeight)}: two validly signed headers. The client stopped; do not trust this chain.`);
  }
  if (s.checkpointStaleMs !== null && !ui.alarms.has("stale")) {
    setAlarm("stale", "warning", "Stale checkpoint", `the trusted header is ${days(s.checkpointStaleMs)} days old: get a fresh checkpoint from a source you trust.`);
  }
  if (s.storePaused) {
    setAlarm("storage", "warning", "Storage full", "the browser refused to store more headers; sync is paused and retries. Free some space or use “Forget stored headers”.");
  } else if (ui.alarms.get("storage")?.level === "warning") {
    ui.alarms.delete("storage");
    renderAlarms();
  }
}

function renderProgress(p) {
  const verified = p.verifiedHeight ?? ui.baseHeight;
  const target = Math.max(p.targetHeight ?? 0, verified ?? 0);
  const base = Math.min(ui.baseHeight ?? verified ?? 0, verified ?? 0);
  const span = target - base;
  const fraction = verified === null ? 0 : span > 0 ? (verified - base) / span : 1;
  const synced = p.phase === "following" && verified !== null && verified >= target;
  $("bar").style.width = `${(fraction * 100).toFixed(1)}%`;
  $("bar").classList.toggle("done", synced);
  document.querySelector(".progress").setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  $("progress-text").textContent = verified === null
    ? "waiting for the checkpoint's header…"
    : `verified ${fmt(verified)} of ${fmt(target)}${synced ? " · synced" : ""}`;
  $("rate").textContent = fmt(Math.round(p.headersPerSecond ?? 0));
  $("peers").textContent = fmt(p.peers);
  renderPhase(p.phase);
  return { verified, target, synced };
}

function renderStatus(s, head, headers) {
  ui.lastStatus = s;
  const { verified, target, synced } = renderProgress(s.running ? s : { ...s, phase: ui.busy ? "connecting" : "stopped" });
  $("received").textContent = `${fmt(s.stats.headersReceived)} headers`;
  $("last-error").hidden = !s.lastError;
  $("last-error").textContent = s.lastError ? `last error: ${s.lastError.code}: ${s.lastError.message}` : "";
  alarmsFromStatus(s);
  if (head) {
    $("head-height").textContent = `#${fmt(head.height)}`;
    $("head-hash").textContent = head.hash;
    $("head-meta").textContent =
      `${new Date(head.timestampMs).toLocaleTimeString()} · ${fmt(head.eventCount)} events · validators ${short(head.validatorsHash)}`;
  }
  if (headers?.length) {
    $("headers").replaceChildren(...headers.map((h) => el("tr", {},
      el("td", {}, fmt(h.height)),
      el("td", { class: "mono", title: h.hash }, short(h.hash)),
      el("td", {}, new Date(h.timestampMs).toLocaleTimeString()),
      el("td", {}, fmt(h.eventCount)),
      el("td", { class: "mono", title: h.validatorsHash }, short(h.validatorsHash)))));
  }
  // Machine-readable state for tests (e2e/) and a readable line for people debugging.
  const debug = $("debug");
  Object.assign(debug.dataset, {
    running: String(s.running),
    phase: s.phase,
    verified: String(verified ?? ""),
    target: String(target),
    synced: String(synced && s.running),
    headersReceived: String(s.stats.headersReceived),
    headersVerified: String(s.stats.headersVerified),
    storedAtStart: String(ui.storedAtStart ?? ""),
    storeWrites: String(s.storeWrites),
    transport: ui.transport,
    host: ui.hostWhere ?? "",
  });
  debug.textContent =
    `phase=${s.phase} running=${s.running} verified=${verified ?? "-"} target=${target} ` +
    `headersReceived=${s.stats.headersReceived} headersVerified=${s.stats.headersVerified} ` +
    `storedAtStart=${ui.storedAtStart ?? "-"} storeWrites=${s.storeWrites} requests=${s.stats.requestsSent} ` +
    `failures=${s.stats.requestFailures} transport=${ui.transport} host=${ui.hostWhere}`;
}

function onClientEvent(name, p) {
  switch (name) {
    case "progress":
      if (ui.connected) renderProgress(p);
      break;
    case "newHead":
      $("head-card").classList.remove("flash");
      void $("head-card").offsetWidth; // restart the animation
      $("head-card").classList.add("flash");
      break;
    case "forkDetected":
      setAlarm("fork", "danger", "Fork detected",
        `at height ${fmt(p.height)}: peer ${short(p.peer)} served header ${short(p.theirs.header.hash)}, ` +
        `ours is ${short(p.ours.header.hash)}, both validly signed. The client stopped; do not trust this chain.`);
      break;
    case "checkpointStale":
      setAlarm("stale", "warning", "Stale checkpoint",
        `the trusted header is ${days(p.ageMs)} days old (trust period ${days(p.trustPeriodMs)} days): get a fresh checkpoint from a source you trust.`);
      break;
    case "error":
      if (p.code === "STORE_QUOTA_EXCEEDED") {
        setAlarm("storage", "warning", "Storage full", `${p.message}. Sync is paused and retries; free some space or use “Forget stored headers”.`);
      } else {
        $("last-error").hidden = false;
        $("last-error").textContent = `${p.code}: ${p.message}`;
      }
      break;
  }
}

// ---- wiring ----------------------------------------------------------------------------------

$("connect-form").addEventListener("submit", (e) => {
  e.preventDefault();
  connect();
});
$("disconnect").addEventListener("click", disconnect);
$("forget").addEventListener("click", forget);
for (const radio of document.querySelectorAll('input[name="transport"]')) {
  radio.addEventListener("change", () => setTransport(radio.value, { fillBootnode: true }));
}
$("verify-form").addEventListener("submit", (e) => {
  e.preventDefault();
  verify($("event-id").value);
});
$("recent-event").addEventListener("click", async () => {
  const lc = await fetchLightConfig();
  if (lc?.recentEventId) $("event-id").value = lc.recentEventId;
});

init();
