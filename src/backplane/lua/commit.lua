-- Compare-and-swap of one agent record (DESIGN.md §5), atomically:
-- check the version, bump the tenant seq, store the record with its new
-- version, append the history, publish the delta.
--
-- A change is applied only while its sender may still be waiting for it
-- (PROTOCOL.md §3.1: `unavailable` and `outcome_unknown` promise that it is
-- never applied after the reply): not once its deadline passed on this
-- server's clock, and not once a node that gave up waiting fenced it
-- (`settle.lua`). What it records lets that node find out whether it was
-- applied: the ops hash keeps, per agent, the attempt of the last change.
--
-- KEYS: 1 seq, 2 records (hash), 3 versions (hash), 4 history (stream),
--       5 delta channel, 6 ops (hash), 7 this attempt's fence,
--       8 the idempotency key's marker (any key of the tenant when none),
--       9 the event stream
-- ARGV: 1 agent id, 2 expected version, 3 record JSON up to and including
--       `"version":` (the seq and `}` are appended here), 4 history cap,
--       5 history entry JSON up to `"version":`, 6 PUBLISH or SPUBLISH,
--       7 attempt id, 8 deadline in ms on this server's clock (0: none),
--       9 idempotency window in ms (0: no idempotency key),
--       10 the event's opening, up to its body (`crate::events::Event::prefix`;
--       empty: no event stream), 11 events kept at most, 12 events' maximum
--       age in ms (0: none)
-- Returns {1, seq}; on a version mismatch {0, current record or false};
-- {2, current record or false} when the idempotency key was used already
-- (its marker is written again, for the WAIT behind);
-- {3, why} when the deadline passed or the attempt was fenced.
if redis.call('EXISTS', KEYS[7]) == 1 then
  return {3, 'fenced'}
end
-- This server's clock in ms, read at most once per change.
local now_ms
local function clock()
  if not now_ms then
    local t = redis.call('TIME')
    now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now_ms
end
if ARGV[8] ~= '0' and clock() >= tonumber(ARGV[8]) then
  return {3, 'late'}
end
if ARGV[9] ~= '0' then
  local earlier = redis.call('GET', KEYS[8])
  if earlier then
    -- Set again, unchanged: a write, so that the WAIT sent behind this
    -- script covers the change this repeat answers for, wherever it was
    -- written (backplane/replicated.rs).
    redis.call('SET', KEYS[8], earlier, 'KEEPTTL')
    return {2, redis.call('HGET', KEYS[2], ARGV[1])}
  end
end
local current = redis.call('HGET', KEYS[3], ARGV[1])
if current == false or current ~= ARGV[2] then
  return {0, redis.call('HGET', KEYS[2], ARGV[1])}
end
local seq = redis.call('INCR', KEYS[1])
local record = ARGV[3] .. seq .. '}'
if ARGV[10] ~= '' then
  -- The event carries the record before and after: read before writing.
  local previous = redis.call('HGET', KEYS[2], ARGV[1]) or 'null'
  local event = ARGV[10] .. '"previous":' .. previous .. ',"current":' .. record
    .. ',"version":' .. seq .. '}'
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[11], '*', 'e', event)
  -- The age trim at every 64th version: it frees whole stream nodes (`~`),
  -- so trying it at every change mostly finds nothing to free; the count
  -- bound above holds at every change.
  if ARGV[12] ~= '0' and seq % 64 == 0 then
    redis.call('XTRIM', KEYS[9], 'MINID', '~', clock() - tonumber(ARGV[12]))
  end
end
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('HSET', KEYS[6], ARGV[1], ARGV[7] .. ' ' .. seq)
if ARGV[9] ~= '0' then
  redis.call('SET', KEYS[8], seq, 'PX', ARGV[9])
end
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'h', ARGV[5] .. seq .. '}')
end
redis.call(ARGV[6], KEYS[5], 'A' .. record)
return {1, seq}
