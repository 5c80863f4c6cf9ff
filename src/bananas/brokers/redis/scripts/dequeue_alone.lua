-- Lease one suspect (a job recovered from a lost worker, see to_suspects in _lib.lua) to a
-- worker that holds no other job, so it runs alone: `alone` records this delivery, and a
-- death during it is charged to this job alone (reclaim_one). Renews the worker's
-- isolation claim; when no suspect it serves is left, drops the claim (waking a worker to
-- take the duty if others are left) and returns false.
-- KEYS: 1 suspects, 2 leases, 3 isolator, 4 signal
-- ARGV: 1 prefix, 2 now (ms), 3 lease deadline (ms), 4 worker id, 5 claim ttl (ms),
--       then the names the worker serves (none = any)
-- Returns {id, body, attempts, token} or false.
local names = {}
for i = 6, #ARGV do names[ARGV[i]] = true end
local paused = redis.call('EXISTS', ARGV[1] .. 'paused') == 1  -- (pause.lua): no suspect runs
for _, id in ipairs(paused and {} or redis.call('ZRANGE', KEYS[1], 0, 99)) do
  local jk = ARGV[1] .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'status', 'body', 'attempts', 'deliveries', 'unacked')
  if cur[1] ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)  -- a stale entry
  elseif serves(ARGV[1], names, id) then
    redis.call('ZREM', KEYS[1], id)
    local d = (tonumber(cur[4]) or 0) + 1
    redis.call('HSET', jk, 'status', 'processing', 'started_at', ARGV[2], 'worker', ARGV[4], 'deliveries', d,
      'unacked', (tonumber(cur[5]) or 0) + 1, 'alone', d)
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
    return {id, cur[2], cur[3] or 0, d}
  end
end
if redis.call('GET', KEYS[3]) == ARGV[4] then
  redis.call('DEL', KEYS[3])
  if not paused and redis.call('ZCARD', KEYS[1]) > 0 then wake_workers(KEYS[4], 1) end
end
return false
