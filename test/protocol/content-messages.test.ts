/**
 * FETCHED replies (specs/content.md §8): the replies encoded once (a block's `found`, a miss) are the bytes the CBOR
 * encoder makes, and decode to what the schema's decoder gives; a reply that differs in any byte takes the decoder.
 */
import { expect } from 'chai';
import { decodeCbor, encodeCbor } from '../../protocol/cbor.js';
import { BLOCK_LEN } from '../../protocol/chk.js';
import { decodeFetched, encodeFetched, type FetchedReply } from '../../protocol/content-messages.js';

describe('content messages: FETCHED', () => {
  it('a block found and a miss encode as the CBOR encoder does and decode as the decoder does; others unchanged', () => {
    const replies: FetchedReply[] = [
      { s: 'found', n: BLOCK_LEN },
      { s: 'missing', n: 0 },
      { s: 'found', n: BLOCK_LEN - 1 },
      { s: 'found', n: 0 },
      { s: 'unreachable', n: 0 },
    ];
    for (const r of replies) {
      const bytes = encodeFetched(r);
      expect(bytes).to.deep.equal(encodeCbor(r));
      expect(decodeFetched(bytes)).to.deep.equal(r);
      expect(decodeCbor(bytes, 256)).to.deep.equal(r);
      // Each call has bytes of its own: changing one reply's bytes changes no other.
      bytes[0] = 0;
      expect(encodeFetched(r)).to.deep.equal(encodeCbor(r));
    }
    // A reply one byte away from a block's `found` is the decoder's: refused when it is not a FETCHED.
    const found = encodeFetched({ s: 'found', n: BLOCK_LEN });
    expect(() => decodeFetched(Uint8Array.of(...found, 0))).to.throw();
    expect(() => decodeFetched(found.subarray(0, found.length - 1))).to.throw();
  });
});
