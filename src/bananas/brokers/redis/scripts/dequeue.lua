-- Take up to COUNT jobs and lease them: first those submit handed to this worker (its
-- inbox, see hand_off), then ready ones (highest priority first, FIFO within one). When
-- fewer than COUNT were found the signal list is cleared in the same step, so a worker
-- that then blocks on it wakes only for jobs that arrive after this call; and with an
-- offer the worker offers to have the next job handed to it (atomic with finding `ready`
-- empty, so no job slips in between).
-- With a max deliveries (ARGV 8), it first does the scheduler's duties for this routing
-- key (due delayed/retry jobs -> ready, expired leases -> ready or worker_lost), so a dead
-- worker's jobs come back without waiting for a leader, and it returns when the next of
-- them falls due (ms, -1 for none) and 1 or 0 as two more elements after the jobs: 1 when
-- this (unfiltered) worker was given the duty to run suspects alone (claim_isolation in
-- _lib.lua); then it takes no job, withdraws its offer, and is to call dequeue_alone.lua
-- once it holds none.
-- KEYS: 1 ready, 2 leases, 3 signal, 4 idle offers, 5 this worker's inbox, 6 scheduled, 7 dead
-- ARGV: 1 prefix, 2 count, 3 now (ms), 4 lease deadline (ms), 5 worker id,
--       6 offer ("lease_ms|worker_id", or "" for none), 7 offer deadline (ms),
--       8 max deliveries ("" = no scheduler duties), 9 failed ttl (ms)
-- Per job one HMGET and one HSET: the counters are incremented here rather than with
-- HINCRBY (the script is atomic, so read-then-write is as safe and two calls cheaper).
local count = tonumber(ARGV[2])
local out = {}
local leases = {}

local function lease(id, body, attempts, token)
  leases[#leases + 1] = ARGV[4]
  leases[#leases + 1] = id
  if #leases >= 1000 then  -- unpack() has a stack limit: one ZADD per 500 leases
    redis.call('ZADD', KEYS[2], unpack(leases))
    leases = {}
  end
  out[#out + 1] = id
  out[#out + 1] = body
  out[#out + 1] = attempts
  out[#out + 1] = token
end

-- Handed jobs ("deadline|#id|" .. id .. body) are leased already: take those still held
-- by their first delivery to this worker (a lease that ran out was given back meanwhile).
local reclaim = ARGV[8] and ARGV[8] ~= ''
-- A paused routing key (pause.lua): its scheduler duties run, handed jobs (leased before
-- the pause) are taken, nothing else; the signal is cleared so the worker sleeps.
local paused = redis.call('EXISTS', ARGV[1] .. 'paused') == 1
if reclaim then
  local now = tonumber(ARGV[3])
  local moved = move_due(ARGV[1], KEYS[1], KEYS[6], now, 1000)
  local recovered = reclaim_leases(ARGV[1], KEYS[1], KEYS[2], KEYS[7], now, 1000, ARGV[8], ARGV[9])
  -- Tokens for what this call will not take (cleared below if it takes all there is).
  if moved + recovered > 0 then wake_workers(KEYS[3], moved + recovered) end
  if not paused and claim_isolation(ARGV[1], ARGV[5], tonumber(ARGV[4]) - tonumber(ARGV[3]), {}) then
    if ARGV[6] ~= '' then redis.call('ZREM', KEYS[4], ARGV[6]) end
    return {next_due(KEYS[6], KEYS[2]), 1}
  end
end

if ARGV[6] and ARGV[6] ~= '' and redis.call('EXISTS', KEYS[5]) == 1 then
  local handed = redis.call('LRANGE', KEYS[5], 0, count - 1)
  redis.call('LTRIM', KEYS[5], #handed, -1)
  for _, entry in ipairs(handed) do
    local id_len, at = string.match(entry, '^%d+|(%d+)|()')
    if id_len then  -- an empty entry is a wake-up (a stopping worker), not a job
      local id = string.sub(entry, at, at + id_len - 1)
      local cur = redis.call('HMGET', ARGV[1] .. 'job:' .. id, 'status', 'deliveries', 'worker')
      if cur[1] == 'processing' and cur[2] == '1' and cur[3] == ARGV[5] then
        lease(id, string.sub(entry, at + id_len), 0, 1)
      end
    end
  end
end

local popped = paused and {} or redis.call('ZPOPMIN', KEYS[1], count - #out / 4)
if #out / 4 + #popped / 2 < count then
  redis.call('DEL', KEYS[3])
  if ARGV[6] and ARGV[6] ~= '' and not paused then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6]) end
end
local unindex = {}  -- name -> ids to drop from its ready index, one ZREM per name
for i = 1, #popped, 2 do
  local id = popped[i]
  local jk = ARGV[1] .. 'job:' .. id
  local cur = redis.call('HMGET', jk, 'status', 'body', 'attempts', 'deliveries', 'unacked', 'name')
  if cur[6] then
    local ids = unindex[cur[6]]
    if ids == nil then
      ids = {}
      unindex[cur[6]] = ids
    end
    ids[#ids + 1] = id
  end
  if cur[1] == 'pending' then
    local d = (tonumber(cur[4]) or 0) + 1
    redis.call('HSET', jk, 'status', 'processing', 'started_at', ARGV[3], 'worker', ARGV[5],
      'deliveries', d, 'unacked', (tonumber(cur[5]) or 0) + 1)
    lease(id, cur[2], cur[3] or 0, d)
  end
end
if #leases > 0 then redis.call('ZADD', KEYS[2], unpack(leases)) end
for name, ids in pairs(unindex) do
  for j = 1, #ids, 500 do
    redis.call('ZREM', ARGV[1] .. 'ready:name:' .. name, unpack(ids, j, math.min(j + 499, #ids)))
  end
end
if reclaim then
  out[#out + 1] = next_due(KEYS[6], KEYS[2])
  out[#out + 1] = 0
end
return out
