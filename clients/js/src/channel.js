// Channel arguments: {kind, id} as the protocol has them, or the "kind:id"
// keys of SupervisorClient.channels.

export function toChannelRef(channel) {
  if (typeof channel === 'string') {
    const at = channel.indexOf(':');
    if (at <= 0) throw new TypeError(`channel "${channel}" is not "kind:id"`);
    return { kind: channel.slice(0, at), id: channel.slice(at + 1) };
  }
  if (!channel || typeof channel.kind !== 'string' || typeof channel.id !== 'string') {
    throw new TypeError('channel must be {kind, id} or "kind:id"');
  }
  return { kind: channel.kind, id: channel.id };
}

/** A copy of `object` without its undefined fields (they are not sent). */
export function defined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}
