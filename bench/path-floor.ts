/**
 * npm run bench:path-floor — the crypto floor of bench:bulk-cpu's figures: what the cryptography alone costs each
 * process on a bulk download's path, per MiB of stream data, in CPU time of this one process (not wall time, so it
 * moves less with other tenants than bench:crypto's rates; cache contention still moves it).
 *
 * Rows, per MiB of 886-byte DATA payloads (1,183.5 cells):
 *   client: ClientCircuitCrypto.unwrapBackward of 3 layers, and a link frame opened per 4 cells
 *   relay:  one layer (RelayHopCrypto.wrapBackward), a frame opened and a frame sealed (into a reused buffer) per 4 cells
 *   bare:   a layer's two libsodium calls (ChaCha20 over 1,083 bytes, Poly1305 over 1,003), without the layer's copies
 * and the fixed cost of one call into libsodium (ChaCha20 over 64 bytes, Poly1305 over 16), which a layer pays twice.
 *
 *   --rounds N   default 5; every row is measured once a round, in turns, and the median is printed
 */
import { crypto, initCrypto } from '../crypto/index.js';
import { FRAME_CELLS, FRAME_LEN, FRAME_PLAIN_LEN, FrameCipher } from '../protocol/link-handshake.js';
import { ClientCircuitCrypto, RelayHopCrypto } from '../protocol/relay-crypto.js';
import { RELAY_PAYLOAD_LEN } from '../protocol/constants.js';
import { machineLine } from './lib/proc.js';
import { fmt, median } from './lib/stats.js';
import { parseFlags } from './lib/options.js';

const flags = parseFlags(process.argv.slice(2), { rounds: 'number' }, 'usage: npm run bench:path-floor -- [--rounds N]');
const rounds = flags.rounds ?? 5;
/** Stream bytes a DATA cell carries. */
const DATA = 886;
const CELLS = 12_288;
const MIB = (CELLS * DATA) / 2 ** 20;

await initCrypto();
const c = crypto();
const hopKeys = (): { forward: Uint8Array; backward: Uint8Array; binding: Uint8Array } => ({
  forward: c.random(32),
  backward: c.random(32),
  binding: c.random(32),
});
/** CPU milliseconds `f` takes. */
function cpuMs(f: () => void): number {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

const keys = [hopKeys(), hopKeys(), hopKeys()];
const payload = new Uint8Array(RELAY_PAYLOAD_LEN).fill(7);
const plain = new Uint8Array(FRAME_PLAIN_LEN);
const frameOut = new Uint8Array(FRAME_LEN);
const FRAMES = CELLS / FRAME_CELLS;

type Row = { label: string; run: () => number };
const rows: Row[] = [
  {
    label: 'client: 3 layers unwrapped',
    run: () => {
      // Cells made by the relays' layers a batch at a time and unwrapped at once, so they are in cache as a cell
      // just read from the socket is; only the unwrapping is timed.
      const relays = keys.map((k) => new RelayHopCrypto(k));
      const cc = new ClientCircuitCrypto(keys);
      const BATCH = 256;
      const bodies = Array.from({ length: BATCH }, () => new Uint8Array(1019));
      let ms = 0;
      for (let done = 0; done < CELLS; done += BATCH) {
        for (const b of bodies) {
          b.set(relays[2]!.originateBackward(payload));
          relays[1]!.wrapBackward(b);
          relays[0]!.wrapBackward(b);
        }
        ms += cpuMs(() => {
          for (const b of bodies) cc.unwrapBackward(b);
        });
      }
      for (const r of relays) r.wipe();
      cc.wipe();
      return ms;
    },
  },
  {
    label: 'relay: 1 layer wrapped',
    run: () => {
      const hop = new RelayHopCrypto(keys[1]!);
      const body = new Uint8Array(1019);
      const ms = cpuMs(() => {
        for (let i = 0; i < CELLS; i++) hop.wrapBackward(body);
      });
      hop.wipe();
      return ms;
    },
  },
  {
    label: 'link: frames sealed into a reused buffer (1 per 4 cells)',
    run: () => {
      const tx = new FrameCipher(c.random(32));
      return cpuMs(() => {
        for (let i = 0; i < FRAMES; i++) tx.sealInto(plain, frameOut);
      });
    },
  },
  {
    label: 'link: frames opened (1 per 4 cells)',
    run: () => {
      const key = c.random(32);
      const tx = new FrameCipher(Uint8Array.from(key));
      const rx = new FrameCipher(key);
      const frames: Uint8Array[] = [];
      for (let i = 0; i < FRAMES; i++) frames.push(tx.seal(plain));
      return cpuMs(() => {
        for (const f of frames) rx.open(f);
      });
    },
  },
  {
    label: "bare: a layer's 2 libsodium calls",
    run: () => {
      const buf = new Uint8Array(1083);
      const mac = new Uint8Array(16);
      const nonce = new Uint8Array(12);
      const key = c.random(32);
      const m = buf.subarray(80);
      return cpuMs(() => {
        for (let i = 0; i < CELLS; i++) {
          c.chacha20Xor(buf, buf, nonce, 0, key);
          c.poly1305(mac, m, key);
        }
      });
    },
  },
  {
    label: 'fixed cost of the 2 calls (ChaCha20 64 B + Poly1305 16 B)',
    run: () => {
      const buf = new Uint8Array(64);
      const mac = new Uint8Array(16);
      const nonce = new Uint8Array(12);
      const key = c.random(32);
      const m = buf.subarray(0, 16);
      return cpuMs(() => {
        for (let i = 0; i < CELLS; i++) {
          c.chacha20Xor(buf, buf, nonce, 0, key);
          c.poly1305(mac, m, key);
        }
      });
    },
  },
];

// A warm-up round, not counted.
for (const r of rows) r.run();
const results = new Map<string, number[]>(rows.map((r) => [r.label, []]));
for (let i = 0; i < rounds; i++) for (const r of rows) results.get(r.label)!.push(r.run() / MIB);

console.log(`== bench:path-floor — ${machineLine()} — CPU ms per MiB of stream data, median of ${rounds} rounds [min–max] ==`);
for (const r of rows) {
  const v = results.get(r.label)!;
  console.log(`${r.label.padEnd(60)} ${fmt(median(v)).padStart(7)}  [${fmt(Math.min(...v))}–${fmt(Math.max(...v))}]`);
}
const m = (label: string): number => median(results.get(label)!);
const client = m('client: 3 layers unwrapped') + m('link: frames opened (1 per 4 cells)');
const relay = m('relay: 1 layer wrapped') + m('link: frames opened (1 per 4 cells)') + m('link: frames sealed into a reused buffer (1 per 4 cells)');
console.log(`crypto floor: client ${fmt(client)} ms per MiB (bench:bulk-cpu's goal ≤ 7), a relay on the path ${fmt(relay)} ms per MiB (goal ≤ 7)`);
