// The light client's host: owns one `LightClient` and answers the page's requests
// ({ id, type, ... }) with a reply each ({ type: "reply", id, ok, value | error }) plus
// unsolicited "status" and "event" messages. Errors cross as plain { name, code, message }
// objects: structured clone would drop a HeadwayError's `code`.
//
// It normally runs in a dedicated module Worker (worker.js), so header verification (ed25519
// in wasm) never blocks the page. The page runs it on its own thread only for WebRTC:
// browsers have no RTCPeerConnection in Workers, and libp2p's webrtc-websys needs `window`.
//
// "../pkg/headway.js" resolves to /pkg/headway.js both when `headway devnet` serves www/ at
// "/" and when a static server serves the repository root (page at /www/).
import init, { LightClient } from "../pkg/headway.js";

/** IndexedDB database (and Web Lock) name of the demo's store. */
const STORE = "headway-demo";
/** Rows of the "latest headers" table. */
const LATEST = 8;
/** How often the page gets a status snapshot while running, ms. */
const TICK_MS = 500;

const plain = (e) => ({
  name: e?.name ?? "Error",
  code: e?.code ?? "INTERNAL",
  message: e?.message ?? String(e),
});

/**
 * Starts loading the wasm and returns `handle(message)`; every message for the page goes to
 * `post`. `where` ("worker" or "page") is reported in the "ready" message.
 */
export function createHost(post, where) {
  let client = null;
  let timer = null;
  /** Latest headers, newest first; refreshed when the stored head moves. */
  let latest = [];
  let latestFor = null;

  // Fetch and compile the wasm at once, before the user clicks Connect.
  const ready = init().then(
    () => post({ type: "ready", where, webrtc: typeof RTCPeerConnection === "function" && typeof window === "object" }),
    (e) => {
      post({ type: "fatal", error: plain(e) });
      throw e;
    },
  );
  // Reported above as "fatal"; `connect` rethrows it to its caller.
  ready.catch(() => {});

  async function refreshLatest(head) {
    if (!client || !head || latestFor === head.height) return;
    const rows = [];
    for (let h = head.height; h >= 0 && rows.length < LATEST; h--) {
      const known = latest.find((r) => r.height === h);
      const row = known ?? (await client.header(h));
      // Below the checkpoint (or pruned): nothing more to show.
      if (!row) break;
      rows.push(row);
    }
    latest = rows;
    latestFor = head.height;
  }

  async function snapshot() {
    if (!client) return;
    const head = client.head();
    try {
      await refreshLatest(head);
    } catch (e) {
      // `header` rejects STOPPED once the client stopped (e.g. after a fork): keep the rows.
      if (e?.code !== "STOPPED") throw e;
    }
    // Read after the awaits above, so the page never shows a status older than the progress
    // events it rendered meanwhile.
    post({ type: "status", status: client.status(), head, headers: latest });
  }

  function tick() {
    snapshot().catch((e) => post({ type: "event", name: "error", payload: plain(e) }));
  }

  async function connect(config) {
    await ready;
    if (client) throw { name: "HeadwayError", code: "STOPPED", message: "already connected" };
    const c = await LightClient.create({ ...config, storeName: STORE });
    client = c;
    latest = [];
    latestFor = null;
    // What IndexedDB held before any network traffic: the page shows it as "resumed from".
    const stored = c.status();
    post({ type: "status", status: stored, head: c.head(), headers: [] });
    for (const name of ["progress", "newHead", "forkDetected", "checkpointStale"]) {
      c.on(name, (payload) => post({ type: "event", name, payload }));
    }
    c.on("error", (e) => post({ type: "event", name: "error", payload: plain(e) }));
    try {
      await c.start();
    } catch (e) {
      // A failed start leaves the client stopped: release its store for the next attempt.
      client = null;
      await c.stop().catch(() => {});
      c.free();
      throw e;
    }
    timer = setInterval(tick, TICK_MS);
    tick();
    return { storedHeight: stored.storedHeight };
  }

  async function disconnect() {
    clearInterval(timer);
    timer = null;
    const c = client;
    client = null;
    if (!c) return null;
    await c.stop();
    const status = c.status();
    c.free();
    post({ type: "status", status, head: null, headers: latest });
    return null;
  }

  function deleteStore() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(STORE);
      req.onsuccess = () => resolve(null);
      req.onerror = () => reject(req.error);
      req.onblocked = () =>
        reject({ name: "HeadwayError", code: "STORE_LOCKED", message: "another tab holds the store" });
    });
  }

  const handlers = {
    connect: (msg) => connect(msg.config),
    disconnect: () => disconnect(),
    forget: async () => {
      await disconnect();
      return deleteStore();
    },
    verify: async (msg) => {
      if (!client) {
        throw { name: "HeadwayError", code: "STOPPED", message: "connect first: verifying needs a running client" };
      }
      return client.verifyEvent(msg.eventId.trim());
    },
  };

  return async function handle(msg) {
    const handler = handlers[msg.type];
    try {
      if (!handler) throw new Error(`unknown request ${msg.type}`);
      const value = await handler(msg);
      post({ type: "reply", id: msg.id, ok: true, value });
    } catch (err) {
      post({ type: "reply", id: msg.id, ok: false, error: plain(err) });
    }
  };
}
