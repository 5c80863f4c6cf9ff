-- Cancel a running workflow (wf_stop in _lib.lua). Returns its state before, or false.
-- ARGV: 1 workflow id, 2 now (ms)
local wk = wf_key(ARGV[1])
local state = redis.call('HGET', wk .. 'meta', 'state')
if not state then return false end
if state == 'running' then wf_stop(wk, 'cancelled', tonumber(ARGV[2])) end
return state
