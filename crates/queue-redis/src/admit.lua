-- Admit the next users in arrival order while fewer than the limit hold a
-- slot. One script: any number of instances may run it at once.
-- KEYS[1] queue:{s:<id>}  KEYS[2] active:{s:<id>}
-- ARGV[1] now (ms)  ARGV[2] active limit  ARGV[3] token ttl (ms)
-- ARGV[4] token key prefix (token:{s:<id>}:)  ARGV[5..] fresh random tokens
-- Returns the admitted user ids.
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[2])
if free > #ARGV - 4 then
  free = #ARGV - 4
end
local admitted = {}
if free <= 0 then
  return admitted
end
local popped = redis.call('ZPOPMIN', KEYS[1], free)
for i = 1, #popped, 2 do
  local user = popped[i]
  local token = ARGV[4 + (i + 1) / 2]
  redis.call('SET', ARGV[4] .. user, token, 'PX', ARGV[3])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), user)
  admitted[#admitted + 1] = user
end
return admitted
