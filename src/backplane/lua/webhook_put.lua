-- A webhook document's compare-and-swap (crate::webhooks::store).
-- KEYS[1] hub:{t}:webhooks (a hash: field <name> the document, <name>:v
-- its version, which keeps growing across deletes so a stale writer never
-- matches). ARGV: name, expected version, '1' write / '0' delete, document.
-- Returns the new version, or -1 when the version is not the expected one.
local vfield = ARGV[1] .. ':v'
local v = tonumber(redis.call('HGET', KEYS[1], vfield) or '0')
if v ~= tonumber(ARGV[2]) then
  return -1
end
v = v + 1
redis.call('HSET', KEYS[1], vfield, v)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return v
