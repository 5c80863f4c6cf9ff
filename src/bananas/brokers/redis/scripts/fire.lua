-- Fire one cron tick: enqueue its job unless the tick already fired, in one step with
-- the de-duplication key and the schedule's state. Returns 1 fired, 0 duplicate tick,
-- -1 refused (a newer scheduler leader exists: fencing).
-- KEYS: 1 ready, 2 signal, 3 routing-key set, 4 leader epoch, 5 schedule-id set,
--       6 schedule state hash, 7 tick key
-- ARGV: 1 prefix, 2 routing key, 3 now (ms), 4 fencing token ('' = manual run),
--       5 job id, 6 body, 7 priority, 8 tick (ms), 9 next run (ms, '' = keep), 10 tick key ttl (ms),
--       11 schedule id, 12 job name
if ARGV[4] ~= '' and tonumber(redis.call('GET', KEYS[4]) or '0') ~= tonumber(ARGV[4]) then return -1 end
if not redis.call('SET', KEYS[7], ARGV[5], 'NX', 'PX', ARGV[10]) then return 0 end
local jk = ARGV[1] .. 'job:' .. ARGV[5]
if redis.call('HSETNX', jk, 'body', ARGV[6]) == 1 then
  redis.call('HSET', jk, 'status', 'pending', 'prio', ARGV[7], 'name', ARGV[12])
  ready_add(ARGV[1], KEYS[1], ARGV[5], ready_score(ARGV[7], ARGV[3]), ARGV[12])
  wake_workers(KEYS[2], 1)
  redis.call('SADD', KEYS[3], ARGV[2])
end
redis.call('SADD', KEYS[5], ARGV[11])
local last = tonumber(redis.call('HGET', KEYS[6], 'last_run') or '0')
if tonumber(ARGV[8]) > last then redis.call('HSET', KEYS[6], 'last_run', ARGV[8]) end
redis.call('HINCRBY', KEYS[6], 'run_count', 1)
redis.call('HSET', KEYS[6], 'last_job_id', ARGV[5])
if ARGV[9] ~= '' then
  local cur = tonumber(redis.call('HGET', KEYS[6], 'next_run') or '0')
  if tonumber(ARGV[9]) > cur then redis.call('HSET', KEYS[6], 'next_run', ARGV[9]) end
end
return 1
