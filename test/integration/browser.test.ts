/**
 * The browser build end to end: the example page (examples/browser/) in headless Chromium joins a network of relay
 * processes over WebSocket with the bundle (dist/browser/allium.js, libsodium in WebAssembly), sends a message to a
 * Node client's address and shows the reply; a second Node identity then reaches the page's own published address.
 * Bytes are compared exactly both ways (the page shows each message's bytes in hex). Through the page's group form,
 * the page then creates a version 2 group with the Node client, and one group message goes each way.
 */
import { expect } from 'chai';
import type { Page } from 'puppeteer-core';
import { AlliumClient, SINGLE_HOST_CLIENT } from '../../client/client.js';
import { Messenger, type GroupIncoming, type IncomingMessage } from '../../client/messaging/node.js';
import { nodeSocketFactory } from '../../net/ws-node.js';
import { EndReason } from '../../protocol/stream-messages.js';
import { needProgram } from '../helpers/programs.js';
import { browserBundle, launchChromium, serveStatic, type ChromiumSession, type StaticServer } from '../helpers/browser.js';
import { startNetwork, waitFor, type TestNetwork } from '../helpers/network.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** Generous: relay processes, a Node client and Chromium share two slow cores. */
const WAIT_MS = 240_000;

describe('browser bundle in headless Chromium ↔ Node client (relay processes)', function () {
  this.timeout(600_000);
  let net: TestNetwork;
  let client: AlliumClient;
  let node: Messenger;
  let server: StaticServer;
  let chromium: ChromiumSession;
  let page: Page;
  let pageAddress: string;
  const atNode: IncomingMessage[] = [];
  const groupAtNode: GroupIncoming[] = [];

  /** The page's state, for failure messages. */
  async function pageState(): Promise<string> {
    const status = await page.$eval('#status', (e) => `${(e as HTMLElement).dataset['state']}: ${e.textContent}`).catch(() => '?');
    const log = await page
      .$$eval('.log li', (ls) => ls.map((l) => `${l.className} ${(l as HTMLElement).dataset['state'] ?? ''} ${l.textContent}`))
      .catch(() => []);
    return `status ${status}\nlog:\n${log.join('\n')}\n${chromium.log()}`;
  }

  /** Waits for a page condition (a function body evaluated in the page), with the page's state if it times out. */
  async function waitInPage(fn: string, what: string): Promise<void> {
    try {
      await page.waitForFunction(fn, { timeout: WAIT_MS, polling: 250 });
    } catch (e) {
      throw new Error(`timed out waiting for ${what}\n${await pageState()}`, { cause: e });
    }
  }

  before(async function () {
    this.timeout(600_000);
    needProgram(this, 'chromium');
    await browserBundle();
    net = await startNetwork(6);
    client = new AlliumClient({ bootstrap: [net.bootstrap], socketFactory: nodeSocketFactory, ...SINGLE_HOST_CLIENT, poolSize: 0 });
    await client.start({ signal: AbortSignal.timeout(WAIT_MS) });
    node = new Messenger(client);
    node.on('message:received', (m) => atNode.push(m));
    node.on('group:message', (m) => groupAtNode.push(m));
    await node.startListening({ signal: AbortSignal.timeout(WAIT_MS) });
    server = await serveStatic(['examples/browser', 'dist/browser']);
    chromium = await launchChromium();
    page = await chromium.newPage();
    const query = new URLSearchParams([
      ['bootstrap', net.bootstrap],
      ['testnet', '1'],
    ]);
    await page.goto(`${server.origin}/examples/browser/index.html?${query}`);
    // Lines from the address only fill the form (whoever wrote the link chose the network): no connection until
    // the user presses Connect.
    expect(await page.$eval('#bootstrap', (e) => (e as HTMLTextAreaElement).value)).to.equal(net.bootstrap);
    expect(await page.$eval('#status', (e) => e.textContent)).to.match(/come from the link that opened this page/);
    expect(await page.$eval('#address', (e) => e.textContent)).to.equal('');
    await page.click('#connect');
    await waitInPage(`/^[a-z2-7]{56}\\.allium$/.test(document.getElementById('address').textContent)`, "the page's address");
    pageAddress = (await page.$eval('#address', (e) => e.textContent))!;
  });

  after(async () => {
    try {
      await chromium?.close();
      await server?.close();
      node?.close();
      await client?.stop();
    } finally {
      await net?.stop();
    }
  });

  it('the page sends to the Node client and shows its reply, byte for byte', async () => {
    const text = `hello from Chromium — ünïcödé ✓ ${Date.now()}`;
    await page.type('#to', node.address);
    await page.$eval('#text', (e, t) => ((e as HTMLTextAreaElement).value = t), text);
    await page.click('#send');

    try {
      await waitFor(() => atNode.length > 0, WAIT_MS, 'the message at the Node client');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await pageState()}`);
    }
    expect(atNode).to.have.length(1);
    expect(atNode[0]!.from).to.equal(pageAddress);
    expect(hex(atNode[0]!.data)).to.equal(hex(new TextEncoder().encode(text)));
    await waitInPage(`document.querySelector('#log li.out')?.dataset.state === 'sent'`, 'the page to report the message sent');

    // Every byte value, not only text: the page shows what it received in hex.
    const reply = new Uint8Array(300).map((_, i) => (i * 7 + 3) & 0xff);
    await node.send(atNode[0]!.from, reply, { signal: AbortSignal.timeout(WAIT_MS) });
    await waitInPage(`document.querySelector('#log li.in') !== null`, 'the reply on the page');
    const shown = await page.$$eval('#log li.in', (ls) => ls.map((l) => ({ hex: (l as HTMLElement).dataset['hex'], text: l.textContent })));
    expect(shown).to.have.length(1);
    expect(shown[0]!.hex).to.equal(hex(reply));
    expect(shown[0]!.text).to.include(`from ${node.address}`);
  });

  it("a new Node identity reaches the page's own address (the page listens and published it)", async () => {
    await waitInPage(`document.getElementById('status').dataset.state === 'listening'`, 'the page to publish its address');
    const stranger = new Messenger(client);
    try {
      const data = new TextEncoder().encode(`to the page ${Date.now()}`);
      await stranger.send(pageAddress, data, { signal: AbortSignal.timeout(WAIT_MS) });
      await waitInPage(`document.querySelectorAll('#log li.in').length >= 2`, "the stranger's message on the page");
      const last = await page.$$eval('#log li.in', (ls) => ({ hex: (ls[ls.length - 1] as HTMLElement).dataset['hex'], text: ls[ls.length - 1]!.textContent }));
      expect(last.hex).to.equal(hex(data));
      expect(last.text).to.include(`from ${stranger.address}`);
    } finally {
      stranger.close();
    }
  });

  it('the page creates a group with the Node client through its form; one group message goes each way, once', async () => {
    await page.$eval('#group-name', (e) => ((e as HTMLInputElement).value = 'allotment'));
    await page.type('#group-members', node.address);
    await page.click('#group-create');
    await waitInPage(`document.getElementById('group-select').value !== ''`, 'the new group in the list');
    const id = await page.$eval('#group-select', (e) => (e as HTMLSelectElement).value);
    await waitFor(() => node.group(id)?.epoch === 0, WAIT_MS, 'the Node client took the group and its epoch');
    expect(node.group(id)!.delivery).to.equal('inbox');
    expect([...node.group(id)!.members].sort()).to.deep.equal([node.address, pageAddress].sort());
    expect(node.group(id)!.admins).to.deep.equal([pageAddress]);

    // The Node client writes to the group; the page shows it with its sender, byte for byte.
    const fromNode = new Uint8Array(300).map((_, i) => (i * 11 + 5) & 0xff);
    await node.group(id)!.send(fromNode, { signal: AbortSignal.timeout(WAIT_MS) });
    await waitInPage(`document.querySelector('#group-log li.in') !== null`, 'the group message on the page');
    // The page writes to the group through its form; the Node client gets it from the page.
    const text = `to the group — ✓ ${Date.now()}`;
    await page.$eval('#group-text', (e, t) => ((e as HTMLTextAreaElement).value = t), text);
    await page.click('#group-send');
    try {
      // The Node client reads the group's inbox while the test waits (the page reads its own every 5 s).
      const read = async (): Promise<boolean> => (await node.checkGroups({ signal: AbortSignal.timeout(WAIT_MS) })) >= 0 && groupAtNode.length > 0;
      await waitFor(read, WAIT_MS, 'the group message at the Node client');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await pageState()}`);
    }
    await waitInPage(`document.querySelector('#group-log li.out')?.dataset.state === 'sent'`, 'the page to report the group message sent');

    await node.checkGroups({ signal: AbortSignal.timeout(WAIT_MS) });
    expect(groupAtNode.map((m) => [m.group, m.from, hex(m.data)])).to.deep.equal([[id, pageAddress, hex(new TextEncoder().encode(text))]]);
    const shown = await page.$$eval('#group-log li.in', (ls) =>
      ls.map((l) => {
        const d = (l as HTMLElement).dataset;
        return { group: d['group'], from: d['from'], hex: d['hex'], text: l.textContent };
      }),
    );
    expect(shown.map((s) => [s.group, s.from, s.hex])).to.deep.equal([[id, node.address, hex(fromNode)]]);
    expect(shown[0]!.text).to.include(`allotment · from ${node.address}`);
    expect(await page.$$eval('#group-log li.error', (ls) => ls.length)).to.equal(0);
  });

  it('a hidden TCP service configured in a page refuses connections cleanly (no node:net in browsers)', async () => {
    // A second client and endpoint in the same page, through the bundle's own exports.
    const serviceAddress = (await page.evaluate(`(async () => {
      const a = await import('/dist/browser/allium.js');
      const client = new a.AlliumClient({ bootstrap: [${JSON.stringify(net.bootstrap)}], socketFactory: a.browserSocketFactory, ...${JSON.stringify(SINGLE_HOST_CLIENT)}, poolSize: 0 });
      await client.start({ signal: AbortSignal.timeout(${WAIT_MS}) });
      const m = new a.Messenger(client, a.createIdentity(), { services: { 80: { host: '127.0.0.1', port: 80 } } });
      await m.startListening({ signal: AbortSignal.timeout(${WAIT_MS}) });
      window.__service = { client, m };
      return m.address;
    })()`)) as string;
    const visitor = new Messenger(client);
    let code = '';
    let message = '';
    try {
      await visitor.connect(serviceAddress, 80, { signal: AbortSignal.timeout(WAIT_MS) });
    } catch (e) {
      code = (e as { code?: string }).code ?? String(e);
      message = (e as Error).message;
    } finally {
      visitor.close();
    }
    // Refused as a service that is down is refused: END with CONNECT_REFUSED, the circuit left working.
    expect(code, chromium.log()).to.equal('ERR_STREAM_FAILED');
    expect(message).to.include(`reason ${EndReason.CONNECT_REFUSED}`);
    // The page is still working and threw nothing uncaught.
    expect(chromium.log()).not.to.include('[pageerror]');
    expect(await page.$eval('#status', (e) => (e as HTMLElement).dataset['state'])).to.equal('listening');
  });
});
