-- A consistent cut of a tenant: seq, every record, settings, epoch.
--
-- KEYS: 1 seq, 2 records, 3 settings, 4 epoch
return {redis.call('GET', KEYS[1]), redis.call('HVALS', KEYS[2]),
        redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4])}
