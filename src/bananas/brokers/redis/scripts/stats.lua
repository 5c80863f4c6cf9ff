-- Depth of one routing key:
--   {scheduled, processing, dead, oldest_ready_ms, next_scheduled_ms, suspects, paused (0|1),
--    prio1, n1, prio2, n2, ...}
-- (oldest_ready_ms: when the longest-waiting ready job became ready; next_scheduled_ms: when
-- the earliest scheduled job is due; -1 when none)
-- KEYS: 1 ready, 2 scheduled, 3 leases, 4 dead, 5 suspects, 6 paused
local out = {redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]), -1, -1,
  redis.call('ZCARD', KEYS[5]), redis.call('EXISTS', KEYS[6])}
local first_due = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first_due[2] then out[5] = string.format('%.0f', tonumber(first_due[2])) end
if redis.call('ZCARD', KEYS[1]) > 0 then
  local oldest = nil
  for prio = 100, 0, -1 do
    local lo = (100 - prio) * 1e13
    local hi = '(' .. string.format('%.0f', lo + 1e13)
    local n = redis.call('ZCOUNT', KEYS[1], string.format('%.0f', lo), hi)
    if n > 0 then
      out[#out + 1] = prio; out[#out + 1] = n
      local first = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%.0f', lo), hi, 'WITHSCORES', 'LIMIT', 0, 1)
      local ms = tonumber(first[2]) - lo
      if oldest == nil or ms < oldest then oldest = ms end
    end
  end
  if oldest ~= nil then out[4] = string.format('%.0f', oldest) end
end
return out
