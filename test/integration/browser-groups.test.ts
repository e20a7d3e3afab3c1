/**
 * A browser page in a version 2 group with Node messengers (specs/messaging.md §13.9; docs/developer-guide.md,
 * "Groups"): a messenger made in headless Chromium from the bundle (dist/browser/allium.js, libsodium in WebAssembly,
 * its group state — roster, sender keys and the epochs of the group inbox — in localStorage through
 * browserGroupStorage()) and two Node messengers without group storage, over relay processes. A Node member creates
 * the group (`delivery: 'inbox'`) with the page and the other Node member: the page gets the roster and the epoch
 * pairwise, and every message is one deposit in the group inbox the relays' content store holds. The page receives
 * each Node member's message exactly once, and its own deposit reaches both Node members exactly once. The page then
 * reloads with the same identity: its group and the epoch it holds come back from localStorage, and it reads and
 * deposits again, its chain going on from the stored index. Bytes are compared exactly (every byte value). Version 1
 * (pairwise) groups are covered with Node messengers in messaging-groups.test.ts.
 *
 * Every wait is for an event (the page's `group:*` events recorded in `window.__groups`, the Node messengers'
 * events), a member reading the inbox (checkGroups) while the test waits for a message to reach it, rather than every
 * few seconds on a timer, which on two loaded cores costs more than the test; no step waits out a timeout: acknowledgement
 * timeouts are far longer than the test.
 */
import { expect } from 'chai';
import type { Page } from 'puppeteer-core';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, type GroupIncoming } from '../../client/messaging/node.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { needProgram } from '../helpers/programs.js';
import { browserBundle, launchChromium, serveStatic, type ChromiumSession, type StaticServer } from '../helpers/browser.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** Generous bound for a failure to show: relay processes, two Node messengers and Chromium share two slow cores. */
const WAIT_MS = 240_000;
/** No conversation is given up for a missing acknowledgement during the test: a stall shows as a stall. */
const ACK_TIMEOUT_MS = 900_000;
/** Listening reads the group inbox once at its start; after that the test makes each member read when it waits. */
const POLL_MS = 3_600_000;
/** Every byte value, and a marker so each message is told apart. */
const bytes = (mark: number): Uint8Array => new Uint8Array(300).map((_, i) => (i * 7 + mark) & 0xff);

/** An empty page; the test drives the bundle through `page.evaluate`. */
const PAGE = '<!doctype html><meta charset="utf-8"><title>allium group</title><body>group member</body>';

