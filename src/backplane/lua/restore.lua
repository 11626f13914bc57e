-- Restores a tenant from a node's replica after the store came back empty
-- (its epoch key is gone). Only the first node to get here writes.
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 settings, 5 epoch
-- ARGV: 1 epoch value, 2 seq, 3 settings JSON, then triples:
--       agent id, full record JSON, version
-- Returns 1 when this call restored the tenant, 0 when it was not needed.
if redis.call('EXISTS', KEYS[5]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[4], ARGV[3])
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
end
redis.call('SET', KEYS[5], ARGV[1])
return 1
