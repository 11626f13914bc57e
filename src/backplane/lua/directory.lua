-- Commits a directory change (PROTOCOL.md §7.1) atomically: users,
-- channels and the records it writes or removes, each record under a seq
-- of its own and the change under the last, then publishes it. Like `settings.lua`, only while its sender may still
-- be waiting (deadline, fence), recording its attempt so a node that gave
-- up waiting can find out (`settle.lua`, as for settings).
--
-- It applies nothing unless the directory is still at the version the
-- change was planned on and every record at the version it expected.
--
-- KEYS: 1 seq, 2 records, 3 versions, 4 history, 5 delta channel,
--       6 directory users (hash), 7 directory channels (hash),
--       8 directory version, 9 this attempt's record, 10 this attempt's
--       fence, 11 the idempotency key's marker (any key of the tenant when
--       none), 12 removed agents (hash: id → seq of the removal), 13 the
--       event stream
-- ARGV: 1 expected directory version, 2 the change as published (JSON),
--       3 PUBLISH or SPUBLISH, 4 deadline in ms on this server's clock
--       (0: none), 5 how long the attempt's record is kept in ms,
--       6 idempotency window in ms (0: none), 7 history cap,
--       8..13 how many users put, users removed, channels put, channels
--       removed, records put, records removed, 14 the directory event up
--       to its version (empty: no event stream), 15 events kept at most,
--       16 events' maximum age in ms (0: none); then in that order:
--       users put: id, JSON; users removed: id; channels put: key, JSON;
--       channels removed: key; records put: id, expected version ('' for
--       none), record JSON up to `"version":`, history JSON up to
--       `"version":`, the record's event opening; records removed: id,
--       expected version, history JSON up to `"version":`, the event
--       opening.
-- Returns {1, the change's last seq}; {0, seq} on a version mismatch (nothing applied);
-- {2, seq of the earlier change} when the idempotency key was used
-- already; an error reply `LATE` when the deadline passed or the attempt
-- was fenced (nothing applied).
if redis.call('EXISTS', KEYS[10]) == 1 then
  return redis.error_reply('LATE the attempt was fenced')
end
if ARGV[4] ~= '0' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) >= tonumber(ARGV[4]) then
    return redis.error_reply('LATE the deadline passed')
  end
end
if ARGV[6] ~= '0' then
  local earlier = redis.call('GET', KEYS[11])
  if earlier then
    -- Set again, unchanged, for the WAIT behind (as in commit.lua).
    redis.call('SET', KEYS[11], earlier, 'KEEPTTL')
    return {2, earlier}
  end
end
local seq_now = tonumber(redis.call('GET', KEYS[1]) or '0')
-- No directory version: the tenant is being seeded (`seed.lua`) or was
-- lost; a change planned on a replica must not make a partial directory
-- the store's.
if redis.call('GET', KEYS[8]) ~= ARGV[1] then
  return {0, seq_now}
end
local n_users_put, n_users_del = tonumber(ARGV[8]), tonumber(ARGV[9])
local n_chan_put, n_chan_del = tonumber(ARGV[10]), tonumber(ARGV[11])
local n_rec_put, n_rec_del = tonumber(ARGV[12]), tonumber(ARGV[13])
local users_at = 17
local users_del_at = users_at + 2 * n_users_put
local chan_at = users_del_at + n_users_del
local chan_del_at = chan_at + 2 * n_chan_put
local rec_at = chan_del_at + n_chan_del
local rec_del_at = rec_at + 5 * n_rec_put
local events = ARGV[14] ~= ''
local function append_event(event)
  redis.call('XADD', KEYS[13], 'MAXLEN', '~', ARGV[15], '*', 'e', event)
end
-- Every check before the first write: a refused change writes nothing.
for i = 0, n_rec_put - 1 do
  local at = rec_at + 5 * i
  local current = redis.call('HGET', KEYS[3], ARGV[at])
  if (current or '') ~= ARGV[at + 1] then
    return {0, seq_now}
  end
end
for i = 0, n_rec_del - 1 do
  local at = rec_del_at + 4 * i
  if redis.call('HGET', KEYS[3], ARGV[at]) ~= ARGV[at + 1] then
    return {0, seq_now}
  end
end
-- One seq per record written or removed, then one for the directory: each
-- record gets a version of its own (in argument order), the change the last.
local seq = redis.call('INCRBY', KEYS[1], n_rec_put + n_rec_del + 1)
local first = seq - n_rec_put - n_rec_del
redis.call('SET', KEYS[8], seq)
for i = 0, n_users_put - 1 do
  redis.call('HSET', KEYS[6], ARGV[users_at + 2 * i], ARGV[users_at + 2 * i + 1])
end
for i = 0, n_users_del - 1 do
  redis.call('HDEL', KEYS[6], ARGV[users_del_at + i])
end
for i = 0, n_chan_put - 1 do
  redis.call('HSET', KEYS[7], ARGV[chan_at + 2 * i], ARGV[chan_at + 2 * i + 1])
end
for i = 0, n_chan_del - 1 do
  redis.call('HDEL', KEYS[7], ARGV[chan_del_at + i])
end
local cap = tonumber(ARGV[7])
for i = 0, n_rec_put - 1 do
  local at, version = rec_at + 5 * i, first + i
  local record = ARGV[at + 2] .. version .. '}'
  if events then
    local previous = redis.call('HGET', KEYS[2], ARGV[at]) or 'null'
    append_event(ARGV[at + 4] .. '"previous":' .. previous .. ',"current":' .. record
      .. ',"version":' .. version .. '}')
  end
  redis.call('HSET', KEYS[2], ARGV[at], record)
  redis.call('HSET', KEYS[3], ARGV[at], version)
  redis.call('HDEL', KEYS[12], ARGV[at])
  if cap > 0 then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', cap, '*', 'h', ARGV[at + 3] .. version .. '}')
  end
end
for i = 0, n_rec_del - 1 do
  local at, version = rec_del_at + 4 * i, first + n_rec_put + i
  if events then
    local previous = redis.call('HGET', KEYS[2], ARGV[at]) or 'null'
    append_event(ARGV[at + 3] .. '"previous":' .. previous .. ',"current":null,"version":'
      .. version .. '}')
  end
  redis.call('HDEL', KEYS[2], ARGV[at])
  redis.call('HDEL', KEYS[3], ARGV[at])
  redis.call('HSET', KEYS[12], ARGV[at], version)
  if cap > 0 then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', cap, '*', 'h', ARGV[at + 2] .. version .. '}')
  end
end
if events then
  append_event(ARGV[14] .. '"version":' .. seq .. '}')
  if ARGV[16] ~= '0' then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('XTRIM', KEYS[13], 'MINID', '~', now - tonumber(ARGV[16]))
  end
end
redis.call('SET', KEYS[9], seq, 'PX', ARGV[5])
if ARGV[6] ~= '0' then
  redis.call('SET', KEYS[11], seq, 'PX', ARGV[6])
end
redis.call(ARGV[3], KEYS[5], 'D' .. seq .. ' ' .. ARGV[2])
return {1, seq}
