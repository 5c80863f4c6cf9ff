-- Dequeue for specialized workers: only jobs whose priority lies in one of the given
-- bands and/or whose name is one of the given names. Matching jobs are found without
-- taking any other job off the queue (no pop-and-put-back): ZRANGEBYSCORE per band
-- (priorities are score bands), then the name read from the body, scanning at most
-- SCAN ids per band. The signal list is cleared only when the queue is empty.
-- KEYS: 1 ready, 2 leases, 3 signal
-- ARGV: 1 prefix, 2 count, 3 now (ms), 4 lease deadline (ms), 5 worker id, 6 scan limit,
--       7 number of bands, then per band: min score, max score (highest priority first),
--       then the names (none = any name)
local prefix, want, scan, nb = ARGV[1], tonumber(ARGV[2]), ARGV[6], tonumber(ARGV[7])
local names = nil
if #ARGV > 7 + 2 * nb then
  names = {}
  for i = 8 + 2 * nb, #ARGV do names[ARGV[i]] = true end
end
local bands = {}
for i = 1, nb do bands[i] = {ARGV[6 + 2 * i], ARGV[7 + 2 * i]} end
if nb == 0 then bands[1] = {'-inf', '+inf'} end
local out = {}
local taken = 0
for _, band in ipairs(bands) do
  if taken >= want then break end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], band[1], band[2], 'LIMIT', 0, scan)) do
    if taken >= want then break end
    local jk = prefix .. 'job:' .. id
    local cur = redis.call('HMGET', jk, 'status', 'body', 'attempts')
    local match = true
    if names then
      local ok, job = pcall(cjson.decode, cur[2])
      match = ok and type(job) == 'table' and names[job['name']] == true
    end
    if match and cur[1] == 'pending' then
      redis.call('ZREM', KEYS[1], id)
      local d = redis.call('HINCRBY', jk, 'deliveries', 1)
      redis.call('HINCRBY', jk, 'unacked', 1)
      redis.call('HSET', jk, 'status', 'processing', 'started_at', ARGV[3], 'worker', ARGV[5])
      redis.call('ZADD', KEYS[2], ARGV[4], id)
      out[#out + 1] = id
      out[#out + 1] = cur[2]
      out[#out + 1] = cur[3] or 0
      out[#out + 1] = d
      taken = taken + 1
    end
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
return out
