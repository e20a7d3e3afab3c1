/**
 * protocol/request-queue.ts: at most `limit` requests run at once, a lower rank first and FIFO within a rank (a reader's
 * earlier segment before the one it reads ahead, specs/content.md §3.4); close() refuses what waits.
 */
import { expect } from 'chai';
import { RequestQueue } from '../../protocol/request-queue.js';

/** A job that records its start and finishes when `finish(name)` is called. */
function jobs(): { started: string[]; job: (name: string) => () => Promise<string>; finish: (name: string) => void } {
  const started: string[] = [];
  const pending = new Map<string, () => void>();
  return {
    started,
    job: (name) => () => {
      started.push(name);
      return new Promise<string>((resolve) => pending.set(name, () => resolve(name)));
    },
    finish: (name) => pending.get(name)!(),
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('protocol/request-queue', () => {
  it('runs at most `limit` at once, the lowest rank first, FIFO within a rank', async () => {
    const q = new RequestQueue(2);
    const j = jobs();
    const done = [q.run(1, j.job('a')), q.run(1, j.job('b')), q.run(1, j.job('c')), q.run(0, j.job('d')), q.run(1, j.job('e')), q.run(0, j.job('f'))];
    await turn();
    expect(j.started).to.deep.equal(['a', 'b']);
    j.finish('a');
    await turn();
    expect(j.started).to.deep.equal(['a', 'b', 'd']);
    for (const n of ['b', 'd', 'f', 'c']) {
      j.finish(n);
      await turn();
    }
    j.finish('e');
    expect(await Promise.all(done)).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(j.started).to.deep.equal(['a', 'b', 'd', 'f', 'c', 'e']);
  });

  it('close() refuses what waits and what comes later (ERR_ABORTED); what runs finishes', async () => {
    const q = new RequestQueue(1);
    const j = jobs();
    const running = q.run(0, j.job('a'));
    const waiting = q.run(0, j.job('b')).catch((e: { code?: string }) => e.code);
    q.close();
    expect(await waiting).to.equal('ERR_ABORTED');
    expect(await q.run(0, j.job('c')).catch((e: { code?: string }) => e.code)).to.equal('ERR_ABORTED');
    j.finish('a');
    expect(await running).to.equal('a');
    expect(j.started).to.deep.equal(['a']);
  });
});
