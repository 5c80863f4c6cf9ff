-- A stopping worker withdraws its offer and takes back what was handed to it meanwhile
-- (the caller gives those jobs back with requeue).
-- KEYS: 1 idle offers, 2 the worker's inbox
-- ARGV: 1 offer ("lease_ms|worker_id")
redis.call('ZREM', KEYS[1], ARGV[1])
local handed = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return handed