describe('browser bundle in headless Chromium: a page in a group with Node messengers (relay processes)', function () {
  this.timeout(600_000);
  let net: TestNetwork;
  const clients: AlliumClient[] = [];
  let admin: Messenger;
  let other: Messenger;
  let server: StaticServer;
  let chromium: ChromiumSession;
  let page: Page;
  let pageAddress: string;
  const gotAt = new Map<string, GroupIncoming[]>();

  /** What the page's messenger recorded, for failure messages. */
  async function pageState(): Promise<string> {
    const state = await page.evaluate(`JSON.stringify(window.__groups ?? null)`).catch((e: unknown) => String(e));
    return `page: ${String(state)}\n${chromium.log()}`;
  }

  /** Waits for a page condition (an expression evaluated in the page), with the page's state if it times out. */
  async function waitInPage(fn: string, what: string): Promise<void> {
    try {
      await page.waitForFunction(fn, { timeout: WAIT_MS, polling: 100 });
    } catch (e) {
      throw new Error(`timed out waiting for ${what}\n${await pageState()}`, { cause: e });
    }
  }

  /**
   * What the page runs: the bundle's own exports, a client, and a messenger (the identity from `seed`, hex, or a new
   * one) keeping its groups in localStorage through browserGroupStorage(); its group events go to `window.__groups`.
   * Resolves with the messenger's address once it listens.
   */
  const startInPage = (seed: string | null): string => `(async () => {
    const a = await import('/dist/browser/allium.js');
    await a.initCrypto();
    const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    const seed = ${JSON.stringify(seed)};
    const identity = seed ? a.createIdentity(Uint8Array.from(seed.match(/../g), (x) => parseInt(x, 16))) : a.createIdentity();
    const client = new a.AlliumClient({ bootstrap: [${JSON.stringify(net.bootstrap)}], socketFactory: a.browserSocketFactory, ...${JSON.stringify(SINGLE_HOST_CLIENT)}, poolSize: 0 });
    await client.start({ signal: AbortSignal.timeout(${WAIT_MS}) });
    const storage = a.browserGroupStorage({ prefix: 'group-test' });
    const m = new a.Messenger(client, identity, { offline: { pollMs: 3600000 }, groupStorage: storage, groupInbox: { pollMs: ${POLL_MS} }, ackTimeoutMs: ${ACK_TIMEOUT_MS} });
    const state = { messages: [], added: [], errors: [], persistent: storage.persistent };
    m.on('group:message', (x) => state.messages.push({ group: x.group, from: x.from, hex: hex(x.data), generation: x.generation, index: x.index }));
    m.on('group:member-added', (c) => state.added.push({ group: c.group, member: c.member, by: c.by }));
    m.on('endpoint:error', (e) => state.errors.push(String(e && e.code)));
    window.__groups = state;
    window.__messenger = m;
    window.__client = client;
    window.__seed = hex(identity.secretKey.subarray(0, 32));
    state.loaded = (await m.loadGroups()).map((g) => ({ id: g.id, members: [...g.members].sort(), active: g.isActive, delivery: g.delivery, epoch: g.epoch }));
    await m.startListening({ signal: AbortSignal.timeout(${WAIT_MS}) });
    return m.address;
  })()`;

  /** Has the page read its group inboxes until `cond` (an expression evaluated in the page) holds. */
  async function readInPage(cond: string, what: string): Promise<void> {
    try {
      await waitFor(
        async () => {
          await page.evaluate(`window.__messenger.checkGroups({ signal: AbortSignal.timeout(${WAIT_MS}) })`);
          return (await page.evaluate(cond)) === true;
        },
        WAIT_MS,
        what,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await pageState()}`, { cause: e });
    }
  }

  /** Has the Node members `ms` read their group inboxes until `cond` holds. */
  async function readAt(ms: Messenger[], cond: () => boolean, what: () => string): Promise<void> {
    await waitFor(
      async () => {
        await Promise.all(ms.map((m) => m.checkGroups({ signal: AbortSignal.timeout(WAIT_MS) })));
        return cond();
      },
      WAIT_MS,
      what,
    );
  }

  function messenger(client: AlliumClient): Messenger {
    const m = new Messenger(client, undefined, { offline: { collect: false }, groupInbox: { pollMs: POLL_MS }, ackTimeoutMs: ACK_TIMEOUT_MS });
    gotAt.set(m.address, []);
    m.on('group:message', (x) => gotAt.get(m.address)!.push(x));
    return m;
  }

  before(async function () {
    this.timeout(600_000);
    needProgram(this, 'chromium');
    await browserBundle();
    net = await startNetwork(6);
    for (let i = 0; i < 2; i++) {
      const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
      await c.start({ signal: AbortSignal.timeout(WAIT_MS) });
      clients.push(c);
    }
    admin = messenger(clients[0]!);
    other = messenger(clients[1]!);
    server = await serveStatic(['dist/browser'], { '/group.html': PAGE });
    chromium = await launchChromium();
    page = await chromium.newPage();
    await page.goto(`${server.origin}/group.html`);
    const started = Promise.all([
      admin.startListening({ signal: AbortSignal.timeout(WAIT_MS) }),
      other.startListening({ signal: AbortSignal.timeout(WAIT_MS) }),
      page.evaluate(startInPage(null)),
    ]);
    pageAddress = (await started)[2] as string;
    expect(pageAddress).to.match(/^[a-z2-7]{56}\.allium$/);
  });

  after(async () => {
    try {
      await page?.evaluate(`(async () => { window.__messenger?.close(); await window.__client?.stop(); })()`).catch(() => undefined);
      await chromium?.close();
      await server?.close();
      admin?.close();
      other?.close();
      for (const c of clients) await c.stop();
    } finally {
      await net?.stop();
    }
  });

  let groupId = '';
  /** The Node messengers' messages from the page before its reload. */
  const fromPageBefore = new Map<string, number>();

  it("the page takes part: it receives each Node member's message once and both receive its message once", async () => {
    const t0 = Date.now();
    const group = await admin.createGroup('allotment', [pageAddress, other.address], { signal: AbortSignal.timeout(WAIT_MS), delivery: 'inbox' });
    const id = group.id;
    groupId = id;
    expect(group.delivery).to.equal('inbox');
    await waitFor(() => other.group(id)?.epoch === 0, WAIT_MS, 'the other Node member took the epoch');
    await waitInPage(`window.__messenger.group(${JSON.stringify(id)})?.epoch === 0`, 'the page to take the epoch');
    const joined = (await page.evaluate(`(() => {
      const g = window.__messenger.group(${JSON.stringify(id)});
      return { name: g.name, delivery: g.delivery, members: [...g.members].sort(), added: window.__groups.added };
    })()`)) as { name: string; delivery: string; members: string[]; added: Array<{ group: string; member: string; by: string }> };
    expect(joined.name).to.equal('allotment');
    expect(joined.delivery).to.equal('inbox');
    expect(joined.members).to.deep.equal([admin.address, other.address, pageAddress].sort());
    expect(joined.added).to.deep.include({ group: id, member: pageAddress, by: admin.address });

    // A Node member (not the admin) deposits; the page and the admin read it from the group inbox.
    const fromOther = bytes(1);
    const r1 = await other.group(id)!.send(fromOther, { signal: AbortSignal.timeout(WAIT_MS) });
    expect(r1.failed.map((f) => f.error.code)).to.deep.equal([]);
    expect(r1.inbox, 'deposited in the group inbox').to.not.equal(undefined);
    await readInPage(`window.__groups.messages.length >= 1`, "the other member's message on the page");

    // The page deposits; both Node members read it.
    const fromPage = bytes(2);
    const r2 = (await page.evaluate(`(async () => {
      const r = await window.__messenger.group(${JSON.stringify(id)}).send(Uint8Array.from(${JSON.stringify([...fromPage])}), { signal: AbortSignal.timeout(${WAIT_MS}) });
      return { deposited: r.inbox !== undefined, index: r.index, failed: r.failed.map((f) => f.error.code) };
    })()`)) as { deposited: boolean; index: number; failed: string[] };
    expect(r2).to.deep.equal({ deposited: true, index: 0, failed: [] });
    await readAt(
      [admin, other],
      () => [admin, other].every((m) => gotAt.get(m.address)!.some((x) => x.from === pageAddress)),
      () => `the page's message at both Node members\n${chromium.log()}`,
    );

    // The admin sends last; once the page has it, every earlier message has had its chance to arrive twice.
    const fromAdmin = bytes(3);
    const r3 = await group.send(fromAdmin, { signal: AbortSignal.timeout(WAIT_MS) });
    expect(r3.failed.map((f) => f.error.code)).to.deep.equal([]);
    await readInPage(`window.__groups.messages.length >= 2`, "the admin's message on the page");
    await readAt(
      [other],
      () => gotAt.get(other.address)!.some((x) => x.from === admin.address),
      () => "the admin's message at the other member",
    );
    // One more pass by every member at once: nothing comes twice.
    await Promise.all([admin.checkGroups(), other.checkGroups(), page.evaluate(`window.__messenger.checkGroups()`)]);

    const atPage = (await page.evaluate(`window.__groups.messages`)) as Array<{ group: string; from: string; hex: string }>;
    expect(atPage.map((x) => [x.group, x.from, x.hex])).to.have.deep.members([
      [id, other.address, hex(fromOther)],
      [id, admin.address, hex(fromAdmin)],
    ]);
    expect(atPage).to.have.length(2);
    const seen = (m: Messenger): string[][] => gotAt.get(m.address)!.map((x) => [x.group, x.from, hex(x.data)]);
    expect(seen(admin)).to.have.deep.members([
      [id, other.address, hex(fromOther)],
      [id, pageAddress, hex(fromPage)],
    ]);
    expect(seen(admin)).to.have.length(2);
    expect(seen(other)).to.have.deep.members([
      [id, pageAddress, hex(fromPage)],
      [id, admin.address, hex(fromAdmin)],
    ]);
    expect(seen(other)).to.have.length(2);
    expect(((await page.evaluate(`window.__groups.errors`)) as string[]).join(',')).to.equal('');
    expect(chromium.log()).not.to.include('[pageerror]');
    console.log(`      group formed and 3 messages delivered to all in ${Date.now() - t0} ms`);
    for (const m of [admin, other]) fromPageBefore.set(m.address, gotAt.get(m.address)!.filter((x) => x.from === pageAddress).length);
  });

  it('the page reloads: its group comes back from localStorage, and it receives and sends again, nothing twice', async () => {
    const t0 = Date.now();
    const seed = (await page.evaluate(`window.__seed`)) as string;
    expect(await page.evaluate(`window.__groups.persistent`)).to.equal(true);
    await page.evaluate(`(async () => { window.__messenger.close(); await window.__client.stop(); })()`);
    await page.reload();
    expect(await page.evaluate(startInPage(seed))).to.equal(pageAddress);
    const loaded = (await page.evaluate(`window.__groups.loaded`)) as Array<{
      id: string;
      members: string[];
      active: boolean;
      delivery: string;
      epoch: number;
    }>;
    expect(loaded).to.deep.equal([{ id: groupId, members: [admin.address, other.address, pageAddress].sort(), active: true, delivery: 'inbox', epoch: 0 }]);

    // A Node member's next deposit reaches the reloaded page, which reads on from the inbox position it stored:
    // nothing it read before the reload comes again.
    const data = bytes(4);
    const report = await other.group(groupId)!.send(data, { signal: AbortSignal.timeout(WAIT_MS) });
    expect(report.failed.map((f) => f.error.code)).to.deep.equal([]);
    await readInPage(`window.__groups.messages.length >= 1`, 'the message on the reloaded page');

    // The page deposits under its stored chain: the Node members take it as the next index, not a repeat.
    const again = bytes(5);
    const sent = (await page.evaluate(`(async () => {
      const r = await window.__messenger.group(${JSON.stringify(groupId)}).send(Uint8Array.from(${JSON.stringify([...again])}), { signal: AbortSignal.timeout(${WAIT_MS}) });
      return { failed: r.failed.map((f) => f.error.code), index: r.index };
    })()`)) as { failed: string[]; index: number };
    expect(sent).to.deep.equal({ failed: [], index: 1 });
    await readAt(
      [admin, other],
      () => [admin, other].every((m) => gotAt.get(m.address)!.filter((x) => x.from === pageAddress).length > fromPageBefore.get(m.address)!),
      () => `the reloaded page's message at both Node members\n${chromium.log()}`,
    );

    await Promise.all([admin.checkGroups(), other.checkGroups(), page.evaluate(`window.__messenger.checkGroups()`)]);
    const atPage = (await page.evaluate(`window.__groups.messages`)) as Array<{ group: string; from: string; hex: string }>;
    expect(atPage.map((x) => [x.group, x.from, x.hex])).to.deep.equal([[groupId, other.address, hex(data)]]);
    for (const m of [admin, other]) {
      const fromPage = gotAt.get(m.address)!.filter((x) => x.from === pageAddress);
      expect(fromPage.map((x) => hex(x.data))).to.deep.equal([hex(bytes(2)), hex(again)]);
      const ids = gotAt.get(m.address)!.map((x) => `${x.from} ${x.generation}:${x.index}`);
      expect(new Set(ids).size, `${m.address} emitted a message twice`).to.equal(ids.length);
    }
    expect(chromium.log()).not.to.include('[pageerror]');
    console.log(`      page reloaded, group back, a message each way in ${Date.now() - t0} ms`);
  });
});
