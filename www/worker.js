// The dedicated module Worker that runs the light client for the page (see client-host.js).
import { createHost } from "./client-host.js";

const handle = createHost((msg) => self.postMessage(msg), "worker");
self.onmessage = (e) => handle(e.data);
