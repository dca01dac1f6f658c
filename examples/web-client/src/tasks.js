// Every timer and every wait for a server event the client has running, so that a failed voice
// start can be checked to leave none behind (ERR-7) and the app can count them.

export class TaskSet {
  constructor() {
    this.running = new Set();
  }

  get size() {
    return this.running.size;
  }

  /** setTimeout that the set forgets once it fired or was cleared. */
  timeout(fn, ms) {
    const handle = setTimeout(() => {
      this.running.delete(handle);
      fn();
    }, ms);
    this.running.add(handle);
    return () => {
      clearTimeout(handle);
      this.running.delete(handle);
    };
  }

  /**
   * The first of `events` the socket receives within `ms`: resolves with [name, payload]; rejects
   * with `onTimeout()`'s error. Its listeners and timer are gone once it settled.
   */
  waitFor(socket, events, ms, onTimeout) {
    return new Promise((resolve, reject) => {
      const token = Symbol("wait");
      const handlers = events.map((name) => [name, (payload) => settle(() => resolve([name, payload ?? {}]))]);
      const cancelTimer = this.timeout(() => settle(() => reject(onTimeout())), ms);
      const settle = (finish) => {
        cancelTimer();
        for (const [name, handler] of handlers) socket.off(name, handler);
        this.running.delete(token);
        finish();
      };
      for (const [name, handler] of handlers) socket.on(name, handler);
      this.running.add(token);
    });
  }
}
