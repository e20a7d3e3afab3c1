/**
 * Joins a TCP socket (Node) and a MuxStream with backpressure both ways: a stream that queues too much pauses the
 * socket's reads; received data is acknowledged (stream SENDME) only when the socket has written it, so a slow
 * reader stops the far end instead of filling our memory.
 */
import type { Socket } from 'node:net';
import { EndReason } from '../protocol/stream-messages.js';
import type { MuxStream } from './stream-mux.js';

export function pipeSocket(stream: MuxStream, socket: Socket): void {
  let ended = false;
  socket.on('data', (buf: Buffer) => {
    if (!stream.write(new Uint8Array(buf.buffer, buf.byteOffset, buf.length))) socket.pause();
  });
  stream.on('stream:drain', () => socket.resume());
  stream.on('stream:data', (data) => {
    if (socket.destroyed) return;
    socket.write(data, () => stream.consumed(1));
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
    if (!socket.destroyed) socket.end();
  });
}
