-- The room as its operator watches it (after sale.lua), in one step: the
-- sale state, then the live unused passes and the live holds' slots.
-- ARGV[1] now (ms)
local now = tonumber(ARGV[1])
local out = sale_state(now)
out[#out + 1] = redis.call('ZCOUNT', K_PASSES, '(' .. now, '+inf')
out[#out + 1] = redis.call('ZCOUNT', K_ACTIVE, '(' .. now, '+inf')
return out
