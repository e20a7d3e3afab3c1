/**
 * A delaying TCP forwarder on 127.0.0.1, for the latency mode of bench:circuit when the kernel has no netem qdisc:
 * for every target port it listens on a new port and forwards each connection to 127.0.0.1:target, holding every
 * chunk DELAY ms in each direction (order kept, bandwidth not limited). A connection through it sees a round trip
 * of 2 × DELAY, as with `tc qdisc … netem delay DELAY` on lo.
 *
 *   node delay-main.js --delay 20 TARGET_PORT…     prints {"ports":[listen port per target],"pid":…}
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

const argv = process.argv.slice(2);
let delay = 20;
const targets: number[] = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--delay') delay = Number(argv[++i]);
  else targets.push(Number(argv[i]));
}

/** Forwards chunks from `from` to `to`, each `delay` ms after it arrived. */
function delayed(from: Socket, to: Socket): void {
  const queue: { due: number; data: Buffer }[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let ended = false;
  const flush = (): void => {
    timer = null;
    const now = performance.now();
    while (queue.length && queue[0]!.due <= now + 0.5) to.write(queue.shift()!.data);
    if (queue.length) timer = setTimeout(flush, queue[0]!.due - now);
    else if (ended) to.end();
  };
  from.on('data', (data: Buffer) => {
    queue.push({ due: performance.now() + delay, data });
    timer ??= setTimeout(flush, delay);
  });
  from.on('end', () => {
    ended = true;
    timer ??= setTimeout(flush, delay);
  });
}

const servers: Server[] = [];
const ports: number[] = [];
for (const target of targets) {
  const server = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port: target });
    // An orderly close travels as a delayed 'end' (delayed() ends the other side once its queue is written);
    // only an error tears both sides down at once.
    for (const s of [inbound, outbound]) {
      s.setNoDelay(true);
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    delayed(inbound, outbound);
    delayed(outbound, inbound);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  servers.push(server);
  ports.push((server.address() as { port: number }).port);
}
process.stdout.write(JSON.stringify({ ports, pid: process.pid }) + '\n');
process.on('SIGTERM', () => {
  for (const s of servers) s.close();
  process.exit(0);
});
