/**
 * The limits and timings of messaging, and the names its streams carry in BEGIN (specs/messaging.md §7, §8.4;
 * specs/limits.md "Endpoints"). The limits bound what initiators can make an endpoint hold; each has an option of
 * the same name in MessengerOptions.limits, resolved here to a full EndpointLimits.
 */

/** BEGIN target of a conversation's message stream (port 1). */
export const MESSAGE_STREAM = 'allium:messages';
/** BEGIN target of a stream to a hidden TCP service (the port is the service's). */
export const SERVICE_STREAM = 'allium:service';

/** Introductions that opened and await a rendezvous; past this the oldest is dropped. */
export const MAX_PENDING_INTRODUCTIONS = 64;
/** Introductions answered at once (a circuit to the rendezvous point being built, RENDEZVOUS1 not yet sent). */
export const MAX_CONCURRENT_RENDEZVOUS = 4;
/** Rendezvous circuits an endpoint keeps open for initiators; while at this, introductions wait in the queue. */
export const MAX_SERVICE_CIRCUITS = 512;
/** A rendezvous circuit with no open stream for this long is closed. */
export const SERVICE_CIRCUIT_IDLE_MS = 60_000;
/** Streams open at once on one rendezvous circuit (its one message stream included). */
export const MAX_SERVICE_STREAMS_PER_CIRCUIT = 64;
/** Peers with a conversation on file for send() to reuse; past this the longest filed is unfiled (not closed). */
export const MAX_CONVERSATIONS = 1024;
/** Messages a listen() call holds that the application has not taken yet; senders wait while it is full. */
export const MAX_LISTEN_QUEUE = 256;

/** What initiators can make an endpoint hold (defaults: the constants of the same names). */
export interface EndpointLimits {
  /** MAX_PENDING_INTRODUCTIONS (64). */
  maxPendingIntroductions: number;
  /** MAX_CONCURRENT_RENDEZVOUS (4). */
  maxConcurrentRendezvous: number;
  /** MAX_SERVICE_CIRCUITS (512). */
  maxServiceCircuits: number;
  /** SERVICE_CIRCUIT_IDLE_MS (60 s). */
  serviceCircuitIdleMs: number;
  /** MAX_SERVICE_STREAMS_PER_CIRCUIT (64). */
  maxServiceStreamsPerCircuit: number;
  /** MAX_CONVERSATIONS (1024). */
  maxConversations: number;
  /** MAX_LISTEN_QUEUE (256). */
  maxListenQueue: number;
}

/** `given` with every missing limit at its default. */
export function endpointLimits(given: Partial<EndpointLimits> = {}): EndpointLimits {
  return {
    maxPendingIntroductions: given.maxPendingIntroductions ?? MAX_PENDING_INTRODUCTIONS,
    maxConcurrentRendezvous: given.maxConcurrentRendezvous ?? MAX_CONCURRENT_RENDEZVOUS,
    maxServiceCircuits: given.maxServiceCircuits ?? MAX_SERVICE_CIRCUITS,
    serviceCircuitIdleMs: given.serviceCircuitIdleMs ?? SERVICE_CIRCUIT_IDLE_MS,
    maxServiceStreamsPerCircuit: given.maxServiceStreamsPerCircuit ?? MAX_SERVICE_STREAMS_PER_CIRCUIT,
    maxConversations: given.maxConversations ?? MAX_CONVERSATIONS,
    maxListenQueue: given.maxListenQueue ?? MAX_LISTEN_QUEUE,
  };
}

/** A published endpoint descriptor is valid this long. */
export const DESCRIPTOR_LIFETIME_MS = 3 * 3600_000;
/** An introduction or rendezvous step waits this long for its reply; an initiator waits this long for RENDEZVOUS2. */
export const REPLY_TIMEOUT_MS = 30_000;
/** A conversation whose peer acknowledges nothing for this long while messages wait is given up (default). */
export const DEFAULT_ACK_TIMEOUT_MS = REPLY_TIMEOUT_MS;
/** Conversations a message is handed to before send() gives up on a live delivery: the first and one rebuilt. */
export const LIVE_ATTEMPTS = 2;
/** Message ids remembered per peer, to drop copies (a message sent again after its ack was lost, or its offline copy). */
export const RECENT_IDS_PER_PEER = 1024;
/** Peers whose recent ids are remembered (the least recently heard from is forgotten first). */
export const RECENT_ID_PEERS = 256;
/** After a send found the recipient offline, further sends go straight to its mailbox for this long. */
export const OFFLINE_RECHECK_MS = 15_000;
/** Recipients remembered as offline (expired entries are swept when this many are held). */
export const MAX_OFFLINE_PEERS = 1024;
/** An introduction point is replaced after this long (its replay set then starts afresh under a new key). */
export const DEFAULT_INTRO_LIFETIME_MS = 18 * 3600_000;
/** … or after this many introductions, which bounds the replay set's memory. */
export const DEFAULT_MAX_INTRODUCTIONS = 16_384;
/** Introduction points kept (default of MessengerOptions.introPoints). */
export const DEFAULT_INTRO_POINTS = 3;
/** The descriptor is republished this often (default of MessengerOptions.republishMs). */
export const DEFAULT_REPUBLISH_MS = 600_000;
/** Offline messages are looked for this often while listening (default of MessengerOptions.offline.pollMs). */
export const DEFAULT_POLL_MS = 60_000;
/** A replaced introduction point stays up this long after the new descriptor is out, for clients holding the old. */
export const RETIRED_INTRO_GRACE_MS = 60_000;

/** Proof of work at introductions (specs/rendezvous.md §4.3, specs/limits.md "Endpoints"). */
/** The endpoint reconsiders its suggested effort this often (and republishes when it changed). */
export const POW_UPDATE_MS = 120_000;
/** … and at once when it is loaded, but not sooner than this after its last look. */
export const POW_RAISE_MIN_MS = 5_000;
/** Introductions refused before the queue since the last look that make the endpoint ask for a proof at once. */
export const POW_REFUSED_LOADED = 32;
/** The lowest effort the endpoint suggests once under load (below it, it suggests none: 0). */
export const POW_MIN_EFFORT = 16;
/** The highest effort the endpoint suggests (about 0.3 s of an initiator's CPU at 250,000 hashes a second). */
export const POW_MAX_SUGGESTED_EFFORT = 1 << 16;
/** The most effort an initiator spends on one introduction (about 1 s), however much the endpoint asks. */
export const POW_CLIENT_MAX_EFFORT = 1 << 18;
/** Solutions remembered per seed to refuse replays; when full, the seed is replaced and the descriptor republished. */
export const MAX_POW_REPLAY_ENTRIES = 65_536;
/** Hashes an initiator tries between yields to its event loop (and checks of its abort signal) while solving. */
export const POW_SOLVE_SLICE = 4096;
