-- Renews a node's lease and reads this server's clock in the same step:
-- the node keeps the time as a lower bound of the server's clock, from
-- which it gives every change a deadline (`commit.lua`).
--
-- KEYS: 1 the lease
-- ARGV: 1 TTL in ms
-- Returns TIME's {seconds, microseconds}.
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return redis.call('TIME')
