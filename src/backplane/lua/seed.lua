-- Seeds what the store lacks from the directory file: settings, the epoch,
-- each agent's initial record at version 0, and the users and channels.
-- Never overwrites: a store that has a directory keeps it (admins change
-- it at runtime; the file is only a seed).
--
-- Called in chunks (`RedisBackplane::seed_tenant`), so a directory of
-- 100 000 agents never makes one command of 100 MB that holds Redis and
-- a node's connection past `--redis-timeout-ms`. Until the last chunk the
-- tenant has no seq, settings, epoch nor directory version, so it reads as
-- absent (every attaching node seeds — the same file, idempotently —
-- before it loads, and a node restoring a store that came back empty
-- overwrites what the chunks wrote). The last chunk sets them only when
-- every user, channel and agent of the file is in (a failover between two
-- chunks may have lost earlier ones: then it answers -1 and the node
-- starts over). Once the directory version is set no chunk writes
-- anything, so a late chunk cannot bring back an agent an admin deleted.
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 settings, 5 epoch,
--       6 directory version, 7 directory users, 8 directory channels,
--       9 removed agents (not written here: `restore.lua` takes the same keys)
-- ARGV: 1 settings JSON, 2 epoch value, 3 number of users, 4 number of
--       channels (in this chunk), 5 '1' on the last chunk, 6, 7, 8 the
--       file's numbers of users, channels and agents, then pairs: user id,
--       user JSON; pairs: channel key, channel JSON; then pairs: agent id,
--       record JSON up to `"version":`
-- Returns 1 when it wrote its chunk (the last: the tenant is seeded), 0
-- when the store has a directory, -1 when the last chunk found earlier
-- chunks missing.
if redis.call('EXISTS', KEYS[6]) == 1 then
  -- Seeded: put back what an eviction or a hand may have removed.
  redis.call('SET', KEYS[1], 0, 'NX')
  redis.call('SET', KEYS[4], ARGV[1], 'NX')
  redis.call('SET', KEYS[5], ARGV[2], 'NX')
  return 0
end
local n_users, n_channels = tonumber(ARGV[3]), tonumber(ARGV[4])
local records_at = 9 + 2 * (n_users + n_channels)
for i = 9, 8 + 2 * n_users, 2 do
  redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
end
for i = 9 + 2 * n_users, records_at - 1, 2 do
  redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
end
-- Only the seed's agents: once the store has a directory, an agent the
-- file names but an admin deleted does not come back.
for i = records_at, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], 0) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1] .. '0}')
  end
end
if ARGV[5] ~= '1' then
  return 1
end
if redis.call('HLEN', KEYS[7]) < tonumber(ARGV[6])
    or redis.call('HLEN', KEYS[8]) < tonumber(ARGV[7])
    or redis.call('HLEN', KEYS[3]) < tonumber(ARGV[8]) then
  return -1
end
redis.call('SET', KEYS[1], 0, 'NX')
redis.call('SET', KEYS[4], ARGV[1], 'NX')
redis.call('SET', KEYS[5], ARGV[2], 'NX')
redis.call('SET', KEYS[6], 0, 'NX')
return 1
