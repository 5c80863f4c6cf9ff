-- Take back at once the leases of a worker process its supervisor saw die: each job goes
-- back (reclaim_one: a suspect, or ready if never taken), or is dead-lettered worker_lost
-- naming the death, as when a lease expires; its isolation claim, if it had one, is dropped.
-- KEYS: 1 ready, 2 leases, 3 dead, 4 signal, 5 isolator
-- ARGV: 1 prefix, 2 now (ms), 3 worker id prefix ("host:pid:"), 4 how it died ("signal SIGKILL"),
--       5 max deliveries, 6 failed ttl (ms)
-- Returns {recovered, lost}. Reads every lease of the routing key: deaths are rare.
local recovered, lost = 0, 0
local worker_prefix = ARGV[3]
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local cur = redis.call('HMGET', ARGV[1] .. 'job:' .. id, unpack(RECLAIM_FIELDS))
  if cur[1] == 'processing' and cur[6] and string.sub(cur[6], 1, #worker_prefix) == worker_prefix then
    redis.call('ZREM', KEYS[2], id)
    local back = reclaim_one(ARGV[1], KEYS[1], KEYS[3], id, cur, tonumber(ARGV[2]), ARGV[5], ARGV[6],
      'its worker died: ' .. ARGV[4])
    recovered, lost = recovered + back, lost + 1 - back
  end
end
local isolator = redis.call('GET', KEYS[5])
if isolator and string.sub(isolator, 1, #worker_prefix) == worker_prefix then redis.call('DEL', KEYS[5]) end
if recovered > 0 then wake_workers(KEYS[4], recovered) end
return {recovered, lost}
