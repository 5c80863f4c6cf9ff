-- Take up to COUNT ready jobs (highest priority first, FIFO within one) and lease them.
-- When fewer than COUNT were ready the signal list is cleared in the same step, so a
-- worker that then blocks on it wakes only for jobs that arrive after this call.
-- KEYS: 1 ready, 2 leases, 3 signal
-- ARGV: 1 prefix, 2 count, 3 now (ms), 4 lease deadline (ms), 5 worker id
-- Per job one HMGET and one HSET: the counters are incremented here rather than with
-- HINCRBY (the script is atomic, so read-then-write is as safe and two calls cheaper).
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[2])
if #popped / 2 < tonumber(ARGV[2]) then redis.call('DEL', KEYS[3]) end
local out = {}
local leases = {}
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = ARGV[1] .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'status', 'body', 'attempts', 'deliveries', 'unacked', 'name')
  ready_unindex(ARGV[1], id, cur[6])
  if cur[1] == 'pending' then
    local d = (tonumber(cur[4]) or 0) + 1
    redis.call('HSET', jk, 'status', 'processing', 'started_at', ARGV[3], 'worker', ARGV[5],
      'deliveries', d, 'unacked', (tonumber(cur[5]) or 0) + 1)
    leases[#leases + 1] = ARGV[4]
    leases[#leases + 1] = id
    if #leases >= 1000 then  -- unpack() has a stack limit: one ZADD per 500 leases
      redis.call('ZADD', KEYS[2], unpack(leases))
      leases = {}
    end
    out[#out + 1] = id
    out[#out + 1] = cur[2]
    out[#out + 1] = cur[3] or 0
    out[#out + 1] = d
  end
end
if #leases > 0 then redis.call('ZADD', KEYS[2], unpack(leases)) end
return out
