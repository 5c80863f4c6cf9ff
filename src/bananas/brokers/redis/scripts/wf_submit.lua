-- Store a workflow and enqueue its roots, in one step (see the workflow block of _lib.lua).
-- ARGV: 1 workflow id, 2 now (ms), 3 ttl (ms), 4 name, 5 kind, 6 policy, 7 output (JSON),
--       8 created_at (ms), then per node in topological order: node id, spec
--       ("job_id|rk|prio|delay_ms|allow|name"), body, parents, children (comma-separated)
-- Every hash is written with one HSET per 500 nodes, and the roots' ready ids with one
-- ZADD per routing key and 500 jobs, as submit.lua does. Returns the roots enqueued.
local wf, now, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local wk = wf_key(wf)
if redis.call('EXISTS', wk .. 'meta') == 1 then return 0 end  -- a resent submit
local total = (#ARGV - 8) / 5
redis.call('HSET', wk .. 'meta', 'name', ARGV[4], 'kind', ARGV[5], 'policy', ARGV[6], 'output', ARGV[7],
  'created_at', ARGV[8], 'state', 'running', 'total', total, 'open', total, 'bad', 0, 'ttl', ttl)

local pending = {}  -- key -> arguments waiting for one HSET / ZADD / RPUSH
local function later(cmd, key, a, b)
  local buf = pending[key]
  if not buf then
    buf = {cmd = cmd}
    pending[key] = buf
  end
  buf[#buf + 1] = a
  if b ~= nil then buf[#buf + 1] = b end
  if #buf >= 1000 then
    redis.call(cmd, key, unpack(buf))
    pending[key] = {cmd = cmd}
  end
end

local offers, woken, roots = {}, {}, 0
-- A root's job, as submit.lua stores it (with `wf`, `node`, `wfa`, `wfc`).
local function enqueue_root(node, spec, body, children)
  local job_id, rk, prio, delay, allow, name = string.match(spec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local p = 'bananas:{' .. rk .. '}:'
  local jk = p .. 'job:' .. job_id
  if tonumber(delay) > 0 then
    local run_at = string.format('%.0f', now + tonumber(delay))
    redis.call('HSET', jk, 'body', body, 'status', 'scheduled', 'prio', prio, 'scheduled_for', run_at, 'name', name,
      'wf', wf, 'node', node, 'wfa', allow, 'wfc', children)
    redis.call('ZADD', p .. 'scheduled', run_at, job_id)
    wake_if_earliest(p .. 'scheduled', run_at, p .. 'signal')
  else
    redis.call('HSET', jk, 'body', body, 'status', 'pending', 'prio', prio, 'name', name, 'wf', wf, 'node', node,
      'wfa', allow, 'wfc', children)
    if offers[rk] == nil then offers[rk] = redis.call('EXISTS', p .. 'idle') == 1 end
    if offers[rk] then offers[rk] = hand_off(p, p .. 'idle', p .. 'leases', jk, job_id, body, now) end
    if not offers[rk] then
      local score = ready_score(prio, now)
      later('ZADD', p .. 'ready', score, job_id)
      local index = index_of(p, name)
      if index then later('ZADD', index, score, job_id) end
      woken[rk] = (woken[rk] or 0) + 1
    end
  end
  if woken[rk] == nil then woken[rk] = 0 end
  roots = roots + 1
end

for i = 9, #ARGV, 5 do
  local node, spec, body, parents, children = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local waiting = 0
  for _ in string.gmatch(parents, '[^,]+') do waiting = waiting + 1 end
  later('RPUSH', wk .. 'nodes', node)
  later('HSET', wk .. 'waiting', node, waiting)
  later('HSET', wk .. 'spec', node, spec)
  later('HSET', wk .. 'body', node, body)
  if parents ~= '' then later('HSET', wk .. 'parents', node, parents) end
  if children ~= '' then later('HSET', wk .. 'children', node, children) end
  if waiting == 0 then
    enqueue_root(node, spec, body, children)
    later('HSET', wk .. 'status', node, 'enqueued')
  else
    later('HSET', wk .. 'status', node, 'waiting')
  end
end
for key, buf in pairs(pending) do
  if #buf > 0 then redis.call(buf.cmd, key, unpack(buf)) end
end
for rk, n in pairs(woken) do
  if n > 0 then wake_workers('bananas:{' .. rk .. '}:signal', n) end
  redis.call('SADD', 'bananas:routing_keys', rk)
end
wf_expire(wk, ttl)
redis.call('ZADD', 'bananas:workflows', ARGV[8], wf)
return roots
