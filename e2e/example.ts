// A typed use of the headway package: connect, follow progress, prove an event, and branch on
// the stable error codes. `tsc --noEmit` checks it against pkg/headway.d.ts (see
// tsconfig.json), so a change to the package's types that breaks apps breaks this first.
import init, {
  LightClient,
  type ErrorCode,
  type EventVerification,
  type HeadwayError,
  type LightClientConfig,
  type Progress,
  type Status,
} from "headway";

/** Narrows an unknown rejection to the package's error type. */
function isHeadwayError(e: unknown): e is HeadwayError {
  return e instanceof Error && e.name === "HeadwayError" && "code" in e;
}

/** What to tell a user for the errors they can act on; the others are shown as they are. */
const advice: Partial<Record<ErrorCode, string>> = {
  STORE_LOCKED: "another tab runs the light client: close it",
  CHECKPOINT_MISMATCH: "the stored headers belong to another checkpoint: clear them",
  EVENT_NOT_FOUND: "no peer knows this event (yet?)",
  INVALID_PROOF: "a peer served a proof that does not verify: do not trust the event",
};

export async function proveEvent(
  config: LightClientConfig,
  eventId: string,
  onProgress: (p: Progress) => void,
): Promise<EventVerification> {
  await init();
  const client = await LightClient.create({ ...config, storeName: "example" });
  client.on("progress", onProgress);
  client.on("forkDetected", (fork) => {
    console.error(`fork at ${fork.height}: ours ${fork.ours.header.hash}, theirs ${fork.theirs.header.hash}`);
  });
  client.on("error", (e) => console.warn(e.code, e.message));
  try {
    await client.start();
    // Wait until the verified head has caught up with what the peers claim.
    for (;;) {
      const s: Status = client.status();
      if (s.phase === "following" && s.verifiedHeight !== null && s.verifiedHeight >= s.targetHeight) break;
      if (s.phase === "stopped") throw new Error(s.lastError?.message ?? "stopped");
      await new Promise((r) => setTimeout(r, 250));
    }
    return await client.verifyEvent(eventId);
  } catch (e) {
    if (isHeadwayError(e)) {
      throw new Error(`${e.code}: ${advice[e.code] ?? e.message}`);
    }
    throw e;
  } finally {
    await client.stop();
    client.free();
  }
}

// Usage in a page (values as GET /light-config of a devnet node returns them):
//   const v = await proveEvent(
//     { checkpoint: "headway1:…", genesisHash: "…", bootnodes: ["/ip4/127.0.0.1/tcp/30401/ws/p2p/…"] },
//     "…64 hex…",
//     (p) => console.log(`${p.verifiedHeight} / ${p.targetHeight}`),
//   );
//   console.log(`in block ${v.height} (${v.blockHash}) at index ${v.index}`);
