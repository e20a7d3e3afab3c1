/**
 * Joins a TCP socket (Node) and a MuxStream with backpressure both ways: a stream that queues too much pauses the
 * socket's reads; received data is acknowledged (stream SENDME) only when the socket has written it, so a slow
 * reader stops the far end instead of filling our memory.
 *
 * Received data arrives a cell (886 bytes) at a time, often dozens in one turn of the event loop (one link read);
 * the socket is corked for that turn so they leave in one write, not one system call per cell, and are acknowledged
 * together once that write completes.
 */
import type { Socket } from 'node:net';
import { EndReason } from '../protocol/stream-messages.js';
import type { MuxStream } from './stream-mux.js';

export function pipeSocket(stream: MuxStream, socket: Socket): void {
  let ended = false;
  let corked = false;
  /** Cells of this turn written, and the last one, held back: its write's callback acknowledges them all. */
  let batch = 0;
  let last: Uint8Array | null = null;
  /** Writes the held cell; writes complete in order, so when it has, every cell of the turn has. */
  const writeLast = (): void => {
    const n = batch;
    const data = last;
    batch = 0;
    last = null;
    if (data && !socket.destroyed) socket.write(data, () => stream.consumed(n));
  };
  const uncork = (): void => {
    corked = false;
    writeLast();
    socket.uncork();
  };
  socket.on('data', (buf: Buffer) => {
    if (!stream.write(new Uint8Array(buf.buffer, buf.byteOffset, buf.length))) socket.pause();
  });
  stream.on('stream:drain', () => socket.resume());
  stream.on('stream:data', (data) => {
    if (socket.destroyed) return;
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    if (last) socket.write(last);
    last = data;
    batch++;
  });
  socket.on('end', () => {
    if (!ended) stream.end(EndReason.DONE);
  });
  socket.on('error', () => undefined);
  socket.on('close', (hadError) => {
    if (!ended) stream.end(hadError ? EndReason.MISC : EndReason.DONE);
  });
  stream.on('stream:end', () => {
    ended = true;
    writeLast();
    if (!socket.destroyed) socket.end();
  });
}
