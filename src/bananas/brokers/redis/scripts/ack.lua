-- Store outcomes and release leases, refusing any whose delivery token is stale.
-- KEYS: 1 leases, 2 scheduled, 3 dead, 4 finished, 5 scheduler wake list
-- ARGV: 1 prefix, 2 now (ms), 3 completed ttl (ms), 4 failed ttl (ms),
--       then per outcome: id, token, kind, attempts, data, traceback, reason, retry_at (ms)
local prefix, now = ARGV[1], ARGV[2]
local res = {}
for i = 5, #ARGV, 8 do
  local id, kind = ARGV[i], ARGV[i + 2]
  local jk = prefix .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'deliveries', 'status', 'watch')
  if cur[1] ~= ARGV[i + 1] or cur[2] ~= 'processing' then
    res[#res + 1] = 0
  else
    redis.call('ZREM', KEYS[1], id)
    if kind == 'completed' then
      redis.call('HSET', jk, 'status', 'completed', 'result', ARGV[i + 4], 'attempts', ARGV[i + 3],
        'finished_at', now, 'unacked', 0)
      redis.call('PEXPIRE', jk, ARGV[3])
      redis.call('ZADD', KEYS[4], now, id)
    elseif kind == 'retry' then
      redis.call('HSET', jk, 'status', 'scheduled', 'error', ARGV[i + 4], 'traceback', ARGV[i + 5],
        'attempts', ARGV[i + 3], 'scheduled_for', ARGV[i + 7], 'unacked', 0)
      redis.call('ZADD', KEYS[2], ARGV[i + 7], id)
      wake_scheduler_if_first(KEYS[2], KEYS[5], ARGV[i + 7])
    else
      redis.call('HSET', jk, 'status', 'failed', 'error', ARGV[i + 4], 'traceback', ARGV[i + 5],
        'reason', ARGV[i + 6], 'attempts', ARGV[i + 3], 'finished_at', now, 'unacked', 0)
      redis.call('PEXPIRE', jk, ARGV[4])
      redis.call('ZADD', KEYS[3], now, id)
    end
    if kind ~= 'retry' and cur[3] then notify_waiter(prefix, id) end
    res[#res + 1] = 1
  end
end
return res
