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
    redis.call('HDEL', jk, 'reason', 'finished_at', 'watch', 'cancel', 'wf', 'node', 'wfa', 'wfc')
    redis.call('DEL', ARGV[1] .. 'notify:' .. id)  -- a token of the old outcome must not end a new wait
    redis.call('PERSIST', jk)
    local cur = redis.call('HMGET', jk, 'prio', 'name')
    ready_add(ARGV[1], KEYS[1], id, ready_score(cur[1], ARGV[2]), cur[2])
    n = n + 1
  end
end
if n > 0 then wake_workers(KEYS[3], n) end
return n
