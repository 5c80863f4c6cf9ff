-- Scheduler duties for one routing key: due scheduled/retry jobs -> ready; expired leases
-- -> ready, or dead as worker_lost after max_deliveries deliveries without an outcome;
-- expired entries of the dead/finished indexes are dropped.
-- KEYS: 1 ready, 2 scheduled, 3 leases, 4 dead, 5 signal, 6 finished
-- ARGV: 1 prefix, 2 now (ms), 3 limit, 4 max deliveries, 5 failed ttl (ms),
--   6 how long the finished index keeps an entry (ms): the longer of the completed and cancelled TTLs
-- Returns {moved, recovered, lost, next due (ms) or -1}
local prefix, now, limit = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local moved, recovered, lost = 0, 0, 0
local function to_ready(jk, id)
  redis.call('HSET', jk, 'status', 'pending')
  local cur = redis.call('HMGET', jk, 'prio', 'name')
  ready_add(prefix, KEYS[1], id, ready_score(cur[1], now), cur[2])
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[2], id)
  local jk = prefix .. 'job:' .. id
  if redis.call('HGET', jk, 'status') == 'scheduled' then
    to_ready(jk, id)
    moved = moved + 1
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[3], id)
  local jk = prefix .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'status', 'unacked', 'deliveries', 'watch')
  if cur[1] == 'processing' then
    if tonumber(cur[2]) >= tonumber(ARGV[4]) then
      redis.call('HSET', jk, 'status', 'failed', 'reason', 'worker_lost', 'finished_at', ARGV[2],
        'error', 'worker_lost: delivered ' .. cur[3] .. ' times without an outcome (lease expired)',
        'unacked', 0)
      redis.call('PEXPIRE', jk, ARGV[5])
      redis.call('ZADD', KEYS[4], now, id)
      if cur[4] then notify_waiter(prefix, id) end
      lost = lost + 1
    else
      to_ready(jk, id)
      recovered = recovered + 1
    end
  end
end
if moved + recovered > 0 then wake_workers(KEYS[5], moved + recovered) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[5]))
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - tonumber(ARGV[6]))
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -100001)
local next_due = -1
local s = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if s[2] then next_due = tonumber(s[2]) end
local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if l[2] and (next_due < 0 or tonumber(l[2]) < next_due) then next_due = tonumber(l[2]) end
return {moved, recovered, lost, string.format('%.0f', next_due)}
