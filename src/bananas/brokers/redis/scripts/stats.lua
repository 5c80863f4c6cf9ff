-- Depth of one routing key: {scheduled, processing, dead, prio1, n1, prio2, n2, ...}
-- KEYS: 1 ready, 2 scheduled, 3 leases, 4 dead
local out = {redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4])}
if redis.call('ZCARD', KEYS[1]) > 0 then
  for prio = 100, 0, -1 do
    local lo = (100 - prio) * 1e13
    local n = redis.call('ZCOUNT', KEYS[1], string.format('%.0f', lo), '(' .. string.format('%.0f', lo + 1e13))
    if n > 0 then out[#out + 1] = prio; out[#out + 1] = n end
  end
end
return out
