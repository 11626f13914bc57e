-- Compare-and-swap of one agent record (DESIGN.md §5), atomically:
-- check the version, bump the tenant seq, store the record with its new
-- version, append the history, publish the delta.
--
-- KEYS: 1 seq, 2 records (hash), 3 versions (hash), 4 history (stream), 5 delta channel
-- ARGV: 1 agent id, 2 expected version, 3 record JSON up to and including
--       `"version":` (the seq and `}` are appended here), 4 history cap,
--       5 history entry JSON up to `"version":`, 6 PUBLISH or SPUBLISH
-- Returns {1, seq} or, on a version mismatch, {0, current record or false}.
local current = redis.call('HGET', KEYS[3], ARGV[1])
if current == false or current ~= ARGV[2] then
  return {0, redis.call('HGET', KEYS[2], ARGV[1])}
end
local seq = redis.call('INCR', KEYS[1])
local record = ARGV[3] .. seq .. '}'
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('HSET', KEYS[3], ARGV[1], seq)
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', 'h', ARGV[5] .. seq .. '}')
end
redis.call(ARGV[6], KEYS[5], 'A' .. record)
return {1, seq}
