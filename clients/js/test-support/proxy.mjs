// A TCP proxy in front of a hub whose connections the test can cut
// abruptly (no close frame, like a lost network), while the hub keeps
// running and new connections keep getting through.

import { createServer, connect } from 'node:net';

export class Proxy {
  static async start(targetAddr) {
    const [host, port] = targetAddr.split(':');
    const proxy = new Proxy();
    proxy.sockets = new Set();
    proxy.server = createServer((client) => {
      const upstream = connect(Number(port), host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ]) {
        proxy.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          proxy.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.addr = `127.0.0.1:${proxy.server.address().port}`;
    return proxy;
  }

  get url() {
    return `ws://${this.addr}/v1/ws`;
  }

  /** Drops every open connection abruptly (TCP reset). */
  cut() {
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}
