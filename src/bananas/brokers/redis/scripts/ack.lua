-- Store outcomes and release leases, refusing any whose delivery token is stale.
-- KEYS: 1 leases, 2 scheduled, 3 dead, 4 finished
-- ARGV: 1 prefix, 2 now (ms), 3 completed ttl (ms), 4 failed ttl (ms), 5 number of completed outcomes N,
--       then N completed outcomes as: id, token, attempts, result
--       then the other outcomes (retry, failed, cancelled) as: id, token, kind, attempts, error, traceback,
--       reason, retry_at (ms)
-- Returns 1 (stored) or 0 (refused) per outcome, in that order.
local prefix, now = ARGV[1], ARGV[2]
local res = {}
-- Lease releases and `finished` entries go out in one ZREM / ZADD per 500 jobs.
local released, finished = {}, {}
-- Workflow nodes that ended: workflow id -> items, finished together (wf_finish in _lib.lua).
local ended = {}

local function flush()
  if #released > 0 then redis.call('ZREM', KEYS[1], unpack(released)) end
  if #finished > 0 then redis.call('ZADD', KEYS[4], unpack(finished)) end
  released, finished = {}, {}
end

-- The job's hash key, watch flag and workflow (id, node) when this delivery still holds
-- it, else nil.
local function held(id, token)
  local jk = prefix .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'deliveries', 'status', 'watch', 'wf', 'node', 'wfa', 'wfc')
  if cur[1] ~= token or cur[2] ~= 'processing' then
    res[#res + 1] = 0
    return nil
  end
  released[#released + 1] = id
  if #released >= 500 then flush() end
  res[#res + 1] = 1
  return jk, cur[3], cur[4], cur[5], cur[6], cur[7]
end

local first_other = 6 + 4 * tonumber(ARGV[5])
for i = 6, first_other - 1, 4 do
  local id = ARGV[i]
  local jk, watch, wf, node, allow, children = held(id, ARGV[i + 1])
  if jk then
    redis.call('HSET', jk, 'status', 'completed', 'result', ARGV[i + 3], 'attempts', ARGV[i + 2],
      'finished_at', now, 'unacked', 0)
    redis.call('PEXPIRE', jk, ARGV[3])
    finished[#finished + 1] = now
    finished[#finished + 1] = id
    if watch then notify_waiter(prefix, id) end
    if wf then
      wf_collect(ended, wf, {node = node, status = 'completed', value = ARGV[i + 3], allow = allow, children = children},
        tonumber(now))
    end
  end
end

for i = first_other, #ARGV, 8 do
  local id, kind = ARGV[i], ARGV[i + 2]
  local jk, watch, wf, node, allow, children = held(id, ARGV[i + 1])
  if jk and kind == 'retry' then
    redis.call('HSET', jk, 'status', 'scheduled', 'error', ARGV[i + 4], 'traceback', ARGV[i + 5],
      'attempts', ARGV[i + 3], 'scheduled_for', ARGV[i + 7], 'unacked', 0)
    redis.call('ZADD', KEYS[2], ARGV[i + 7], id)
    wake_if_earliest(KEYS[2], ARGV[i + 7], prefix .. 'signal')
  elseif jk and kind == 'cancelled' then  -- expired before it started, or cancelled while running
    redis.call('HSET', jk, 'status', 'cancelled', 'error', ARGV[i + 4], 'reason', ARGV[i + 6],
      'attempts', ARGV[i + 3], 'finished_at', now, 'unacked', 0)
    redis.call('EXPIRE', jk, CANCELLED_TTL_S)
    finished[#finished + 1] = now
    finished[#finished + 1] = id
    if watch then notify_waiter(prefix, id) end
    if wf then
      local value = wf_error(id, ARGV[i + 4], ARGV[i + 6])
      wf_collect(ended, wf, {node = node, status = 'cancelled', value = value, allow = allow, children = children},
        tonumber(now))
    end
  elseif jk then
    redis.call('HSET', jk, 'status', 'failed', 'error', ARGV[i + 4], 'traceback', ARGV[i + 5],
      'reason', ARGV[i + 6], 'attempts', ARGV[i + 3], 'finished_at', now, 'unacked', 0)
    redis.call('PEXPIRE', jk, ARGV[4])
    redis.call('ZADD', KEYS[3], now, id)
    if watch then notify_waiter(prefix, id) end
    if wf then
      local value = wf_error(id, ARGV[i + 4], ARGV[i + 6])
      wf_collect(ended, wf, {node = node, status = 'failed', value = value, allow = allow, children = children}, tonumber(now))
    end
  end
end
flush()
for wf, items in pairs(ended) do
  if #items > 0 then wf_finish(wf, items, tonumber(now)) end
end
return res
