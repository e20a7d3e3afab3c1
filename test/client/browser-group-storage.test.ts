/**
 * browserGroupStorage (client/storage-browser.ts): group state for a page in a Web Storage–like store. A member
 * restarted over the same store takes its groups back and sends on from its stored index; a write the browser refuses
 * (its quota) throws ERR_SYSTEM, leaves the previous record in place and makes a send fail before anything leaves. In
 * headless Chromium with localStorage: test/integration/browser-groups.test.ts.
 */
import { expect } from 'chai';
import { browserGroupStorage, memoryStore, type KeyValueStore } from '../../client/storage-browser.js';
import type { AlliumError, SystemError } from '../../protocol/errors.js';
import { groupNetwork, type GroupNode } from '../helpers/group-network.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A store that refuses writes while `full` is set, as a browser over its quota does. */
function quotaStore(): KeyValueStore & { full: boolean; items: Map<string, string> } {
  const items = new Map<string, string>();
  const s = {
    full: false,
    items,
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => {
      if (s.full) throw Object.assign(new Error('The quota has been exceeded.'), { name: 'QuotaExceededError' });
      items.set(k, v);
    },
    removeItem: (k: string) => void items.delete(k),
  };
  return s;
}

describe('browserGroupStorage: group state in a page', () => {
  it('a member restarted over the same store takes its groups back and sends on from its stored index', async () => {
    const store = memoryStore();
    const net = groupNetwork(2, (i) => ({ storage: browserGroupStorage(i === 1 ? { store, prefix: 'me' } : { store: memoryStore() }) }));
    const [a, b] = net.nodes as [GroupNode, GroupNode];
    const g = await a.groups.create('allotment', [b.address]);
    await b.groups.get(g.id)!.send(enc('one'));
    expect(store.getItem('me:groups')).to.equal(JSON.stringify([g.id]));
    expect(store.getItem(`me:group:${g.id}`)).to.be.a('string');

    net.restart(b);
    const [back] = await b.groups.load();
    expect(back!.id).to.equal(g.id);
    expect(back!.members).to.deep.equal(g.members);
    await back!.send(enc('two'));
    const got = a.got.map((m) => [dec(m.data), m.index]);
    expect(got).to.deep.equal([
      ['one', 0],
      ['two', 1],
    ]);
    expect([...a.errors, ...b.errors].map((e) => e.code)).to.deep.equal([]);
    // Another prefix on the same store sees nothing; a deleted record leaves the list.
    expect(await browserGroupStorage({ store, prefix: 'other' }).load()).to.deep.equal([]);
    await browserGroupStorage({ store, prefix: 'me' }).save(g.id, null);
    expect(store.getItem('me:groups')).to.equal('[]');
    expect(store.getItem(`me:group:${g.id}`)).to.equal(null);
  });

  it('a write over the quota throws ERR_SYSTEM, keeps the previous record, and the send fails before anything leaves', async () => {
    const store = quotaStore();
    const storage = browserGroupStorage({ store });
    expect(storage.persistent).to.equal(true);
    const net = groupNetwork(2, (i) => ({ storage: i === 0 ? storage : browserGroupStorage({ store: memoryStore() }) }));
    const [a, b] = net.nodes as [GroupNode, GroupNode];
    const g = await a.groups.create('allotment', [b.address]);
    await g.send(enc('stored'));
    const record = store.items.get(`allium:group:${g.id}`);
    expect(record).to.be.a('string');

    store.full = true;
    let error: AlliumError | undefined;
    await storage.save(g.id, new Uint8Array(10)).catch((e: AlliumError) => (error = e));
    expect(error?.code).to.equal('ERR_SYSTEM');
    expect((error as SystemError).setting).to.equal('groupStorage');
    expect((error as SystemError).errno).to.equal('QuotaExceededError');
    const before = b.inbox.length;
    let code = '';
    await g.send(enc('not stored')).catch((e: AlliumError) => (code = e.code));
    expect(code).to.equal('ERR_SYSTEM');
    expect(b.inbox.length).to.equal(before);
    expect(store.items.get(`allium:group:${g.id}`)).to.equal(record);

    store.full = false;
    await g.send(enc('after'));
    expect(b.got.map((m) => dec(m.data))).to.deep.equal(['stored', 'after']);
  });

  it('refuses a record name outside the group store’s names (ERR_CONFIG)', async () => {
    let code = '';
    await browserGroupStorage({ store: memoryStore() })
      .save('../x', new Uint8Array(1))
      .catch((e: AlliumError) => (code = e.code));
    expect(code).to.equal('ERR_CONFIG');
  });
});
