-- Settles a change whose answer a node did not get in time (PROTOCOL.md
-- §3.1): tells whether it was applied and, if it was not, fences it so it
-- never is — the request may still sit in a socket buffer of this server
-- (frozen, or on a connection since replaced) and run later.
--
-- KEYS: 1 where the attempt is recorded (the ops hash for an agent change,
--       the attempt's own key for settings), 2 the versions hash (agent
--       changes), 3 the attempt's fence
-- ARGV: 1 'agent' or 'settings', 2 agent id (agent changes), 3 attempt id,
--       4 the version the change expected (agent changes), 5 fence TTL ms
-- An attempt found applied is fenced too (it cannot run again anyway): a
-- write, so that the WAIT sent behind this script covers the change, on
-- whichever connection or master it was written (backplane/replicated.rs).
--
-- Returns {1, seq} applied; {0, false} not applied (and now never will be);
-- {2, false} not applied now and never will be, but whether it was applied
-- and then overwritten by a later change of the same agent is unknown.
if ARGV[1] == 'agent' then
  local op = redis.call('HGET', KEYS[1], ARGV[2])
  if op then
    local attempt, seq = string.match(op, '^(%S+) (%d+)$')
    if attempt == ARGV[3] then
      redis.call('SET', KEYS[3], 'applied', 'PX', ARGV[5])
      return {1, seq}
    end
  end
else
  local seq = redis.call('GET', KEYS[1])
  if seq then
    redis.call('SET', KEYS[3], 'applied', 'PX', ARGV[5])
    return {1, seq}
  end
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
if ARGV[1] == 'settings' or redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[4] then
  return {0, false}
end
return {2, false}
