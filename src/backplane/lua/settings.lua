-- Applies a settings patch atomically, bumps the seq and publishes it.
-- Like `commit.lua`, only while its sender may still be waiting (deadline,
-- fence), and recording its attempt (a short-lived key: settings change
-- rarely) so a node that gave up waiting can find out.
--
-- KEYS: 1 seq, 2 settings, 3 delta channel, 4 this attempt's record,
--       5 this attempt's fence, 6 the idempotency key's marker (any key of
--       the tenant when none), 7 the event stream
-- ARGV: 1 patch JSON (absent or null fields are kept), 2 PUBLISH or SPUBLISH,
--       3 deadline in ms on this server's clock (0: none),
--       4 how long the attempt's record is kept, in ms,
--       5 idempotency window in ms (0: no idempotency key),
--       6 the event's opening (empty: no event stream), 7 events kept at
--       most, 8 events' maximum age in ms (0: none)
-- Returns {seq, settings JSON}; {0, settings JSON, the earlier change's seq}
-- when the idempotency key was used already (nothing applied; its marker is
-- written again, for the WAIT behind); an error reply `LATE` when the
-- deadline passed or the attempt was fenced (nothing applied).
if redis.call('EXISTS', KEYS[5]) == 1 then
  return redis.error_reply('LATE the attempt was fenced')
end
if ARGV[3] ~= '0' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) >= tonumber(ARGV[3]) then
    return redis.error_reply('LATE the deadline passed')
  end
end
local stored = redis.call('GET', KEYS[2])
if stored == false then
  return redis.error_reply('NOSETTINGS tenant not seeded')
end
if ARGV[5] ~= '0' then
  local earlier = redis.call('GET', KEYS[6])
  if earlier then
    -- Set again, unchanged, for the WAIT behind (as in commit.lua).
    redis.call('SET', KEYS[6], earlier, 'KEEPTTL')
    return {0, stored, earlier}
  end
end
local settings = cjson.decode(stored)
for k, v in pairs(cjson.decode(ARGV[1])) do
  if v ~= cjson.null then settings[k] = v end
end
local out = cjson.encode(settings)
redis.call('SET', KEYS[2], out)
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[4], seq, 'PX', ARGV[4])
if ARGV[5] ~= '0' then
  redis.call('SET', KEYS[6], seq, 'PX', ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[7], '*', 'e',
    ARGV[6] .. '"settings":' .. out .. ',"version":' .. seq .. '}')
  if ARGV[8] ~= '0' then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('XTRIM', KEYS[7], 'MINID', '~', now - tonumber(ARGV[8]))
  end
end
redis.call(ARGV[2], KEYS[3], 'S' .. seq .. ' ' .. out)
return {seq, out}
