-- Run the failed, cancelled and skipped nodes of a finished workflow again: each waits
-- for its parents that run again; those with none are enqueued now. A node with
-- callbacks (marked children) keeps its outcome, and a callback runs again only if its
-- condition holds for that outcome.
-- ARGV: 1 workflow id, 2 now (ms). Returns how many nodes run again.
local wf, now = ARGV[1], tonumber(ARGV[2])
local wk = wf_key(wf)
local state = redis.call('HGET', wk .. 'meta', 'state')
if not state or state == 'running' then return 0 end
local order = redis.call('LRANGE', wk .. 'nodes', 0, -1)
local status = {}
for _, node in ipairs(order) do status[node] = redis.call('HGET', wk .. 'status', node) end
-- A node with callbacks keeps its outcome (its callbacks answered it); the others that
-- did not complete are candidates.
local candidate, kept_bad = {}, 0
for _, node in ipairs(order) do
  local st = status[node]
  if st == 'failed' or st == 'cancelled' or st == 'skipped' then
    if string.find(redis.call('HGET', wk .. 'children', node) or '', '[+!*]') then
      kept_bad = kept_bad + 1
    else
      candidate[node] = true
    end
  end
end
-- A callback runs again only when its condition holds for its parent's kept outcome.
local function condition_holds(node)
  for parent in string.gmatch(redis.call('HGET', wk .. 'parents', node) or '', '[^,]+') do
    for entry in string.gmatch(redis.call('HGET', wk .. 'children', parent) or '', '[^,]+') do
      local child, mark = wf_edge(entry)
      if child == node and mark ~= '' and not candidate[parent]
          and not wf_edge_runs(mark, status[parent] == 'completed', '0') then
        return false
      end
    end
  end
  return true
end
local redo, again = {}, {}
for _, node in ipairs(order) do
  if candidate[node] and condition_holds(node) then redo[#redo + 1], again[node] = node, true end
end
if #redo == 0 then return 0 end
for _, node in ipairs(redo) do redis.call('HSET', wk .. 'status', node, 'waiting') end
local ready = {}
for _, node in ipairs(redo) do
  redis.call('HDEL', wk .. 'results', node)
  local waiting = 0
  for parent in string.gmatch(redis.call('HGET', wk .. 'parents', node) or '', '[^,]+') do
    if again[parent] then waiting = waiting + 1 end
  end
  redis.call('HSET', wk .. 'waiting', node, waiting)
  if waiting == 0 then ready[#ready + 1] = node end
end
redis.call('HINCRBY', wk .. 'meta', 'open', #redo)
redis.call('HSET', wk .. 'meta', 'state', 'running', 'bad', kept_bad)
redis.call('HDEL', wk .. 'meta', 'finished_at')
for _, node in ipairs(ready) do wf_release(wk, wf, node, now) end
wf_expire(wk, redis.call('HGET', wk .. 'meta', 'ttl'))
return #redo
