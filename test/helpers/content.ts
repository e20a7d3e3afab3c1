/**
 * Helpers for content tests against relay processes: deterministic file bytes, the block layout a put produces
 * (computed locally with the same encoder), read and write access to a relay's SQLite store from outside the
 * relay, and circuits whose last hop is a chosen relay.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { toHex } from '../../protocol/bytes.js';
import { decodeCbor } from '../../protocol/cbor.js';
import { BlockType, decryptBlock, parseBlockPlaintext, type BlockRef } from '../../protocol/chk.js';
import { encodeFile, type EncodedBlock } from '../../protocol/file-codec.js';
import type { ClientCircuit } from '../../net/circuit.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { waitFor, type RelayProcess } from './network.js';

/** n pseudo-random bytes from a seed (xorshift32), the same on every run. */
export function patternBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n + 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out.subarray(0, n);
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface Segment {
  k: number;
  m: number;
  /** k data block refs then m check block refs. */
  refs: BlockRef[];
}

export interface FileLayout {
  root: BlockRef;
  /** Every stored block, by routing key hex. */
  blocks: Map<string, EncodedBlock>;
  /** Segments of a file larger than one block (empty for an inline file). */
  segments: Segment[];
}

/**
 * The blocks a convergent put of `data` stores (same data, same keys), with the segment structure read back from
 * the root manifest. Only direct manifests (files up to a few hundred blocks).
 */
export async function fileLayout(data: Uint8Array): Promise<FileLayout> {
  const gen = encodeFile([data], { mode: 'convergent' });
  const blocks = new Map<string, EncodedBlock>();
  let step = await gen.next();
  while (!step.done) {
    blocks.set(toHex(step.value.ref.rk), step.value);
    step = await gen.next();
  }
  const root = step.value;
  const plain = parseBlockPlaintext(decryptBlock(root, blocks.get(toHex(root.rk))!.stored));
  const segments: Segment[] = [];
  if (plain.type === BlockType.MANIFEST) {
    const man = decodeCbor(plain.payload, plain.payload.length) as { segs?: [number, number, Uint8Array][] };
    if (!man.segs) throw new Error('fileLayout: indirect manifests are not supported here');
    for (const [k, m, r] of man.segs) {
      const refs = Array.from({ length: r.length / 64 }, (_, i) => ({ rk: r.slice(i * 64, i * 64 + 32), dk: r.slice(i * 64 + 32, i * 64 + 64) }));
      segments.push({ k, m, refs });
    }
  }
  return { root, blocks, segments };
}

/** Opens a relay's store from outside the relay (WAL allows a second connection); waits on the relay's locks. */
export function openStore(relay: RelayProcess | string, readonly = true): Database.Database {
  const dir = typeof relay === 'string' ? relay : relay.dataDir;
  const db = new Database(join(dir, 'store.sqlite'), { readonly, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  return db;
}

/** The stored bytes of a block at a relay (read from its SQLite file), or null. */
export function storedBlock(relay: RelayProcess, rk: Uint8Array): Buffer | null {
  const db = openStore(relay);
  try {
    return db.prepare<[Uint8Array], { data: Buffer }>('SELECT data FROM blocks WHERE rk = ?').get(rk)?.data ?? null;
  } finally {
    db.close();
  }
}

/** Runs `f` on a writable connection to a relay's store. */
export function withStore<T>(relay: RelayProcess, f: (db: Database.Database) => T): T {
  const db = openStore(relay, false);
  try {
    return f(db);
  } finally {
    db.close();
  }
}

/** Every file under a directory, recursively. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** Files under `dir` whose bytes contain `needle`. */
export function filesContaining(dir: string, needle: Uint8Array): string[] {
  return filesUnder(dir).filter((f) => readFileSync(f).includes(Buffer.from(needle)));
}

/** A started client for a test network on 127.0.0.1 (no pre-built exit circuits). */
/** A started client of a test network on 127.0.0.1 (no subnet rule, no prebuilt circuits). */
async function testClient(o: { bootstrap: string; hops?: number; authorities?: readonly string[]; entryRelays?: string[] }): Promise<AlliumClient> {
  const client = new AlliumClient({
    bootstrap: [o.bootstrap],
    socketFactory: nodeSocketFactory,
    ...SINGLE_HOST_CLIENT,
    poolSize: 0,
    ...(o.hops !== undefined ? { hops: o.hops } : {}),
    ...(o.authorities ? { authorities: o.authorities } : {}),
    ...(o.entryRelays ? { entryRelays: o.entryRelays } : {}),
  });
  await client.start();
  return client;
}

/**
 * A client of a test network. With `authorities` (a network's `authorities`), it takes their consensus and places
 * content as the network's relays do (salted by the shared random value, Holder flags); without, by unsalted
 * positions among store relays, which matches relays only in a network without authorities.
 */
export function startClient(bootstrap: string, hops = 3, authorities?: readonly string[]): Promise<AlliumClient> {
  return testClient({ bootstrap, hops, ...(authorities ? { authorities } : {}) });
}

/**
 * A client whose entries are the network's relays at `entries` (indices into `net.relays`): two such clients on
 * disjoint entries are two parties that share no first hop, as messaging tests need.
 */
export function startEntryClient(net: { bootstrap: string; relays: readonly { fingerprint: string }[] }, entries: readonly number[]): Promise<AlliumClient> {
  return testClient({ bootstrap: net.bootstrap, entryRelays: entries.map((i) => net.relays[i]!.fingerprint) });
}

/**
 * A new circuit whose last hop is `relay` (refreshing the client's directory until it knows the relay's current
 * descriptor, e.g. after a restart on a new port).
 */
export async function circuitTo(client: AlliumClient, relay: RelayProcess, timeoutMs = 30_000): Promise<ClientCircuit> {
  let circuit: ClientCircuit | null = null;
  let lastError: unknown = null;
  await waitFor(
    async () => {
      const d = client.directory.all().find((x) => x.fingerprint === relay.fingerprint && x.addr === relay.address);
      if (!d) {
        await client.refreshDirectory();
        return false;
      }
      try {
        circuit = await client.newCircuit({ last: d, exitPort: null });
        return true;
      } catch (e) {
        lastError = e;
        return false;
      }
    },
    timeoutMs,
    () => `a circuit to ${relay.fingerprint.slice(0, 8)} (last error: ${String(lastError)})`,
  );
  return circuit!;
}
