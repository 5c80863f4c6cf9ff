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

-- Wake the scheduler leader when run_at is now the earliest scheduled time.
local function wake_scheduler_if_first(scheduled_key, wake_key, run_at)
  local first = redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')
  if tonumber(first[2]) >= tonumber(run_at) then
    redis.call('LPUSH', wake_key, 1)
    redis.call('LTRIM', wake_key, 0, 3)
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
  redis.call('HSET', jk, 'status', 'processing', 'started_at', now, 'worker', worker, 'deliveries', 1,
    'unacked', 1)
  redis.call('ZADD', leases_key, deadline, id)
  local inbox = prefix .. 'inbox:' .. worker
  redis.call('RPUSH', inbox, string.format('%.0f|%d|', deadline, #id) .. id .. body)
  redis.call('PEXPIRE', inbox, deadline - now)
  return true
end
