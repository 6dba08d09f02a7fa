-- One admission step for one schedule (after sale.lua); any number of
-- instances may run it at once.
-- ARGV[1] now (ms)  ARGV[2] opens at (ms, or '')  ARGV[3] seed
-- ARGV[4] rate (passes/s)  ARGV[5] burst  ARGV[6] active limit
-- ARGV[7] pass limit  ARGV[8] sold out (1/0)  ARGV[9] token ttl (ms)
-- ARGV[10] token key prefix (token:{s}:)  ARGV[11] cursor ('' = from now)
-- ARGV[12] a fresh epoch  ARGV[13..] fresh random tokens (at least burst of them)
-- Returns {sale_state..., head ticket (-1: nobody in line), passes, holding,
-- passes handed out by this call, cursor, epoch, then user, token, pass expiry ms, admitted at ms, ticket for every pass
-- handed out after the cursor}.
local now, opens_at = tonumber(ARGV[1]), ARGV[2]
-- Set once: a different epoch tells the ticker the room's state was lost.
redis.call('HSETNX', K_SALE, 'epoch', ARGV[12])
local cursor = ARGV[11]
if cursor == '' then
  local last = redis.call('XREVRANGE', K_ADMISSIONS, '+', '-', 'COUNT', 1)
  if #last > 0 then cursor = last[1][1] else cursor = '0-0' end
end
if not opened() and opening_due(opens_at, now) then draw(tonumber(ARGV[3]), now) end
if ARGV[8] == '1' then redis.call('HSET', K_SALE, 'sold_out', 1) end
redis.call('ZREMRANGEBYSCORE', K_PASSES, '-inf', now)
redis.call('ZREMRANGEBYSCORE', K_ACTIVE, '-inf', now)
redis.call('ZREMRANGEBYSCORE', K_TIMES, '-inf', now - RATE_WINDOW_MS)

local burst = tonumber(ARGV[5])
local credit = tonumber(redis.call('HGET', K_SALE, 'credit') or burst)
local last = tonumber(redis.call('HGET', K_SALE, 'last_ms') or now)
if now > last then
  credit = math.min(burst, credit + tonumber(ARGV[4]) * (now - last) / 1000)
  last = now
end

local handed_out = 0
local passes = redis.call('ZCARD', K_PASSES)
local holding = redis.call('ZCARD', K_ACTIVE)
if opened() and not sold_out() then
  local n = math.min(math.floor(credit), tonumber(ARGV[6]) - passes - holding,
                     tonumber(ARGV[7]) - passes, #ARGV - 12)
  if n > 0 then
    local ttl = tonumber(ARGV[9])
    -- Admission times follow the line even when instances' clocks differ.
    local at = math.max(now, tonumber(redis.call('HGET', K_SALE, 'last_admitted') or 0))
    redis.call('HSET', K_SALE, 'last_admitted', at)
    local popped = redis.call('ZPOPMIN', K_LINE, n)
    for i = 1, #popped, 2 do
      local user, ticket = popped[i], popped[i + 1]
      local token = ARGV[12 + (i + 1) / 2]
      redis.call('SET', ARGV[10] .. user, token, 'PX', ttl)
      redis.call('ZADD', K_PASSES, now + ttl, user)
      redis.call('XADD', K_ADMISSIONS, 'MAXLEN', '~', 100000, '*',
                 'u', user, 't', token, 'e', now + ttl, 'a', at, 'n', ticket)
      redis.call('ZADD', K_TIMES, at, user .. ':' .. at)
    end
    handed_out = #popped / 2
    credit = credit - handed_out
    passes = passes + handed_out
  end
end
redis.call('HSET', K_SALE, 'credit', credit, 'last_ms', last)

local head = redis.call('ZRANGE', K_LINE, 0, 0, 'WITHSCORES')
local result = sale_state(now)
result[#result + 1] = head[2] and tonumber(head[2]) or -1
result[#result + 1] = passes
result[#result + 1] = holding
result[#result + 1] = handed_out
local entries = redis.call('XRANGE', K_ADMISSIONS, '(' .. cursor, '+', 'COUNT', 20000)
if #entries > 0 then cursor = entries[#entries][1] end
result[#result + 1] = cursor
result[#result + 1] = redis.call('HGET', K_SALE, 'epoch')
for _, entry in ipairs(entries) do
  local f = entry[2]
  -- fields: u, user, t, token, e, expiry, a, admitted at, n, ticket
  result[#result + 1] = f[2]
  result[#result + 1] = f[4]
  result[#result + 1] = f[6]
  result[#result + 1] = f[8]
  result[#result + 1] = f[10] or 0
end
return result
