-- Cancel a job: pending/scheduled ones are removed and never run; a processing one gets
-- its cancel flag (the worker sees it at the next lease renewal). Returns the old status.
-- KEYS: 1 ready, 2 scheduled, 3 finished (declared for the slot: the same keys as prefix .. name)
-- ARGV: 1 prefix, 2 id, 3 now (ms), 4 ttl (s)
local jk = ARGV[1] .. 'job:' .. ARGV[2]
local cur = redis.call('HMGET', jk, 'status', 'watch', 'name', 'wf', 'node')
local st = cur[1]
if not st then return false end
if st == 'pending' or st == 'scheduled' then
  cancel_queued(ARGV[1], ARGV[2], cur[3], cur[2], ARGV[3], ARGV[4])
  if cur[4] then wf_done(cur[4], cur[5], 'cancelled', wf_error(ARGV[2], 'cancelled', 'cancelled'), tonumber(ARGV[3])) end
elseif st == 'processing' then
  redis.call('HSET', jk, 'cancel', 1)
end
return st
