-- Shared helpers, prepended to every script when it is loaded (see broker.py).

-- Ready-queue score: strict priority (higher first), then enqueue time in ms (FIFO).
local function ready_score(prio, now_ms)
  return string.format('%.0f', (100 - (tonumber(prio) or 50)) * 1e13 + tonumber(now_ms))
end

-- The ready jobs of a name are also in ready:name:<name> (same scores as ready) once a
-- job-specialized worker has asked for that name (dequeue_filtered.lua registers it in
-- `indexed`), so that worker takes its job types without looking at any other job;
-- names no such worker asked for cost nothing.
local function index_of(prefix, name)
  if name and redis.call('HEXISTS', prefix .. 'indexed', name) == 1 then return prefix .. 'ready:name:' .. name end
  return nil
end

local function ready_add(prefix, ready_key, id, score, name)
  redis.call('ZADD', ready_key, score, id)
  local index = index_of(prefix, name)
  if index then redis.call('ZADD', index, score, id) end
end

local function ready_unindex(prefix, id, name)
  if name then redis.call('ZREM', prefix .. 'ready:name:' .. name, id) end
end

-- Push up to n wake-up tokens for idle workers, keeping at most 16 in the list.
local function wake_workers(signal_key, n)
  local room = 16 - redis.call('LLEN', signal_key)
  for _ = 1, math.min(n, room) do redis.call('LPUSH', signal_key, 1) end
end

-- When run_at is now the earliest scheduled time, wake one idle worker of the routing key
-- (its next dequeue learns the new due time and waits for it).
local function wake_if_earliest(scheduled_key, run_at, signal_key)
  local first = redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')
  if tonumber(first[2]) >= tonumber(run_at) then
    wake_workers(signal_key, 1)
  end
end

-- Tell a waiter (client.wait) that the job reached a terminal status.
local function notify_waiter(prefix, id)
  redis.call('LPUSH', prefix .. 'notify:' .. id, 1)
  redis.call('EXPIRE', prefix .. 'notify:' .. id, 300)
end

-- Cancel a pending or scheduled job (`name` its name, `watched` its watch flag): out of
-- ready, suspects, its name index and scheduled; its record cancelled, kept `ttl_s`.
local function cancel_queued(prefix, id, name, watched, now, ttl_s)
  redis.call('ZREM', prefix .. 'ready', id)
  redis.call('ZREM', prefix .. 'suspects', id)
  ready_unindex(prefix, id, name)
  redis.call('ZREM', prefix .. 'scheduled', id)
  local jk = prefix .. 'job:' .. id
  redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', now)
  redis.call('EXPIRE', jk, ttl_s)
  redis.call('ZADD', prefix .. 'finished', now, id)
  if watched then notify_waiter(prefix, id) end
end

