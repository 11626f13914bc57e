-- Keeps a channel's latest queue statistics and announces them to every
-- node (PROTOCOL.md §10.7). Takes no seq: statistics are not agent changes
-- and must never move the versioned delta stream. The time is Redis's, so
-- every node's pushes are ordered by one clock; a push within the same
-- millisecond as the one before still orders after it.
--
-- KEYS: 1 stats (hash: channel → JSON), 2 stamps (hash: channel → ms),
--       3 the tenant's delta channel
-- ARGV: 1 the channel's field, 2 the channel JSON, 3 the stats JSON,
--       4 PUBLISH or SPUBLISH
-- Returns the stored JSON.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') or 0
if now <= last then now = last + 1 end
local stamp = string.format('%d', now)
local json = '{"channel":' .. ARGV[2] .. ',"stats":' .. ARGV[3] .. ',"updated_ms":' .. stamp .. '}'
redis.call('HSET', KEYS[1], ARGV[1], json)
redis.call('HSET', KEYS[2], ARGV[1], stamp)
redis.call(ARGV[4], KEYS[3], 'Q' .. json)
return json
