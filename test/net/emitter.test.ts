/**
 * The event emitter (net/emitter.ts): what a handler added or removed during an emit sees, once(), and that a
 * handler is registered once however often it is added.
 */
import { expect } from 'chai';
import { Emitter } from '../../net/emitter.js';

class Probe extends Emitter<{ 'x:ping': [number]; 'x:other': [] }> {
  fire(n: number): void {
    this.emit('x:ping', n);
  }
}

describe('Emitter', () => {
  it('runs handlers in the order added; one removed during an emit still runs in it, one added runs from the next', () => {
    const e = new Probe();
    const seen: string[] = [];
    const late = (n: number): void => void seen.push(`late ${n}`);
    const offB = e.on('x:ping', (n) => seen.push(`b ${n}`));
    e.on('x:ping', (n) => {
      seen.push(`a ${n}`);
      offB();
      e.on('x:ping', late);
    });
    // Registered before the first emit, after the one that adds `late`.
    const offC = e.on('x:ping', (n) => seen.push(`c ${n}`));
    e.fire(1);
    expect(seen).to.deep.equal(['b 1', 'a 1', 'c 1']);
    seen.length = 0;
    offC();
    e.fire(2);
    expect(seen).to.deep.equal(['a 2', 'late 2']);
    expect(e.listenerCount('x:ping')).to.equal(2);
  });

  it('registers a handler once however often it is added; once() runs once; off() of the last leaves none', () => {
    const e = new Probe();
    let n = 0;
    const h = (): void => void n++;
    e.on('x:ping', h);
    e.on('x:ping', h);
    expect(e.listenerCount('x:ping')).to.equal(1);
    let once = 0;
    e.once('x:ping', () => once++);
    e.fire(1);
    e.fire(2);
    expect([n, once]).to.deep.equal([2, 1]);
    e.off('x:ping', h);
    e.off('x:ping', h);
    expect(e.listenerCount('x:ping')).to.equal(0);
    e.fire(3);
    expect(n).to.equal(2);
    expect(e.listenerCount('x:other')).to.equal(0);
  });
});
