-- Reads the event stream (protocol/EVENTS.md) in one round trip: the
-- oldest and newest ids it keeps, and a page of events.
--
-- KEYS: 1 the event stream
-- ARGV: 1 the start (`-`, or `(<id>` for after an id), 2 how many at most,
--       3 the id read after ('' for none), whose presence is checked
-- Returns {oldest id or '', newest id or '', '1' when the id read after is
-- in the stream (or there is none) else '0', id, JSON, id, JSON, …}.
local out = {'', '', '1'}
if ARGV[3] ~= '' and #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then
  out[3] = '0'
end
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if oldest[1] then
  out[1] = oldest[1][1]
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if newest[1] then
  out[2] = newest[1][1]
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])) do
  -- Entries are `e <json>`; anything else someone wrote is skipped.
  local fields = entry[2]
  for j = 1, #fields - 1, 2 do
    if fields[j] == 'e' then
      out[#out + 1] = entry[1]
      out[#out + 1] = fields[j + 1]
    end
  end
end
return out
