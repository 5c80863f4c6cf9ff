-- Run the failed, cancelled and skipped nodes of a finished workflow again: each waits
-- for its parents that have not completed; those with none left are enqueued now (a
-- failure callback whose parent completed is not run).
-- ARGV: 1 workflow id, 2 now (ms). Returns how many nodes run again.
local wf, now = ARGV[1], tonumber(ARGV[2])
local wk = wf_key(wf)
local state = redis.call('HGET', wk .. 'meta', 'state')
if not state or state == 'running' then return 0 end
-- A failure callback whose parent completed stays skipped: its condition cannot hold.
local function unmet_failure_callback(node)
  for parent in string.gmatch(redis.call('HGET', wk .. 'parents', node) or '', '[^,]+') do
    if redis.call('HGET', wk .. 'status', parent) == 'completed' then
      for entry in string.gmatch(redis.call('HGET', wk .. 'children', parent) or '', '[^,]+') do
        if entry == node .. '!' then return true end
      end
    end
  end
  return false
end
local redo = {}
for _, node in ipairs(redis.call('LRANGE', wk .. 'nodes', 0, -1)) do
  local st = redis.call('HGET', wk .. 'status', node)
  if (st == 'failed' or st == 'cancelled' or st == 'skipped') and not unmet_failure_callback(node) then
    redo[#redo + 1] = node
  end
end
if #redo == 0 then return 0 end
for _, node in ipairs(redo) do redis.call('HSET', wk .. 'status', node, 'waiting') end
local ready = {}
for _, node in ipairs(redo) do
  redis.call('HDEL', wk .. 'results', node)
  local waiting = 0
  for parent in string.gmatch(redis.call('HGET', wk .. 'parents', node) or '', '[^,]+') do
    if redis.call('HGET', wk .. 'status', parent) ~= 'completed' then waiting = waiting + 1 end
  end
  redis.call('HSET', wk .. 'waiting', node, waiting)
  if waiting == 0 then ready[#ready + 1] = node end
end
redis.call('HINCRBY', wk .. 'meta', 'open', #redo)
redis.call('HSET', wk .. 'meta', 'state', 'running', 'bad', 0)
redis.call('HDEL', wk .. 'meta', 'finished_at')
for _, node in ipairs(ready) do wf_release(wk, wf, node, now) end
wf_expire(wk, redis.call('HGET', wk .. 'meta', 'ttl'))
return #redo
