-- Raises a tenant's seq after the store fell back: it lost changes that
-- the nodes had already seen (a failover to a replica that missed the last
-- writes, or a restart from an older snapshot). Versions handed out
-- afterwards must be above every version any node applied or any client
-- saw, and another node may have seen more than the one calling: the seq
-- jumps well past the caller's (every node then sees a gap and resyncs).
--
-- The event stream says so: a `gap` event at the target, from the version
-- after the store's seq (protocol/EVENTS.md).
--
-- KEYS: 1 seq, 2 the event stream
-- ARGV: 1 floor (the caller's seq), 2 target (far above it), 3 the gap
--       event's opening (empty: no event stream), 4 events kept at most
-- Returns the seq before the call: below the floor, the store had indeed
-- fallen back and was raised to the target; at or above it, it had moved
-- on (deltas in flight to the caller) and nothing changed.
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2])
  if ARGV[3] ~= '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e',
      ARGV[3] .. '"from":' .. (seq + 1) .. ',"version":' .. ARGV[2] .. '}')
  end
end
return seq
