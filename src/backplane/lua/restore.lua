-- Restores a tenant from a node's replica after the store came back empty
-- (its epoch key is gone). Only the first node to get here writes.
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 settings, 5 epoch,
--       6 directory version, 7 directory users, 8 directory channels,
--       9 removed agents, 10 the event stream
-- ARGV: 1 epoch value, 2 seq, 3 settings JSON, 4 directory version,
--       5 number of users, 6 number of channels, 7 number of removed
--       agents, 8 the gap event's opening (empty: no event stream), 9 events
--       kept at most, then pairs: user id, user JSON; pairs: channel key, channel
--       JSON; pairs: removed agent id, seq of its removal; then triples:
--       agent id, full record JSON, version
-- Returns 1 when this call restored the tenant, 0 when it was not needed.
if redis.call('EXISTS', KEYS[5]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[4], ARGV[3])
-- Records and versions too: a seed interrupted before its last chunk
-- (`seed.lua`) leaves some behind, with no epoch.
redis.call('DEL', KEYS[2], KEYS[3], KEYS[7], KEYS[8], KEYS[9])
redis.call('SET', KEYS[6], ARGV[4])
local n_users, n_channels, n_removed = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local channels_at = 10 + 2 * n_users
local removed_at = channels_at + 2 * n_channels
local records_at = removed_at + 2 * n_removed
for i = 10, channels_at - 1, 2 do
  redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
end
for i = channels_at, removed_at - 1, 2 do
  redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
end
for i = removed_at, records_at - 1, 2 do
  redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1])
end
for i = records_at, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
end
if ARGV[8] ~= '' then
  -- The store lost the tenant, and with it the events since the newest
  -- one the stream still has (if any): say where the stream resumes.
  local from = 1
  local newest = redis.call('XREVRANGE', KEYS[10], '+', '-', 'COUNT', 1)
  if newest[1] then
    local ok, event = pcall(cjson.decode, newest[1][2][2])
    if ok and type(event) == 'table' and tonumber(event.version) then
      from = tonumber(event.version) + 1
    end
  end
  if from <= tonumber(ARGV[2]) then
    redis.call('XADD', KEYS[10], 'MAXLEN', '~', ARGV[9], '*', 'e',
      ARGV[8] .. '"from":' .. from .. ',"version":' .. ARGV[2] .. '}')
  end
end
redis.call('SET', KEYS[5], ARGV[1])
return 1
