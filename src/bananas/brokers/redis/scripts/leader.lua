-- Take or keep the scheduler lock.
-- KEYS: 1 lock, 2 epoch counter. ARGV: 1 holder, 2 ttl (ms)
-- Returns {fencing token, ms the lock lasts}; token 0 when another holder has it.
local cur = redis.call('GET', KEYS[1])
if not cur then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
  return {token, tonumber(ARGV[2])}
end
local sep = string.find(cur, '|', 1, true)
if string.sub(cur, 1, sep - 1) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {tonumber(string.sub(cur, sep + 1)), tonumber(ARGV[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
