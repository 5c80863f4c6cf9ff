-- Extend the leases of running jobs. Per job: 1 renewed, 0 lost, 2 renewed + cancel asked.
-- KEYS: 1 leases
-- ARGV: 1 prefix, 2 new deadline (ms), then per lease: id, token
local res = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local cur = redis.call('HMGET', ARGV[1] .. 'job:' .. id, 'deliveries', 'status', 'cancel')
  if cur[1] == ARGV[i + 1] and cur[2] == 'processing' then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
    if cur[3] then res[#res + 1] = 2 else res[#res + 1] = 1 end
  else
    res[#res + 1] = 0
  end
end
return res
