import { initCrypto } from '../crypto/index.js';
import { encodeFile, decodeFile } from '../protocol/file-codec.js';
import { toHex, concatBytes } from '../protocol/bytes.js';
import { BLOCK_PAYLOAD_MAX } from '../protocol/chk.js';
await initCrypto();
for (const size of [0, 1, BLOCK_PAYLOAD_MAX, BLOCK_PAYLOAD_MAX + 1, 3_000_000, 50 * 1024 * 1024]) {
  const data = new Uint8Array(size); for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 255;
  const store = new Map<string, Uint8Array>();
  const chunks = function* () { for (let o = 0; o < size; o += 65536) yield data.subarray(o, o + 65536); };
  let t = Date.now();
  const gen = encodeFile(chunks(), { mode: 'convergent' });
  let r = await gen.next(); let root: any;
  while (!r.done) { store.set(toHex(r.value.ref.rk), r.value.stored); r = await gen.next(); }
  root = r.value;
  const te = Date.now() - t;
  // destroy a third of the blocks that are data/check (not root)
  let i = 0; const keys = [...store.keys()];
  if (size > 3_000_000) for (const k of keys.slice(0, -10)) { if (i++ % 3 === 0) store.delete(k); }
  t = Date.now();
  const parts: Uint8Array[] = [];
  for await (const p of decodeFile(root, async (ref) => store.get(toHex(ref.rk)) ?? null)) parts.push(p);
  const out = concatBytes(...parts);
  console.log(size, 'blocks', keys.length, 'enc', te, 'ms dec', Date.now() - t, 'ms', out.length === size && out.every((v, j) => v === data[j]));
}
