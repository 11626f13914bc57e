-- Seeds what the store lacks from the directory file: settings, the epoch,
-- each agent's initial record at version 0, and the users and channels.
-- Never overwrites: a store that has a directory keeps it (admins change
-- it at runtime; the file is only a seed).
--
-- Called in chunks (`RedisBackplane::seed_tenant`), so a directory of
-- 100 000 agents never makes one command of 100 MB that holds Redis and
-- the node's connection past `--redis-timeout-ms`. The directory version
-- is set by the last chunk only: until then every attaching node seeds
-- (the same file, idempotently) before it loads, so none loads half a
-- directory; once it is set no chunk writes anything, so a late chunk
-- cannot bring back an agent an admin deleted meanwhile.
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 settings, 5 epoch,
--       6 directory version, 7 directory users, 8 directory channels,
--       9 removed agents (not written here: `restore.lua` takes the same keys)
-- ARGV: 1 settings JSON, 2 epoch value, 3 number of users, 4 number of
--       channels, 5 '1' on the last chunk, then pairs: user id, user JSON;
--       pairs: channel key, channel JSON; then pairs: agent id, record JSON
--       up to `"version":`
-- Returns 1 when it wrote its chunk, 0 when the store has a directory.
redis.call('SET', KEYS[1], 0, 'NX')
redis.call('SET', KEYS[4], ARGV[1], 'NX')
redis.call('SET', KEYS[5], ARGV[2], 'NX')
if redis.call('EXISTS', KEYS[6]) == 1 then
  return 0
end
local n_users, n_channels = tonumber(ARGV[3]), tonumber(ARGV[4])
local records_at = 6 + 2 * (n_users + n_channels)
for i = 6, 5 + 2 * n_users, 2 do
  redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
end
for i = 6 + 2 * n_users, records_at - 1, 2 do
  redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
end
-- Only the seed's agents: once the store has a directory, an agent the
-- file names but an admin deleted does not come back.
for i = records_at, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], 0) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1] .. '0}')
  end
end
if ARGV[5] == '1' then
  redis.call('SET', KEYS[6], 0, 'NX')
end
return 1
