-- Pause or resume a routing key: while `paused` exists, dequeue scripts lease none of its
-- jobs (running ones finish; the scheduler's duties go on) and idle workers' offers are
-- dropped, so submit hands nothing to them. Resuming wakes the key's idle workers.
-- KEYS: 1 paused, 2 idle offers, 3 signal
-- ARGV: 1 '1' pause / '0' resume, 2 routing key
-- Returns 1 when the state changed, 0 when it already was so.
if ARGV[1] == '1' then
  redis.call('SADD', 'bananas:routing_keys', ARGV[2])
  redis.call('DEL', KEYS[2])
  return redis.call('SET', KEYS[1], 1, 'NX') and 1 or 0
end
local changed = redis.call('DEL', KEYS[1])
if changed == 1 then wake_workers(KEYS[3], 16) end
return changed
