-- Seeds what the store lacks from the directory file: settings, the epoch,
-- each agent's initial record at version 0, and the users and channels.
-- Never overwrites: a store that has a directory keeps it (admins change
-- it at runtime; the file is only a seed).
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 settings, 5 epoch,
--       6 directory version, 7 directory users, 8 directory channels,
--       9 removed agents (not written here: `restore.lua` takes the same keys)
-- ARGV: 1 settings JSON, 2 epoch value, 3 number of users, 4 number of
--       channels, then pairs: user id, user JSON; pairs: channel key,
--       channel JSON; then pairs: agent id, record JSON up to `"version":`
redis.call('SET', KEYS[1], 0, 'NX')
redis.call('SET', KEYS[4], ARGV[1], 'NX')
redis.call('SET', KEYS[5], ARGV[2], 'NX')
local n_users, n_channels = tonumber(ARGV[3]), tonumber(ARGV[4])
local records_at = 5 + 2 * (n_users + n_channels)
if redis.call('SET', KEYS[6], 0, 'NX') then
  for i = 5, 4 + 2 * n_users, 2 do
    redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
  end
  for i = 5 + 2 * n_users, records_at - 1, 2 do
    redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
  end
  -- Only the seed's agents: once the store has a directory, an agent the
  -- file names but an admin deleted does not come back.
  for i = records_at, #ARGV, 2 do
    if redis.call('HSETNX', KEYS[3], ARGV[i], 0) == 1 then
      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1] .. '0}')
    end
  end
end
return 1
