/**
 * A small typed event emitter that runs in Node and browsers. Event names follow `noun:verb`.
 *
 * Several events fire once per cell on the data path ('link:cell', 'stream:data'), so emit() allocates nothing: each
 * event's handlers are an array replaced, never changed, by on() and off() (copy on write). An emit walks the array
 * it started with, so a handler added during an emit first runs at the next one and a handler removed during an
 * emit still runs in it, as with a copy taken at the start, without taking one.
 */
type Handler = (...args: never[]) => void;

export class Emitter<Events extends Record<string, unknown[]>> {
  private readonly handlers = new Map<keyof Events, readonly Handler[]>();

  on<K extends keyof Events>(event: K, fn: (...args: Events[K]) => void): () => void {
    const h = fn as unknown as Handler;
    const list = this.handlers.get(event);
    // A handler is registered once, however often on() is called with it (as with a set).
    if (!list) this.handlers.set(event, [h]);
    else if (!list.includes(h)) this.handlers.set(event, [...list, h]);
    return () => this.off(event, fn);
  }

  once<K extends keyof Events>(event: K, fn: (...args: Events[K]) => void): () => void {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, fn: (...args: Events[K]) => void): void {
    const list = this.handlers.get(event);
    if (!list) return;
    const i = list.indexOf(fn as unknown as Handler);
    if (i < 0) return;
    if (list.length === 1) this.handlers.delete(event);
    else this.handlers.set(event, [...list.slice(0, i), ...list.slice(i + 1)]);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const list = this.handlers.get(event) as readonly ((...a: Events[K]) => void)[] | undefined;
    if (!list) return;
    for (let i = 0; i < list.length; i++) list[i]!(...args);
  }

  listenerCount(event: keyof Events): number {
    return this.handlers.get(event)?.length ?? 0;
  }
}
