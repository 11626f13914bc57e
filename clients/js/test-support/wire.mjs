// The real WebSocket, recording what goes over it: every request the
// client sends and every reply it gets, across reconnects (each socket the
// client opens records into the same lists). Passed as `options.WebSocket`;
// nothing is changed on the way.

export function recordingWebSocket() {
  const wire = { sent: [], received: [] };
  wire.WebSocket = class extends WebSocket {
    constructor(url) {
      super(url);
      this.addEventListener('message', (event) => {
        if (typeof event.data === 'string') wire.received.push(JSON.parse(event.data));
      });
    }

    send(data) {
      wire.sent.push(JSON.parse(data));
      super.send(data);
    }
  };
  /** The requests sent of a `type` (heartbeats and hello included when asked). */
  wire.requests = (type) => wire.sent.filter((m) => m.type === type);
  /** The reply to the request of id `id` on some socket, if it came. */
  wire.replyTo = (message) => wire.received.find((m) => m.type === 'reply' && m.id === message.id);
  return wire;
}
