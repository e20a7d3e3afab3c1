/**
 * CONTROL messages on a link (specs/link.md §5): a message is queued whole or not at all, and a message the peer
 * starts and never finishes is neither kept for ever nor left out of the memory the relay accounts for.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { CellCommand, CONTROL_DATA_MAX, controlBody } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
import { encodeControl } from '../../protocol/control.js';
import { isAlliumError } from '../../protocol/errors.js';
import { closed, linkPair, nextControl } from '../helpers/overlay.js';

/** `n` ascending [identity, pub] pairs: an announcement of about 44·n bytes. */
const entries = (n: number): [Uint8Array, number][] =>
  Array.from({ length: n }, (_, i) => {
    const id = new Uint8Array(32);
    new DataView(id.buffer).setUint32(28, i + 1);
    return [id, 1_780_000_000_000];
  });

describe('link CONTROL messages', () => {
  it('a message that does not fit the send queue is refused whole: nothing of it is queued and the peer keeps the link', async () => {
    const relay = IdentityKey.fromSeed(crypto().random(32));
    const { a, b } = await linkPair({ responder: relay, initiatorOptions: { maxQueueCells: 10 } });
    for (let i = 1; i <= 5; i++) a.sendCell(i, CellCommand.RELAY, new Uint8Array(CELL_BODY_LEN));
    let code = 'sent';
    try {
      a.sendControl({ t: 'gossip-announce', e: entries(200) }); // 8 825 bytes: 9 fragments, 4 more than fit
    } catch (e) {
      code = isAlliumError(e) ? e.code : String(e);
    }
    const queued = a.queuedCells;
    // Once the queue is flushed the next message goes out whole. Before, it followed the first fragments of the
    // refused one, and the peer closed the link (ERR_CONTROL_FRAGMENT).
    await new Promise((r) => setImmediate(r));
    a.sendControl({ t: 'dir-get', since: 0, after: null });
    const outcome = await Promise.race([nextControl(b, 'dir-get').then(() => 'dir-get'), closed(b).then((c) => `closed ${c}`)]);
    expect({ code, queued, outcome, open: b.isOpen }).to.deep.equal({ code: 'ERR_LIMIT', queued: 5, outcome: 'dir-get', open: true });
    a.close();
  });

  it('a message begun and never finished closes the link after CONTROL_REASSEMBLY_TIMEOUT (60 s), and counts in heldBytes meanwhile', async () => {
    const relay = IdentityKey.fromSeed(crypto().random(32));
    let t = 1_750_000_000_000;
    // Ticks every 50 ms of real time; the clock moves only when the test moves it.
    const { a, b } = await linkPair({ responder: relay, options: { now: () => t, timers: { keepaliveMs: 200, idleTimeoutMs: 3_600_000 } } });
    // 100 full fragments of a message that never ends, then a circuit cell: when it arrives, they have.
    for (let i = 0; i < 100; i++) a.sendCell(0, CellCommand.CONTROL, controlBody({ first: i === 0, last: false, data: new Uint8Array(CONTROL_DATA_MAX) }));
    const cell = new Promise((r) => b.once('link:cell', r));
    a.sendCell(1, CellCommand.RELAY, new Uint8Array(CELL_BODY_LEN));
    await cell;
    const held = (b as unknown as { heldBytes?: number }).heldBytes ?? 0;
    t += 60_000;
    // (2 s of real time is forty ticks: only a bound for the old code, which never closes.)
    const code = await Promise.race([closed(b), new Promise<string>((r) => setTimeout(() => r('still open after 2 s'), 2_000).unref())]);
    expect({ held, code }).to.deep.equal({ held: 100 * CONTROL_DATA_MAX, code: 'ERR_TIMEOUT' });
    a.close();
  });

  it('a CONTROL message arrives with its encoded length, the length sendControl returned (what the gossip byte counts use, without encoding it again)', async () => {
    const relay = IdentityKey.fromSeed(crypto().random(32));
    const { a, b } = await linkPair({ responder: relay });
    const m = { t: 'gossip-announce', e: entries(30) } as const; // 1 343 bytes: two fragments
    const got = new Promise<[string, number]>((r) => b.once('link:control', (x, bytes) => r([x.t, bytes])));
    const sent = a.sendControl(m);
    expect({ sent, got: await got }).to.deep.equal({ sent: encodeControl(m).length, got: ['gossip-announce', encodeControl(m).length] });
    a.close();
  });
});
