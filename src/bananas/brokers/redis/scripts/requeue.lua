-- Give leased jobs back to their queue at once (graceful shutdown). The delivery does not
-- count towards max_deliveries.
-- KEYS: 1 ready, 2 leases, 3 signal
-- ARGV: 1 prefix, 2 now (ms), then per lease: id, token
local n = 0
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local jk = ARGV[1] .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'deliveries', 'status', 'prio', 'name')
  if cur[1] == ARGV[i + 1] and cur[2] == 'processing' then
    redis.call('ZREM', KEYS[2], id)
    redis.call('HSET', jk, 'status', 'pending')
    redis.call('HINCRBY', jk, 'unacked', -1)
    ready_add(ARGV[1], KEYS[1], id, ready_score(cur[3], ARGV[2]), cur[4])
    n = n + 1
  end
end
if n > 0 then wake_workers(KEYS[3], n) end
return n
