-- Appends a `heartbeat` event (protocol/EVENTS.md) with the store's current
-- record of each listed agent that is online: read here, in the same step
-- as the append, so a heartbeat never carries a record older than an event
-- before it in the stream.
--
-- KEYS: 1 records (hash), 2 versions (hash), 3 the event stream
-- ARGV: 1 events kept at most, then pairs: agent id, the event's opening
-- Returns how many heartbeats were appended.
local count = 0
for i = 2, #ARGV, 2 do
  local record = redis.call('HGET', KEYS[1], ARGV[i])
  if record and string.find(record, '"presence":"online"', 1, true) then
    local version = redis.call('HGET', KEYS[2], ARGV[i]) or '0'
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'e',
      ARGV[i + 1] .. '"current":' .. record .. ',"version":' .. version .. '}')
    count = count + 1
  end
end
return count
