/**
 * A browser page in a group with Node messengers (specs/messaging.md §13; docs/developer-guide.md, "Groups"): a
 * messenger made in headless Chromium from the bundle (dist/browser/allium.js, libsodium in WebAssembly, no group
 * storage) and two Node messengers, over relay processes. A Node member creates the group with the page and the
 * other Node member; the page receives each Node member's message exactly once, and its own message reaches both
 * Node members exactly once. Bytes are compared exactly (every byte value).
 *
 * Every wait is for an event (the page's `group:*` events recorded in `window.__groups`, the Node messengers'
 * events); no step waits out a timeout: acknowledgement timeouts are far longer than the test.
 */
import { expect } from 'chai';
import type { Page } from 'puppeteer-core';
import { AlliumClient } from '../../client/client.js';
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

  function messenger(client: AlliumClient): Messenger {
    const m = new Messenger(client, undefined, { offline: { collect: false }, ackTimeoutMs: ACK_TIMEOUT_MS });
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
      const c = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, enforceDistinctSubnets: false, poolSize: 0 });
      await c.start({ signal: AbortSignal.timeout(WAIT_MS) });
      clients.push(c);
    }
    admin = messenger(clients[0]!);
    other = messenger(clients[1]!);
    server = await serveStatic(['dist/browser'], { '/group.html': PAGE });
    chromium = await launchChromium();
    page = await chromium.newPage();
    await page.goto(`${server.origin}/group.html`);
    // The page's messenger: the bundle's own exports, no group storage (state lives as long as the page).
    const started = Promise.all([
      admin.startListening({ signal: AbortSignal.timeout(WAIT_MS) }),
      other.startListening({ signal: AbortSignal.timeout(WAIT_MS) }),
      page.evaluate(`(async () => {
        const a = await import('/dist/browser/allium.js');
        await a.initCrypto();
        const client = new a.AlliumClient({ bootstrap: [${JSON.stringify(net.bootstrap)}], socketFactory: a.browserSocketFactory, enforceDistinctSubnets: false, poolSize: 0 });
        await client.start({ signal: AbortSignal.timeout(${WAIT_MS}) });
        const m = new a.Messenger(client, a.createIdentity(), { offline: { collect: false }, ackTimeoutMs: ${ACK_TIMEOUT_MS} });
        const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
        const state = { messages: [], added: [], errors: [] };
        m.on('group:message', (x) => state.messages.push({ group: x.group, from: x.from, hex: hex(x.data), generation: x.generation, index: x.index }));
        m.on('group:member-added', (c) => state.added.push({ group: c.group, member: c.member, by: c.by }));
        m.on('endpoint:error', (e) => state.errors.push(String(e && e.code)));
        window.__groups = state;
        window.__messenger = m;
        window.__client = client;
        window.__hex = hex;
        await m.startListening({ signal: AbortSignal.timeout(${WAIT_MS}) });
        return m.address;
      })()`),
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

  it("the page takes part: it receives each Node member's message once and both receive its message once", async () => {
    const t0 = Date.now();
    const group = await admin.createGroup('allotment', [pageAddress, other.address], { signal: AbortSignal.timeout(WAIT_MS) });
    const id = group.id;
    await waitFor(() => other.group(id) !== undefined, WAIT_MS, 'the other Node member joined');
    await waitInPage(`window.__messenger.group(${JSON.stringify(id)}) !== undefined`, 'the page to join');
    const joined = (await page.evaluate(`(() => {
      const g = window.__messenger.group(${JSON.stringify(id)});
      return { name: g.name, members: [...g.members].sort(), added: window.__groups.added };
    })()`)) as { name: string; members: string[]; added: Array<{ group: string; member: string; by: string }> };
    expect(joined.name).to.equal('allotment');
    expect(joined.members).to.deep.equal([admin.address, other.address, pageAddress].sort());
    expect(joined.added).to.deep.include({ group: id, member: pageAddress, by: admin.address });

    // A Node member (not the admin) sends; the page and the admin receive it.
    const fromOther = bytes(1);
    const r1 = await other.group(id)!.send(fromOther, { signal: AbortSignal.timeout(WAIT_MS) });
    expect(r1.failed.map((f) => f.error.code)).to.deep.equal([]);
    expect([...r1.delivered].sort()).to.deep.equal([admin.address, pageAddress].sort());
    await waitInPage(`window.__groups.messages.length >= 1`, "the other member's message on the page");

    // The page sends; both Node members receive it.
    const fromPage = bytes(2);
    const r2 = (await page.evaluate(`(async () => {
      const r = await window.__messenger.group(${JSON.stringify(id)}).send(Uint8Array.from(${JSON.stringify([...fromPage])}), { signal: AbortSignal.timeout(${WAIT_MS}) });
      return { delivered: [...r.delivered].sort(), stored: [...r.storedOffline], failed: r.failed.map((f) => f.error.code) };
    })()`)) as { delivered: string[]; stored: string[]; failed: string[] };
    expect(r2).to.deep.equal({ delivered: [admin.address, other.address].sort(), stored: [], failed: [] });
    await waitFor(
      () => [admin, other].every((m) => gotAt.get(m.address)!.some((x) => x.from === pageAddress)),
      WAIT_MS,
      () => `the page's message at both Node members\n${chromium.log()}`,
    );

    // The admin sends last; once the page has it, every earlier message has had its chance to arrive twice.
    const fromAdmin = bytes(3);
    const r3 = await group.send(fromAdmin, { signal: AbortSignal.timeout(WAIT_MS) });
    expect(r3.failed.map((f) => f.error.code)).to.deep.equal([]);
    await waitInPage(`window.__groups.messages.length >= 2`, "the admin's message on the page");
    await waitFor(() => gotAt.get(other.address)!.some((x) => x.from === admin.address), WAIT_MS, "the admin's message at the other member");

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
  });
});
