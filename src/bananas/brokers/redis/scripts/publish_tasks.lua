-- A worker publishes the definitions of the tasks it serves (the task catalogue).
-- KEYS: 1 bananas:{catalogue}:tasks, then per task: bananas:{catalogue}:task:<name>, bananas:{catalogue}:workers:<name>
-- ARGV: 1 worker id, 2 now (ms), 3 drop workers last seen before this (ms), 4 TTL of the records (s),
--       then per task: name, definition (JSON)
-- Returns the number of tasks published.
local n = (#ARGV - 4) / 2
for i = 1, n do
  local name, definition = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local workers = KEYS[2 * i + 1]
  redis.call('SADD', KEYS[1], name)
  redis.call('SET', KEYS[2 * i], definition, 'EX', ARGV[4])
  redis.call('ZADD', workers, ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', workers, '-inf', '(' .. ARGV[3])
  redis.call('EXPIRE', workers, ARGV[4])
end
return n
