-- Take up to COUNT ready jobs (highest priority first, FIFO within one) and lease them.
-- When fewer than COUNT were ready the signal list is cleared in the same step, so a
-- worker that then blocks on it wakes only for jobs that arrive after this call.
-- KEYS: 1 ready, 2 leases, 3 signal
-- ARGV: 1 prefix, 2 count, 3 now (ms), 4 lease deadline (ms), 5 worker id
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[2])
if #popped / 2 < tonumber(ARGV[2]) then redis.call('DEL', KEYS[3]) end
local out = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = ARGV[1] .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'status', 'body', 'attempts')
  if cur[1] == 'pending' then
    local d = redis.call('HINCRBY', jk, 'deliveries', 1)
    redis.call('HINCRBY', jk, 'unacked', 1)
    redis.call('HSET', jk, 'status', 'processing', 'started_at', ARGV[3], 'worker', ARGV[5])
    redis.call('ZADD', KEYS[2], ARGV[4], id)
    out[#out + 1] = id
    out[#out + 1] = cur[2]
    out[#out + 1] = cur[3] or 0
    out[#out + 1] = d
  end
end
return out
