-- Scheduler duties for one routing key: due scheduled/retry jobs -> ready; expired leases
-- -> ready, or dead as worker_lost after max_deliveries deliveries without an outcome;
-- expired entries of the dead/finished indexes are dropped.
-- KEYS: 1 ready, 2 scheduled, 3 leases, 4 dead, 5 signal, 6 finished
-- ARGV: 1 prefix, 2 now (ms), 3 limit, 4 max deliveries, 5 failed ttl (ms),
--   6 how long the finished index keeps an entry (ms): the longer of the completed and cancelled TTLs
-- Returns {moved, recovered, lost, next due (ms) or -1}
local prefix, now, limit = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local moved = move_due(prefix, KEYS[1], KEYS[2], now, limit)
local recovered, lost = reclaim_leases(prefix, KEYS[1], KEYS[3], KEYS[4], now, limit, ARGV[4], ARGV[5])
if moved + recovered > 0 then wake_workers(KEYS[5], moved + recovered) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[5]))
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - tonumber(ARGV[6]))
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -100001)
return {moved, recovered, lost, next_due(KEYS[2], KEYS[3])}
