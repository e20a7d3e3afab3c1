/**
 * CONTROL messages on a link (specs/link.md §5): a message is queued whole or not at all, and a message the peer
 * starts and never finishes is neither kept for ever nor left out of the memory the relay accounts for.
 */
import { expect } from 'chai';
import { crypto } from '../../crypto/index.js';
import { IdentityKey } from '../../crypto/keys.js';
import { CellCommand } from '../../protocol/cell.js';
import { CELL_BODY_LEN } from '../../protocol/constants.js';
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
});
