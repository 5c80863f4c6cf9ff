-- Submit jobs that carry a unique key (docs/FLOW_CONTROL.md): a job is stored only when no
-- job holds its key, else the holder's id is returned in its place. `unique:<key>` holds
-- "<mode>|<id>" of the job that took the key, for the key's TTL; whether that job still
-- holds it is read from its record, so nothing has to release the key: `d` (until_done)
-- while pending, scheduled or processing; `s` (until_started) while pending or scheduled
-- and never started. A job past that, or whose record is gone, frees the key.
-- KEYS: 1 ready, 2 scheduled, 3 signal, 4 routing-key set
-- ARGV: 1 prefix, 2 routing key, 3 now (ms), 4 watch (0|1), then per job: id, body,
--       priority, run_at (ms, 0 = now), name, unique key, ttl (ms), mode ('d' | 's')
-- Returns per job the id of the job that holds its key (its own when stored).
local prefix, now, watch = ARGV[1], tonumber(ARGV[3]), ARGV[4] == '1'
local out, ready_n, earliest = {}, 0, nil

local function holds(lock)
  local mode, id = string.match(lock, '^(%a)|(.*)$')
  if not id then return nil end
  local cur = redis.call('HMGET', prefix .. 'job:' .. id, 'status', 'started_at')
  local st = cur[1]
  local live = st == 'pending' or st == 'scheduled'
  if mode == 'd' then live = live or st == 'processing' else live = live and not cur[2] end
  return live and id or nil
end

for i = 5, #ARGV, 8 do
  local id, body, prio, run_at, name = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local lk = prefix .. 'unique:' .. ARGV[i + 5]
  local lock = redis.call('GET', lk)
  local holder = lock and holds(lock)
  if holder and holder ~= id then
    out[#out + 1] = holder
  else
    local jk = prefix .. 'job:' .. id
    if redis.call('EXISTS', jk) == 0 then  -- (a resent call finds its job stored)
      redis.call('SET', lk, ARGV[i + 7] .. '|' .. id, 'PX', ARGV[i + 6])
      if tonumber(run_at) > now then
        redis.call('HSET', jk, 'body', body, 'status', 'scheduled', 'prio', prio, 'scheduled_for', run_at,
          'name', name, 'unique', ARGV[i + 5])
        redis.call('ZADD', KEYS[2], run_at, id)
        if earliest == nil or tonumber(run_at) < earliest then earliest = tonumber(run_at) end
      else
        redis.call('HSET', jk, 'body', body, 'status', 'pending', 'prio', prio, 'name', name, 'unique', ARGV[i + 5])
        ready_add(prefix, KEYS[1], id, ready_score(prio, now), name)
        ready_n = ready_n + 1
      end
      if watch then redis.call('HSET', jk, 'watch', 1) end
    end
    out[#out + 1] = id
  end
end
if ready_n > 0 then wake_workers(KEYS[3], ready_n) end
if earliest ~= nil then wake_if_earliest(KEYS[2], earliest, KEYS[3]) end
redis.call('SADD', KEYS[4], ARGV[2])
return out
