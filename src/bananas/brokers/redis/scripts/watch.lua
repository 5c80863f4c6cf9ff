-- Arm the completion notification of a job unless it is already terminal.
-- KEYS: 1 job key. Returns the status ('' when there is no such job).
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return '' end
if st ~= 'completed' and st ~= 'failed' and st ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'watch', 1)
end
return st
