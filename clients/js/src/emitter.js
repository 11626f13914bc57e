// A minimal event emitter: on(name, fn) returns its own unsubscribe.

export class Emitter {
  #handlers = new Map();

  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('handler must be a function');
    let set = this.#handlers.get(name);
    if (!set) this.#handlers.set(name, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  emit(name, value) {
    const set = this.#handlers.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      // A throwing handler must not break the connection's message loop.
      try {
        fn(value);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
