-- Move dead-lettered jobs back to ready with a fresh retry budget.
-- KEYS: 1 ready, 2 dead, 3 signal
-- ARGV: 1 prefix, 2 now (ms), then ids (none = all)
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[2], 0, -1)
end
local n = 0
for _, id in ipairs(ids) do
  local jk = ARGV[1] .. 'job:' .. id
  if redis.call('ZREM', KEYS[2], id) == 1 and redis.call('HGET', jk, 'status') == 'failed' then
    redis.call('HSET', jk, 'status', 'pending', 'attempts', 0, 'unacked', 0)
    redis.call('HDEL', jk, 'reason', 'finished_at', 'watch')
    redis.call('PERSIST', jk)
    redis.call('ZADD', KEYS[1], ready_score(redis.call('HGET', jk, 'prio'), ARGV[2]), id)
    n = n + 1
  end
end
if n > 0 then wake_workers(KEYS[3], n) end
return n
