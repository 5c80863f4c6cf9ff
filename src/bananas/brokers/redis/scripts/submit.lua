-- Store jobs and make them ready or scheduled. One call per batch.
-- KEYS: 1 ready, 2 scheduled, 3 signal, 4 routing-key set, 5 scheduler wake list
-- ARGV: 1 key prefix "bananas:{rk}:", 2 routing key, 3 now (ms), 4 watch (0|1),
--       then per job: id, body, priority, run_at (ms, 0 = now), name
local prefix, now, watch = ARGV[1], tonumber(ARGV[3]), ARGV[4]
local ready_n, earliest = 0, nil
for i = 5, #ARGV, 5 do
  local id, prio, run_at = ARGV[i], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local jk = prefix .. 'job:' .. id
  -- HSETNX on the body makes a repeated id a no-op; counters start missing (= 0).
  if redis.call('HSETNX', jk, 'body', ARGV[i + 1]) == 1 then
    if run_at > now then
      redis.call('HSET', jk, 'status', 'scheduled', 'prio', ARGV[i + 2], 'scheduled_for', ARGV[i + 3],
        'name', ARGV[i + 4])
      redis.call('ZADD', KEYS[2], ARGV[i + 3], id)
      if earliest == nil or run_at < earliest then earliest = run_at end
    else
      redis.call('HSET', jk, 'status', 'pending', 'prio', ARGV[i + 2], 'name', ARGV[i + 4])
      ready_add(prefix, KEYS[1], id, ready_score(prio, now), ARGV[i + 4])
      ready_n = ready_n + 1
    end
    if watch == '1' then redis.call('HSET', jk, 'watch', 1) end
  end
end
if ready_n > 0 then wake_workers(KEYS[3], ready_n) end
if earliest ~= nil then wake_scheduler_if_first(KEYS[2], KEYS[5], earliest) end
redis.call('SADD', KEYS[4], ARGV[2])
return ready_n
