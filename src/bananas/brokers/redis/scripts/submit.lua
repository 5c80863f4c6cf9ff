-- Store jobs and make them ready or scheduled. One call per batch.
-- KEYS: 1 ready, 2 scheduled, 3 signal, 4 routing-key set,
--       5 idle offers, 6 leases (5 and 6 default to the routing key's own)
-- ARGV: 1 key prefix "bananas:{rk}:", 2 routing key, 3 now (ms), 4 watch (0|1), then
--       runs of jobs that share priority, run_at and name: n, priority, run_at (ms,
--       0 = now), name, then n times id, body (a batch is usually one run)
-- Per job one EXISTS and one HSET; ready ids go to `ready` (and to their name's index
-- when a job-specialized worker asked for it) with one ZADD per 500 jobs (score and
-- index are looked up once per run). While idle workers have offered to take jobs
-- (dequeue.lua registers them), ready jobs are handed straight to them (hand_off).
local prefix, now, watch = ARGV[1], tonumber(ARGV[3]), ARGV[4] == '1'
local ready_n, earliest = 0, nil
local ready = {}
local single = #ARGV == 10  -- one job: no batching tables (a tenth of a one-job call)
local idle_key, leases_key = KEYS[5] or prefix .. 'idle', KEYS[6] or prefix .. 'leases'
local offers = redis.call('EXISTS', idle_key) == 1

-- Add to a pending ZADD of `key`, sent when it holds 500 members (unpack()'s stack limit).
local function zadd_later(pending, key, score, id)
  local n = #pending
  pending[n + 1] = score
  pending[n + 2] = id
  if n + 2 >= 1000 then
    redis.call('ZADD', key, unpack(pending))
    for j = n + 2, 1, -1 do pending[j] = nil end
  end
end

local i = 5
while i <= #ARGV do
  local n, prio, run_at, name = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local later = tonumber(run_at) > now
  local score, index_key, index = nil, index_of(prefix, name), {}
  if later and (earliest == nil or tonumber(run_at) < earliest) then earliest = tonumber(run_at) end
  for j = i + 4, i + 2 + 2 * n, 2 do
    local id, body = ARGV[j], ARGV[j + 1]
    local jk = prefix .. 'job:' .. id
    -- A repeated id (a resent batch) is a no-op; counters start missing (= 0).
    if redis.call('EXISTS', jk) == 0 then
      if later then
        redis.call('HSET', jk, 'body', body, 'status', 'scheduled', 'prio', prio, 'scheduled_for', run_at,
          'name', name)
        redis.call('ZADD', KEYS[2], run_at, id)
      else
        redis.call('HSET', jk, 'body', body, 'status', 'pending', 'prio', prio, 'name', name)
        if offers then offers = hand_off(prefix, idle_key, leases_key, jk, id, body, now) end
        if offers then
          -- handed to a worker: neither ready nor a wake-up token
        elseif single then
          ready_add(prefix, KEYS[1], id, ready_score(prio, now), name)
          ready_n = ready_n + 1
        else
          if score == nil then score = ready_score(prio, now) end
          zadd_later(ready, KEYS[1], score, id)
          if index_key then zadd_later(index, index_key, score, id) end
          ready_n = ready_n + 1
        end
      end
      if watch then redis.call('HSET', jk, 'watch', 1) end
    end
  end
  if #index > 0 then redis.call('ZADD', index_key, unpack(index)) end
  i = i + 4 + 2 * n
end
if #ready > 0 then redis.call('ZADD', KEYS[1], unpack(ready)) end
if ready_n > 0 then wake_workers(KEYS[3], ready_n) end
if earliest ~= nil then wake_if_earliest(KEYS[2], earliest, KEYS[3]) end
redis.call('SADD', KEYS[4], ARGV[2])
return ready_n
