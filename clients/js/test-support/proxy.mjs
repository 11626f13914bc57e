// A TCP proxy in front of a hub whose connections the test can cut
// abruptly (no close frame, like a lost network), while the hub keeps
// running and new connections keep getting through; or that stops listening
// for a while (`hold`), as a node that is down refuses connections; or that
// swallows what the hub sends (`stall`), so a request reaches the hub and is
// applied while its reply is lost with the connection.

import { createServer, connect } from 'node:net';

export class Proxy {
  static async start(targetAddr) {
    const proxy = new Proxy();
    proxy.target = targetAddr;
    proxy.sockets = new Set();
    proxy.stalled = false;
    await proxy.#listen(0);
    proxy.addr = `127.0.0.1:${proxy.server.address().port}`;
    return proxy;
  }

  #listen(port) {
    const [host, targetPort] = this.target.split(':');
    this.server = createServer((client) => {
      const upstream = connect(Number(targetPort), host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ]) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
        // Written by hand rather than piped, so that `stall` can drop the
        // hub's bytes (the test's traffic is small: no backpressure needed).
        a.on('data', (chunk) => {
          if (!(a === upstream && this.stalled)) b.write(chunk);
        });
      }
    });
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
  }

  get url() {
    return `ws://${this.addr}/v1/ws`;
  }

  /** Drops every open connection abruptly (TCP reset). */
  cut() {
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    this.stalled = false;
  }

  /**
   * Drops everything the hub sends from now on (the client's frames still
   * reach it) until `cut()`: a request sent meanwhile is applied, and its
   * reply never arrives.
   */
  stall() {
    this.stalled = true;
  }

  /**
   * Stops listening until `release()`: every new connection is refused, so
   * with `cut()` the hub is out of reach for as long as the test needs,
   * whatever the client's backoff.
   */
  hold() {
    this.server.close();
  }

  /** Listens again, on the same port. */
  release() {
    return this.#listen(Number(this.addr.split(':')[1]));
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
