-- Delete every dead-lettered job of one routing key. KEYS: 1 dead. ARGV: 1 prefix.
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. 'job:' .. id) end
redis.call('DEL', KEYS[1])
return #ids
