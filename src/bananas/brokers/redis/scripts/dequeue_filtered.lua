-- Dequeue for specialized workers: only jobs whose priority lies in one of the given
-- bands and/or whose name is one of the given names. Matching jobs are found without
-- taking any other job off the queue (no pop-and-put-back): priorities are score bands
-- of `ready` (ZRANGEBYSCORE), names have their own index `ready:name:<name>` (same
-- scores), so only matching ids are ever read. The signal list is cleared only when the
-- queue is empty.
-- A name's index exists from the first time a worker asks for it: the name goes into
-- `indexed` (from then on every script that makes a job of it ready adds it to the
-- index too), and the jobs that were ready before are added by a ZSCAN of `ready`, at
-- most BACKFILL of them per call; `indexed` holds the ZSCAN cursor until it is 'done'.
-- ZSCAN returns every member present for the whole scan, and members added meanwhile
-- are indexed as they come, so no ready job is missed; until the scan is done, jobs it
-- has not reached yet are taken after those already indexed.
-- With a max deliveries (ARGV 7) it first does the scheduler's duties for the routing key
-- and returns the next due time and the isolation flag after the jobs, as dequeue.lua
-- does (suspects of the given names, any when none are given).
-- KEYS: 1 ready, 2 leases, 3 signal, 4 scheduled, 5 dead
-- ARGV: 1 prefix, 2 count, 3 now (ms), 4 lease deadline (ms), 5 worker id, 6 scan limit,
--       7 max deliveries ("" = no scheduler duties), 8 failed ttl (ms),
--       9 number of bands, then per band: min score, max score (highest priority first),
--       then the names (none = any name)
local prefix, want, scan, nb = ARGV[1], tonumber(ARGV[2]), ARGV[6], tonumber(ARGV[9])
local names = {}
for i = 10 + 2 * nb, #ARGV do names[#names + 1] = ARGV[i] end
local bands = {}
for i = 1, nb do bands[i] = {ARGV[8 + 2 * i], ARGV[9 + 2 * i]} end
if nb == 0 then bands[1] = {'-inf', '+inf'} end
local reclaim = ARGV[7] ~= ''
local paused = redis.call('EXISTS', prefix .. 'paused') == 1  -- duties only (dequeue.lua)
if reclaim then
  local now = tonumber(ARGV[3])
  local moved = move_due(prefix, KEYS[1], KEYS[4], now, 1000)
  local recovered = reclaim_leases(prefix, KEYS[1], KEYS[2], KEYS[5], now, 1000, ARGV[7], ARGV[8])
  if moved + recovered > 0 then wake_workers(KEYS[3], moved + recovered) end
  local served = {}
  for _, name in ipairs(names) do served[name] = true end
  if not paused and claim_isolation(prefix, ARGV[5], tonumber(ARGV[4]) - tonumber(ARGV[3]), served) then
    return {next_due(KEYS[4], KEYS[2]), 1}
  end
end

local BACKFILL = 4000  -- about 10 ms of ZSCAN and HGET
local budget = BACKFILL
for _, name in ipairs(names) do
  local state = redis.call('HGET', prefix .. 'indexed', name)
  if state ~= 'done' then
    local cursor, index, finished = state or '0', prefix .. 'ready:name:' .. name, false
    while budget > 0 and not finished do
      local page = redis.call('ZSCAN', KEYS[1], cursor, 'COUNT', 1000)
      cursor = page[1]
      local items = page[2]
      for j = 1, #items, 2 do
        if redis.call('HGET', prefix .. 'job:' .. items[j], 'name') == name then
          redis.call('ZADD', index, items[j + 1], items[j])
        end
      end
      budget = budget - #items / 2
      finished = cursor == '0'
    end
    redis.call('HSET', prefix .. 'indexed', name, finished and 'done' or cursor)
  end
end

-- Candidate ids of one band, lowest score (= next to run) first.
local function candidates(band)
  if #names == 0 then
    return redis.call('ZRANGEBYSCORE', KEYS[1], band[1], band[2], 'LIMIT', 0, scan)
  end
  local found = {}
  for _, name in ipairs(names) do
    local hits = redis.call('ZRANGEBYSCORE', prefix .. 'ready:name:' .. name, band[1], band[2],
      'WITHSCORES', 'LIMIT', 0, want)
    for j = 1, #hits, 2 do found[#found + 1] = {hits[j], tonumber(hits[j + 1])} end
  end
  table.sort(found, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[1] < b[1]
  end)
  local ids = {}
  for j = 1, #found do ids[j] = found[j][1] end
  return ids
end

local out = {}
local taken = 0
if paused then
  bands = {}
  redis.call('DEL', KEYS[3])
end
for _, band in ipairs(bands) do
  if taken >= want then break end
  for _, id in ipairs(candidates(band)) do
    if taken >= want then break end
    local jk = prefix .. 'job:' .. id
    local cur = redis.call('HMGET', jk, 'status', 'body', 'attempts', 'name')
    if cur[1] == 'pending' then
      redis.call('ZREM', KEYS[1], id)
      ready_unindex(prefix, id, cur[4])
      local d = redis.call('HINCRBY', jk, 'deliveries', 1)
      redis.call('HINCRBY', jk, 'unacked', 1)
      redis.call('HSET', jk, 'status', 'processing', 'started_at', ARGV[3], 'worker', ARGV[5])
      redis.call('ZADD', KEYS[2], ARGV[4], id)
      out[#out + 1] = id
      out[#out + 1] = cur[2]
      out[#out + 1] = cur[3] or 0
      out[#out + 1] = d
      taken = taken + 1
    elseif #names > 0 then  -- a stale index entry (say, an expired record): drop it
      for _, name in ipairs(names) do ready_unindex(prefix, id, name) end
    end
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
if reclaim then
  out[#out + 1] = next_due(KEYS[4], KEYS[2])
  out[#out + 1] = 0
end
return out
