-- Applies a settings patch atomically, bumps the seq and publishes it.
--
-- KEYS: 1 seq, 2 settings, 3 delta channel
-- ARGV: 1 patch JSON (absent or null fields are kept), 2 PUBLISH or SPUBLISH
-- Returns {seq, settings JSON}.
local stored = redis.call('GET', KEYS[2])
if stored == false then
  return redis.error_reply('NOSETTINGS tenant not seeded')
end
local settings = cjson.decode(stored)
for k, v in pairs(cjson.decode(ARGV[1])) do
  if v ~= cjson.null then settings[k] = v end
end
local out = cjson.encode(settings)
redis.call('SET', KEYS[2], out)
local seq = redis.call('INCR', KEYS[1])
redis.call(ARGV[2], KEYS[3], 'S' .. seq .. ' ' .. out)
return {seq, out}
