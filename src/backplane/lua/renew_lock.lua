-- Extends a lock of backplane::try_lock (SET NX PX, value: the node id) if
-- this node still holds it. KEYS[1] the lock; ARGV: node id, ttl in ms.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
