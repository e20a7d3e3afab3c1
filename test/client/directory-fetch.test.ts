/**
 * What a directory source can make a client hold (specs/directory.md §6.1, §7; specs/limits.md): a fetch checks
 * each page as it arrives (every entry verifies, fingerprints rise strictly), stops at MAX_DIRECTORY_FETCH_ENTRIES
 * and MAX_DIRECTORY_FETCH_BYTES, and a consensus fetch stops after one consensus per authority. The source is a
 * scripted relay at the end of a real link (handshake, frame encryption, CONTROL fragments) over in-memory sockets.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import type { ControlMessage } from '../../protocol/control.js';
import { signDescriptor } from '../../protocol/descriptor.js';
import { isAlliumError, LimitError } from '../../protocol/errors.js';
import { HandshakeReplayCache } from '../../protocol/link-handshake.js';
import { ClientDirectory, fetchFromRelay } from '../../client/directory.js';
import { fetchConsensusDiff } from '../../net/directory-requests.js';
import type { Consensus, ConsensusHead } from '../../protocol/consensus.js';
import { Link } from '../../net/link.js';
import { memorySocketPair } from '../../net/memory-socket.js';

interface Source {
  /** The client's end of the link. */
  link: Link;
  /** Pages (or consensus messages) the source has sent. */
  sent: () => number;
  close: () => void;
}

/**
 * A relay at the end of a real link that answers each CONTROL message with what `answer` returns, a few hundred
 * messages per turn of the event loop (the link queues at most MAX_LINK_QUEUE_CELLS cells).
 */
