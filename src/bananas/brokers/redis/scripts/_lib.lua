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
    return 0
  end
  to_suspects(prefix, jk, id, now)
  return 1
end

local RECLAIM_FIELDS = {'status', 'unacked', 'deliveries', 'watch', 'handed', 'worker', 'alone'}

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
