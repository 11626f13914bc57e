-- Raises a tenant's seq to at least a floor, after the store lost changes
-- that the nodes had already seen (a failover to a replica that missed the
-- last writes, or a restart from an older snapshot). Versions handed out
-- afterwards are then above every version a node or client saw.
--
-- KEYS: 1 seq
-- ARGV: 1 floor
-- Returns the seq before the call: below the floor, the store had indeed
-- fallen back; at or above it, it had moved on (nothing was raised).
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return seq