-- Hand a ready job straight to an idle worker that offered to take one (dequeue.lua):
-- lease it as dequeue.lua would and push "deadline_ms|#id|" .. id .. body onto the worker's inbox,
-- which the worker is blocked on. Takes the freshest live offer; returns false when
-- none is left. Offers expire, so a worker that died while idle gets at most one job
-- (recovered when its lease runs out).
local function hand_off(prefix, idle_key, leases_key, jk, id, body, now)
  local offer = redis.call('ZREVRANGEBYSCORE', idle_key, '+inf', now, 'LIMIT', 0, 1)[1]
  if offer == nil then
    redis.call('ZREMRANGEBYSCORE', idle_key, '-inf', now)
    return false
  end
  redis.call('ZREM', idle_key, offer)
  local sep = string.find(offer, '|', 1, true)
  local worker = string.sub(offer, sep + 1)
  local deadline = now + tonumber(string.sub(offer, 1, sep - 1))
  local stamp = string.format('%.0f', deadline)
  redis.call('HSET', jk, 'status', 'processing', 'started_at', now, 'worker', worker, 'deliveries', 1,
    'unacked', 1, 'handed', stamp)
  redis.call('ZADD', leases_key, deadline, id)
  local inbox = prefix .. 'inbox:' .. worker
  redis.call('RPUSH', inbox, stamp .. '|' .. #id .. '|' .. id .. body)
  -- Kept a minute past the lease, so that reclaim_leases can tell a job never taken.
  redis.call('PEXPIRE', inbox, deadline - now + 60000)
  return true
end

-- Scheduler duties for one routing key, shared by the leader's tick and by every worker's
-- dequeue (so recovery never waits for a leader). `now` is in ms.
local function to_ready(prefix, ready_key, jk, id, now)
  redis.call('HSET', jk, 'status', 'pending')
  local cur = redis.call('HMGET', jk, 'prio', 'name')
  ready_add(prefix, ready_key, id, ready_score(cur[1], now), cur[2])
end

-- Due delayed/retry jobs -> ready (at most `limit`); returns how many moved.
local function move_due(prefix, ready_key, scheduled_key, now, limit)
  local moved = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZREM', scheduled_key, id)
    local jk = prefix .. 'job:' .. id
    if redis.call('HGET', jk, 'status') == 'scheduled' then
      to_ready(prefix, ready_key, jk, id, now)
      moved = moved + 1
    end
  end
  return moved
end

-- A job recovered from a lost worker is a suspect: it waits in `suspects` (status pending)
-- until a worker holding no other job takes it (dequeue_alone.lua), so that a death during
-- that delivery is its own.
local function to_suspects(prefix, jk, id, now)
  redis.call('HSET', jk, 'status', 'pending')
  redis.call('ZADD', prefix .. 'suspects', now, id)
end

-- Workflows (docs/WORKFLOWS.md). A workflow's keys share the prefix bananas:wf:{<id>}:
-- meta (hash: name, kind, policy, state, created_at, finished_at, output, total, open =
-- nodes not ended, bad = nodes ended failed/skipped/cancelled without allow_failure),
-- nodes (list, topological order), and hashes by node id: status, waiting (parents not
-- ended), spec ("job_id|rk|prio|delay_ms|allow|name"), body (the encoded job), parents
-- and children (comma-separated ids), results (a result, or a failed node's error
-- object); notify (list) wakes waiters. A node's job hash carries `wf` and `node`, so
-- the outcome that ends it (ack, a lease lost as worker_lost, a cancel) moves the
-- workflow on in the same script.
local WF_KEYS = {'meta', 'nodes', 'status', 'waiting', 'spec', 'body', 'parents', 'children', 'results'}

local function wf_key(wf) return 'bananas:wf:{' .. wf .. '}:' end

-- How long a node job cancelled by its workflow is kept (brokers.base.CANCELLED_TTL_S).
local CANCELLED_TTL_S = 3600

local function wf_spec(wk, node)
  local spec = redis.call('HGET', wk .. 'spec', node)
  local job_id, rk, prio, delay, allow, name = string.match(spec, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return {job_id = job_id, rk = rk, prio = prio, delay = tonumber(delay), allow = allow == '1', name = name}
end

local function wf_expire(wk, ttl)
  for _, k in ipairs(WF_KEYS) do redis.call('PEXPIRE', wk .. k, ttl) end
end

-- Enqueue a node's job (its parents have ended): as submit.lua would, handed to an idle
-- worker when one offered.
local function wf_release(wk, wf, node, now)
  local s = wf_spec(wk, node)
  local p = 'bananas:{' .. s.rk .. '}:'
  local jk = p .. 'job:' .. s.job_id
  local body = redis.call('HGET', wk .. 'body', node)
  local children = redis.call('HGET', wk .. 'children', node) or ''
  local allow = s.allow and '1' or '0'
  if redis.call('DEL', jk) == 1 then redis.call('ZREM', p .. 'dead', s.job_id) end  -- a node run again (retry)
  if s.delay > 0 then
    local run_at = string.format('%.0f', now + s.delay)
    redis.call('HSET', jk, 'body', body, 'status', 'scheduled', 'prio', s.prio, 'scheduled_for', run_at,
      'name', s.name, 'wf', wf, 'node', node, 'wfa', allow, 'wfc', children)
    redis.call('ZADD', p .. 'scheduled', run_at, s.job_id)
    wake_if_earliest(p .. 'scheduled', run_at, p .. 'signal')
  else
    redis.call('HSET', jk, 'body', body, 'status', 'pending', 'prio', s.prio, 'name', s.name, 'wf', wf, 'node', node,
      'wfa', allow, 'wfc', children)
    local idle = p .. 'idle'
    if not (redis.call('EXISTS', idle) == 1 and hand_off(p, idle, p .. 'leases', jk, s.job_id, body, now)) then
      ready_add(p, p .. 'ready', s.job_id, ready_score(s.prio, now), s.name)
      wake_workers(p .. 'signal', 1)
    end
  end
  redis.call('SADD', 'bananas:routing_keys', s.rk)
  redis.call('HSET', wk .. 'status', node, 'enqueued')
end

local function wf_end_node(wk, node, status, value, bad)
  redis.call('HSET', wk .. 'status', node, status)
  if value then redis.call('HSET', wk .. 'results', node, value) end
  redis.call('HINCRBY', wk .. 'meta', 'open', -1)
  if bad then redis.call('HINCRBY', wk .. 'meta', 'bad', 1) end
end

local function wf_set_state(wk, state, now)
  redis.call('HSET', wk .. 'meta', 'state', state, 'finished_at', string.format('%.0f', now))
  wf_expire(wk, redis.call('HGET', wk .. 'meta', 'ttl'))
  redis.call('LPUSH', wk .. 'notify', 1)
  redis.call('EXPIRE', wk .. 'notify', 300)
end

local function wf_error(job_id, error, reason)
  return cjson.encode({error = error, reason = reason, job_id = job_id})
end

-- End the workflow as `state`: waiting nodes and jobs not started are cancelled, running
-- jobs get their cancel flag (their outcomes are still recorded).
local function wf_stop(wk, state, now)
  for _, node in ipairs(redis.call('LRANGE', wk .. 'nodes', 0, -1)) do
    local st = redis.call('HGET', wk .. 'status', node)
    if st == 'waiting' then
      wf_end_node(wk, node, 'cancelled', false, true)
    elseif st == 'enqueued' then
      local s = wf_spec(wk, node)
      local p = 'bananas:{' .. s.rk .. '}:'
      local jk = p .. 'job:' .. s.job_id
      local cur = redis.call('HMGET', jk, 'status', 'watch')
      if cur[1] == 'processing' then
        redis.call('HSET', jk, 'cancel', 1)
      elseif cur[1] == 'pending' or cur[1] == 'scheduled' then
        cancel_queued(p, s.job_id, s.name, cur[2], string.format('%.0f', now), CANCELLED_TTL_S)
        wf_end_node(wk, node, 'cancelled', wf_error(s.job_id, 'cancelled', 'cancelled'), true)
      end
    end
  end
  wf_set_state(wk, state, now)
end

-- A stored child entry: its node id and mark ('' for an ordinary child; a callback's
-- condition on its parent's outcome: '+' success, '!' failure, '*' always).
local function wf_edge(entry)
  local last = string.sub(entry, -1)
  if last == '+' or last == '!' or last == '*' then return string.sub(entry, 1, -2), last end
  return entry, ''
end

-- Whether a child may run after its parent ended (brokers.workflow.edge_runs).
local function wf_edge_runs(mark, completed, allow)
  if mark == '' then return completed or allow == '1' end
  return mark == '*' or completed == (mark == '+')
end

-- Skip the waiting nodes in `todo` (a list of ids) and their waiting descendants: below
-- a failed node (policy `continue`, `bad`), or callbacks whose condition did not hold.
local function wf_skip_below(wk, todo, bad)
  while #todo > 0 do
    local node = table.remove(todo)
    if redis.call('HGET', wk .. 'status', node) == 'waiting' then
      wf_end_node(wk, node, 'skipped', false, bad)
      for entry in string.gmatch(redis.call('HGET', wk .. 'children', node) or '', '[^,]+') do
        todo[#todo + 1] = wf_edge(entry)
      end
    end
  end
end

-- Nodes' jobs of one workflow ended: `items` are {node, status (completed, failed or
-- cancelled), value (the result or error object), allow, children} (allow and children
-- from the job record's `wfa` and `wfc`; nil: read from the workflow). Record them (in one
-- command per hash however many), then enqueue the children they were the last parents
-- of, or apply the failure policy, and end the workflow when no node is left open.
-- At most 500 items per call (unpack's stack).
local function wf_finish(wf, items, now)
  local wk = wf_key(wf)
  -- Each item is a node whose job this script just moved out of processing or pending
  -- (fenced by the job's own status and token), so it is `enqueued`: no node ends twice.
  -- (retry_dead.lua strips `wf` from a node's job it revives: its new outcome is its own.)
  local st, res, failed = {}, {}, {}
  for _, it in ipairs(items) do
    if it.allow == nil then it.allow = wf_spec(wk, it.node).allow and '1' or '0' end
    if it.children == nil then it.children = redis.call('HGET', wk .. 'children', it.node) or '' end
    st[#st + 1], st[#st + 2] = it.node, it.status
    if it.value then res[#res + 1], res[#res + 2] = it.node, it.value end
    if it.status ~= 'completed' and it.allow ~= '1' then failed[#failed + 1] = it end
  end
  if #items == 0 then return end
  redis.call('HSET', wk .. 'status', unpack(st))
  if #res > 0 then redis.call('HSET', wk .. 'results', unpack(res)) end
  local open = redis.call('HINCRBY', wk .. 'meta', 'open', -#items)
  if #failed > 0 then redis.call('HINCRBY', wk .. 'meta', 'bad', #failed) end
  if redis.call('HGET', wk .. 'meta', 'state') ~= 'running' then return end
  if #failed > 0 and redis.call('HGET', wk .. 'meta', 'policy') == 'fail_fast' then
    wf_stop(wk, 'failed', now)
    return
  end
  local dec, order, unmet = {}, {}, {}
  for _, it in ipairs(items) do
    local completed = it.status == 'completed'
    for entry in string.gmatch(it.children, '[^,]+') do
      local child, mark = wf_edge(entry)
      if wf_edge_runs(mark, completed, it.allow) then
        if not dec[child] then dec[child], order[#order + 1] = 0, child end
        dec[child] = dec[child] + 1
      elseif mark ~= '' then
        unmet[#unmet + 1] = child
      end
    end
  end
  for _, child in ipairs(order) do
    if redis.call('HINCRBY', wk .. 'waiting', child, -dec[child]) <= 0
        and redis.call('HGET', wk .. 'status', child) == 'waiting' then
      wf_release(wk, wf, child, now)
    end
  end
  if #unmet > 0 or #failed > 0 then
    wf_skip_below(wk, unmet, false)
    for _, it in ipairs(failed) do
      local below = {}
      for entry in string.gmatch(it.children, '[^,]+') do below[#below + 1] = wf_edge(entry) end
      wf_skip_below(wk, below, true)
    end
    open = tonumber(redis.call('HGET', wk .. 'meta', 'open'))
  end
  if open <= 0 then
    wf_set_state(wk, tonumber(redis.call('HGET', wk .. 'meta', 'bad')) > 0 and 'failed' or 'completed', now)
  end
end

-- One node's job ended (see wf_finish).
local function wf_done(wf, node, status, value, now)
  wf_finish(wf, {{node = node, status = status, value = value}}, now)
end

-- Collect ended nodes by workflow (`pending`: workflow id -> items), finishing a
-- workflow's batch once it holds 500.
local function wf_collect(pending, wf, item, now)
  local items = pending[wf]
  if not items then
    items = {}
    pending[wf] = items
  end
  items[#items + 1] = item
  if #items >= 500 then
    wf_finish(wf, items, now)
    pending[wf] = {}
  end
end

-- A lease whose worker is gone (`cur` = HMGET of RECLAIM_FIELDS): a job its worker never
-- took goes back to ready uncharged; a job that ran alone (`alone` = this delivery) and was
-- delivered `max_deliveries` times without an outcome is dead-lettered worker_lost (`why`
-- says how the worker was lost); any other becomes a suspect. Returns 1 if it went back,
-- 0 if it was dead-lettered. The caller removed the lease.
local function reclaim_one(prefix, ready_key, dead_key, id, cur, now, max_deliveries, failed_ttl, why)
  local jk = prefix .. 'job:' .. id
  local unacked = tonumber(cur[2]) or 0
  if cur[5] then  -- handed off: still in the inbox means its worker never took it
    redis.call('HDEL', jk, 'handed')
    local entry = cur[5] .. '|' .. #id .. '|' .. id .. redis.call('HGET', jk, 'body')
    if redis.call('LREM', prefix .. 'inbox:' .. cur[6], 1, entry) == 1 then
      redis.call('HSET', jk, 'unacked', unacked - 1)  -- a delivery that reached no handler is not charged
      to_ready(prefix, ready_key, jk, id, now)
      return 1
    end
  end
  if cur[7] == cur[3] and unacked >= tonumber(max_deliveries) then
    redis.call('HSET', jk, 'status', 'failed', 'reason', 'worker_lost', 'finished_at', string.format('%.0f', now),
      'error', 'worker_lost: delivered ' .. cur[3] .. ' times without an outcome (' .. why .. ')', 'unacked', 0)
    redis.call('PEXPIRE', jk, failed_ttl)
    redis.call('ZADD', dead_key, now, id)
    if cur[4] then notify_waiter(prefix, id) end
    if cur[8] then
      wf_done(cur[8], cur[9], 'failed', wf_error(id, 'worker_lost: delivered ' .. cur[3] .. ' times without an outcome ('
        .. why .. ')', 'worker_lost'), now)
    end
    return 0
  end
  to_suspects(prefix, jk, id, now)
  return 1
end

local RECLAIM_FIELDS = {'status', 'unacked', 'deliveries', 'watch', 'handed', 'worker', 'alone', 'wf', 'node'}

-- Expired leases (at most `limit`) -> ready or dead (reclaim_one). Returns recovered, lost.
local function reclaim_leases(prefix, ready_key, leases_key, dead_key, now, limit, max_deliveries, failed_ttl)
  local recovered, lost = 0, 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZREM', leases_key, id)
    local cur = redis.call('HMGET', prefix .. 'job:' .. id, unpack(RECLAIM_FIELDS))
    if cur[1] == 'processing' then
      local back = reclaim_one(prefix, ready_key, dead_key, id, cur, now, max_deliveries, failed_ttl, 'lease expired')
      recovered, lost = recovered + back, lost + 1 - back
    end
  end
  return recovered, lost
end

-- The earliest score of a sorted set, or nil when it is empty.
local function first_score(key)
  local s = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(s[2])
end

-- When the next delayed job or lease of one routing key falls due (ms), or -1.
local function next_due(scheduled_key, leases_key)
  local s, l = first_score(scheduled_key), first_score(leases_key)
  if s and (not l or s < l) then return string.format('%.0f', s) end
  if l then return string.format('%.0f', l) end
  return '-1'
end

-- Whether suspect `id` is one a worker serving `names` (a set; empty = any) may run.
local function serves(prefix, names, id)
  return next(names) == nil or names[redis.call('HGET', prefix .. 'job:' .. id, 'name')] ~= nil
end

-- Whether `worker` (serving `names`) has or now takes the duty to run this routing key's
-- suspects alone: only when there are some it serves, and only one worker at a time (the
-- claim lasts `ttl_ms` and is renewed by each dequeue_alone.lua), so the others keep their
-- full speed.
local function claim_isolation(prefix, worker, ttl_ms, names)
  local key = prefix .. 'isolator'
  local holder = redis.call('GET', key)
  if holder and holder ~= worker then return false end
  local found = false
  for _, id in ipairs(redis.call('ZRANGE', prefix .. 'suspects', 0, 99)) do
    if serves(prefix, names, id) then
      found = true
      break
    end
  end
  if found then redis.call('SET', key, worker, 'PX', math.max(1, ttl_ms)) end
  return found
end