async function source(answer: (m: ControlMessage, n: number) => ControlMessage[] | 'close'): Promise<Source> {
  const identity = IdentityKey.generate();
  const [a, b] = memorySocketPair();
  const relay = new Link(b, { role: 'responder', identity, replay: new HandshakeReplayCache(60_000, 100), maxClockSkewMs: 60_000 });
  const link = new Link(a, { role: 'initiator', responder: identity.publicKey });
  let sent = 0;
  relay.on('link:control', (m) => {
    const out = answer(m, sent);
    if (out === 'close') return relay.close();
    void (async () => {
      for (let i = 0; i < out.length; i++) {
        if (i > 0 && i % 500 === 0) await new Promise((r) => setImmediate(r));
        if (!relay.isOpen) return;
        sent++;
        relay.sendControl(out[i]!);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    link.once('link:open', () => resolve());
    link.once('link:close', (e) => reject(e ?? new Error('closed')));
  });
  return { link, sent: () => sent, close: () => relay.close() };
}

/** `n` valid descriptors in ascending fingerprint order (`contact` pads them). */
function descriptors(n: number, contact = ''): Uint8Array[] {
  const now = Date.now();
  const out = Array.from({ length: n }, (_, i) => {
    const id = IdentityKey.generate();
    return signDescriptor(
      {
        id: id.publicKey,
        onion: crypto().random(32),
        addr: `ws://10.0.${i % 250}.1:9001/allium`,
        nick: `r${i}`,
        contact,
        family: [],
        bw: 1000,
        exit: ['reject *:*'],
        caps: [],
        pub: now,
        exp: now + 3_600_000,
      },
      id.secretKey,
    );
  });
  return out.sort((x, y) => (x.fingerprint < y.fingerprint ? -1 : 1)).map((d) => d.raw);
}

async function outcome(p: Promise<unknown>): Promise<{ code: string; limit?: string }> {
  try {
    await p;
    return { code: 'resolved' };
  } catch (e) {
    if (!isAlliumError(e)) throw e;
    return e instanceof LimitError ? { code: e.code, limit: e.limit } : { code: e.code };
  }
}

/** Pages a misbehaving source serves before it gives up and closes the link (it would go on for ever). */
const SOURCE_PAGES = 50;

describe('directory fetches are bounded by what they verify', () => {
  it('a source padding its pages with junk around one valid descriptor is refused at the first page', async () => {
    const [valid] = descriptors(1);
    const junk = (): Uint8Array[] => Array.from({ length: 99 }, () => crypto().random(2048));
    const s = await source((m, n) => (m.t !== 'dir-get' ? [] : n >= SOURCE_PAGES ? 'close' : [{ t: 'dir', at: 1, ds: [...junk(), valid!], more: true }]));
    const heap = process.memoryUsage().heapUsed;
    const r = await outcome(fetchFromRelay(s.link, 0));
    const grew = process.memoryUsage().heapUsed - heap;
    expect({ ...r, pages: s.sent() }).to.deep.equal({ code: 'ERR_DIRECTORY', pages: 1 });
    expect(grew).to.be.below(8 * 1024 * 1024);
  });

  it('a source serving the same page again and again is refused at the second', async () => {
    const page = descriptors(100);
    const s = await source((m, n) => (m.t !== 'dir-get' ? [] : n >= SOURCE_PAGES ? 'close' : [{ t: 'dir', at: 1, ds: page, more: true }]));
    expect({ ...(await outcome(fetchFromRelay(s.link, 0))), pages: s.sent() }).to.deep.equal({ code: 'ERR_DIRECTORY', pages: 2 });
  });

  it('a source with endless valid descriptors stops at MAX_DIRECTORY_FETCH_ENTRIES', async () => {
    const pool = descriptors(SOURCE_PAGES * 100);
    let next = 0;
    const s = await source((m) => {
      if (m.t !== 'dir-get') return [];
      if (next >= pool.length) return 'close';
      const ds = pool.slice(next, next + 100);
      next += 100;
      return [{ t: 'dir', at: 1, ds, more: true }];
    });
    const r = await outcome(fetchFromRelay(s.link, 0, { maxEntries: 1000 }));
    expect({ ...r, pages: s.sent() }).to.deep.equal({ code: 'ERR_LIMIT', limit: 'MAX_DIRECTORY_FETCH_ENTRIES', pages: 11 });
  });

  it('a source with endless large descriptors stops at MAX_DIRECTORY_FETCH_BYTES', async () => {
    const pool = descriptors(SOURCE_PAGES * 20, 'x'.repeat(256));
    let next = 0;
    const s = await source((m) => {
      if (m.t !== 'dir-get') return [];
      if (next >= pool.length) return 'close';
      const ds = pool.slice(next, next + 20);
      next += 20;
      return [{ t: 'dir', at: 1, ds, more: true }];
    });
    const maxBytes = pool.slice(0, 10 * 20).reduce((n, raw) => n + raw.length, 0); // ten pages exactly
    const r = await outcome(fetchFromRelay(s.link, 0, { maxBytes }));
    expect({ ...r, pages: s.sent() }).to.deep.equal({ code: 'ERR_LIMIT', limit: 'MAX_DIRECTORY_FETCH_BYTES', pages: 11 });
  });

  it('an honest source: every page in order, the whole directory', async () => {
    const pool = descriptors(250);
    let next = 0;
    const s = await source((m) => {
      if (m.t !== 'dir-get') return [];
      const ds = pool.slice(next, next + 100);
      next += 100;
      return [{ t: 'dir', at: 42, ds, more: next < pool.length }];
    });
    const r = await fetchFromRelay(s.link, 0);
    expect({ n: r.raws.length, at: r.at, pages: s.sent() }).to.deep.equal({ n: 250, at: 42, pages: 3 });
  });

  it('a consensus diff stops when it has more changes than both consensuses hold, however many the source sends', async () => {
    let pages = 0;
    const s = await source((m) => {
      if (m.t !== 'consensus-diff-get') return [];
      pages++;
      const ch = Array.from({ length: 100 }, () => [crypto().random(32), null] as [Uint8Array, null]);
      return [{ t: 'consensus-diff', from: m.from, to: m.to, ok: true, ch, more: true }];
    });
    const from = { digest: crypto().random(32), entries: new Array(150).fill(null) } as unknown as Consensus;
    const head = { digest: crypto().random(32), count: 150 } as unknown as ConsensusHead;
    const r = await outcome(fetchConsensusDiff(s.link, from, head));
    expect({ code: r.code, pages }).to.deep.equal({ code: 'ERR_DIRECTORY', pages: 4 });
  });

  it('a directory forgets the links it fetched from once they close', async () => {
    const pool = descriptors(5);
    const dir = new ClientDirectory();
    const sources = await Promise.all(Array.from({ length: 20 }, () => source((m) => (m.t === 'dir-get' ? [{ t: 'dir', at: 1, ds: pool, more: false }] : []))));
    for (const s of sources) await dir.refresh([s.link], Date.now);
    const held = (): number => (dir as unknown as { lastAt: Map<Link, number> }).lastAt.size;
    expect(held()).to.equal(20);
    await Promise.all(
      sources.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.link.once('link:close', () => resolve());
            s.close();
          }),
      ),
    );
    expect(held()).to.equal(0);
  });
});
