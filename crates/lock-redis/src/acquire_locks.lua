-- Lock every requested seat, or none: one script, so no other client runs
-- between the check and the writes.
-- KEYS[1] fence:{s:<id>}, KEYS[2..] lock:{s:<id>}:<seatId> in ascending seat order
-- ARGV[1] owner (unique per request)   ARGV[2] lease in milliseconds
-- Returns {1, token} on success, {0, i} when the i-th seat (1-based) is locked.
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {0, i - 1}
  end
end
local token = redis.call('INCR', KEYS[1])
local value = ARGV[1] .. ':' .. token
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], value, 'PX', ARGV[2])
end
return {1, token}
