/** A stable, machine-readable error code (`HeadwayError.code`). Never renamed. */
export type ErrorCode =
  | "INVALID_CONFIG"
  | "INVALID_CHECKPOINT"
  | "CHECKPOINT_MISMATCH"
  | "CHECKPOINT_STALE"
  | "HANDSHAKE_FAILED"
  | "NETWORK"
  | "NO_PEERS"
  | "TIMEOUT"
  | "FORK_DETECTED"
  | "INVALID_PROOF"
  | "EVENT_NOT_FOUND"
  | "PROOF_UNAVAILABLE"
  | "STORE_QUOTA_EXCEEDED"
  | "STORE_UNAVAILABLE"
  | "STORE_LOCKED"
  | "STORE_CORRUPT"
  | "STORE"
  | "STOPPED"
  | "INTERNAL";

/** Every error the API throws or rejects with, and the payload of the `error` event. */
export interface HeadwayError extends Error {
  name: "HeadwayError";
  code: ErrorCode;
}

/** The checkpoint's JSON form (snake_case, as `headway checkpoint --json` prints it). */
export interface CheckpointJson {
  chain_id: string;
  height: number;
  /** 64 hex digits. */
  block_hash: string;
  /** The set that signs block `height + 1`, in canonical (key) order. */
  validators: { key: string; power: number }[];
}

export interface LightClientConfig {
  /** The one-line text form (`headway1:...`), or the JSON form as a string or an object. */
  checkpoint: string | CheckpointJson;
  /** The chain's genesis block hash (64 hex); required unless the checkpoint is at height 0. */
  genesisHash?: string;
  /** Multiaddrs ending in `/p2p/<peer id>`: `/ws`, `/tls/ws` or `/webrtc-direct`. */
  bootnodes: string[];
  /** IndexedDB database name (default "headway"); `null` keeps headers in memory only. */
  storeName?: string | null;
  /** Keep only this many recent headers (default: all). */
  keepHeaders?: number;
  /** A trusted header older than this raises `checkpointStale` (default 14 days). */
  trustPeriodMs?: number;
  /** Stop instead of syncing from a stale trusted header (default false). */
  refuseStaleCheckpoint?: boolean;
  /** Headers per request, 1 to the protocol maximum (default 128). */
  batchSize?: number;
  /** Header requests in flight to one peer (default 2). */
  maxRequestsPerPeer?: number;
}

export type Phase = "bootstrapping" | "syncing" | "following" | "waitingForPeers" | "stopped";

export interface Stats {
  requestsSent: number;
  headerRequests: number;
  headersRequested: number;
  headersReceived: number;
  headersVerified: number;
  proofRequests: number;
  requestFailures: number;
  peersDropped: number;
}

export interface Status {
  phase: Phase;
  verifiedHeight: number | null;
  verifiedHash: string | null;
  targetHeight: number;
  peers: number;
  storedHeight: number | null;
  headersPerSecond: number;
  forkHeight: number | null;
  checkpointStaleMs: number | null;
  storePaused: boolean;
  lastError: { code: ErrorCode; message: string } | null;
  stats: Stats;
  storeWrites: number;
  running: boolean;
}

export interface Header {
  height: number;
  hash: string;
  parentHash: string;
  timestampMs: number;
  eventCount: number;
  eventsRoot: string;
  mmrRoot: string;
  validatorsHash: string;
  nextValidatorsHash: string;
}

export interface EventVerification {
  eventId: string;
  height: number;
  blockHash: string;
  index: number;
}

export interface Progress {
  type: "progress";
  phase: Phase;
  verifiedHeight: number;
  targetHeight: number;
  peers: number;
  headersPerSecond: number;
}

export interface NewHead {
  type: "newHead";
  height: number;
  hash: string;
}

/** One side of a fork: the header and its signed encoding (hex), verifiable by anyone. */
export interface ForkSide {
  header: Header;
  signedHeaderHex: string;
}

export interface ForkDetected {
  type: "forkDetected";
  height: number;
  ours: ForkSide;
  theirs: ForkSide;
  peer: string;
}

export interface CheckpointStale {
  type: "checkpointStale";
  ageMs: number;
  trustPeriodMs: number;
}

/** Event names and their payloads, for `on` and `off`. */
export interface LightClientEvents {
  progress: Progress;
  newHead: NewHead;
  forkDetected: ForkDetected;
  checkpointStale: CheckpointStale;
  error: HeadwayError;
}

export type LightClientListener<K extends keyof LightClientEvents> = (
  payload: LightClientEvents[K],
) => void;

export interface LightClient {
  /** Calls `listener` with each `event` from now on (the same listener is added once). */
  on<K extends keyof LightClientEvents>(event: K, listener: LightClientListener<K>): void;
  /** Removes `listener` from `event`. */
  off<K extends keyof LightClientEvents>(event: K, listener: LightClientListener<K>): void;
}
