-- Cancel a job: pending/scheduled ones are removed and never run; a processing one gets
-- its cancel flag (the worker sees it at the next lease renewal). Returns the old status.
-- KEYS: 1 ready, 2 scheduled, 3 finished
-- ARGV: 1 prefix, 2 id, 3 now (ms), 4 ttl (s)
local jk = ARGV[1] .. 'job:' .. ARGV[2]
local cur = redis.call('HMGET', jk, 'status', 'watch', 'name', 'wf', 'node')
local st = cur[1]
if not st then return false end
if st == 'pending' or st == 'scheduled' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('ZREM', ARGV[1] .. 'suspects', ARGV[2])
  ready_unindex(ARGV[1], ARGV[2], cur[3])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', ARGV[3])
  redis.call('EXPIRE', jk, ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
  if cur[2] then notify_waiter(ARGV[1], ARGV[2]) end
  if cur[4] then wf_done(cur[4], cur[5], 'cancelled', wf_error(ARGV[2], 'cancelled', 'cancelled'), tonumber(ARGV[3])) end
elseif st == 'processing' then
  redis.call('HSET', jk, 'cancel', 1)
end
return st
