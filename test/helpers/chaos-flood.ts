/**
 * A handshake and garbage flood against one relay, run as its own process by the chaos runs (so the flood does not
 * share an event loop with the clients it disturbs):
 *
 *   node --import tsx test/helpers/chaos-flood.ts "<bootstrap line>" <duration ms> <workers>
 *
 * Each worker loops until the deadline: WebSocket upgrades with no upgrade token followed by random bytes, a short
 * message and a text message (refused by the rate limit, or closed as a failed handshake), and every fourth round
 * a full link handshake followed by a frame that does not authenticate. Prints one JSON line of counts at the end.
 */
import WebSocket from 'ws';
import { initCrypto, crypto } from '../../crypto/index.js';
import { parseBootstrap } from '../../client/bootstrap.js';
import { FRAME_LEN } from '../../protocol/link-handshake.js';
import { openLink } from '../../net/dial.js';
import { nodeSocketFactory } from '../../net/ws-node.js';

const [line, durationArg, workersArg] = process.argv.slice(2);
if (!line || !durationArg) {
  console.error('usage: chaos-flood.ts "<bootstrap line>" <duration ms> [workers]');
  process.exit(2);
}
await initCrypto();
const target = parseBootstrap(line);
const deadline = Date.now() + Number(durationArg);
const counts = { upgrades: 0, upgradesRefused: 0, garbageSent: 0, links: 0, linksFailed: 0, garbageFrames: 0 };

function raw(): Promise<void> {
  return new Promise((resolve) => {
    counts.upgrades++;
    const ws = new WebSocket(target.url, { perMessageDeflate: false, handshakeTimeout: 5000 });
    const done = (): void => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve();
    };
    ws.once('error', () => {
      counts.upgradesRefused++;
      done();
    });
    ws.once('unexpected-response', () => {
      counts.upgradesRefused++;
      done();
    });
    ws.once('open', () => {
      const pick = counts.upgrades % 3;
      ws.send(pick === 0 ? crypto().random(FRAME_LEN) : pick === 1 ? crypto().random(100) : 'GET / HTTP/1.1');
      counts.garbageSent++;
      ws.once('close', done);
      setTimeout(done, 2000);
    });
  });
}

async function authenticatedGarbage(): Promise<void> {
  try {
    const link = await openLink(nodeSocketFactory, target.url, { role: 'initiator', responder: target.identity }, { timers: { handshakeTimeoutMs: 5000 } });
    counts.links++;
    const closed = new Promise((r) => link.once('link:close', r));
    link.socket.send(crypto().random(FRAME_LEN));
    counts.garbageFrames++;
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    link.close();
  } catch {
    counts.linksFailed++;
  }
}

async function worker(i: number): Promise<void> {
  for (let round = i; Date.now() < deadline; round++) await (round % 4 === 3 ? authenticatedGarbage() : raw());
}

await Promise.all(Array.from({ length: Number(workersArg ?? 32) }, (_, i) => worker(i)));
console.log(JSON.stringify(counts));
process.exit(0);
