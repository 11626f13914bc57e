-- A consistent cut of a tenant: seq, every record, settings, epoch, and
-- the directory (version, users, channels).
--
-- KEYS: 1 seq, 2 records, 3 settings, 4 epoch, 5 directory version,
--       6 directory users, 7 directory channels, 8 removed agents (id → seq)
return {redis.call('GET', KEYS[1]), redis.call('HVALS', KEYS[2]),
        redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4]),
        redis.call('GET', KEYS[5]), redis.call('HVALS', KEYS[6]),
        redis.call('HVALS', KEYS[7]), redis.call('HGETALL', KEYS[8])}
