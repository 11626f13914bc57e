-- The seq of the change made under an idempotency key, while the store
-- remembers it (PROTOCOL.md §3.3). A repeat is acknowledged like the change
-- it repeats: with --redis-wait-replicas the marker is set again, unchanged,
-- so that the WAIT sent behind this script (backplane/replicated.rs) covers
-- that change, on whichever connection or master it was written.
--
-- KEYS: 1 the idempotency key's marker
-- ARGV: 1 '1' when a WAIT follows (write the marker again), else '0'
-- Returns the seq, or false when the key was not used (or is forgotten).
local seq = redis.call('GET', KEYS[1])
if seq and ARGV[1] == '1' then
  redis.call('SET', KEYS[1], seq, 'KEEPTTL')
end
return seq
