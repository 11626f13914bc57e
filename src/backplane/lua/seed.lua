-- Seeds what the store lacks from the directory: settings, the epoch, and
-- each agent's initial record at version 0. Never overwrites.
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 settings, 5 epoch
-- ARGV: 1 settings JSON, 2 epoch value, then pairs: agent id, record JSON
--       up to `"version":`
redis.call('SET', KEYS[1], 0, 'NX')
redis.call('SET', KEYS[4], ARGV[1], 'NX')
redis.call('SET', KEYS[5], ARGV[2], 'NX')
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], 0) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1] .. '0}')
  end
end
return 1
