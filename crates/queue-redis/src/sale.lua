-- The functions every waiting-room script starts with (prepended by lib.rs).
-- KEYS, in every script that includes this file:
--   1 prequeue:{s}  2 queue:{s}  3 queue-seq:{s}  4 sale:{s}  5 passes:{s}
--   6 active:{s}  7 admissions:{s}  8 draw-arrivals:{s}  9 draw-order:{s}
--   10 admit-times:{s}
local K_PRE, K_LINE, K_SEQ, K_SALE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_PASSES, K_ACTIVE, K_ADMISSIONS = KEYS[5], KEYS[6], KEYS[7]
local K_ARRIVALS, K_ORDER, K_TIMES = KEYS[8], KEYS[9], KEYS[10]
local RATE_WINDOW_MS = 5000

-- The draw: Fisher-Yates over the pre-queue in arrival order, driven by the
-- Park-Miller generator (booking_domain::draw_order does the same in Rust).
-- Tickets continue the one counter, so the line stays contiguous.
local function draw(seed, now)
  local arrivals = redis.call('ZRANGE', K_PRE, 0, -1)
  local n = #arrivals
  local order = {}
  for i = 1, n do order[i] = i end
  local modulus = 2147483647
  local state = seed % modulus
  if state == 0 then state = 1 end
  for i = n, 2, -1 do
    state = (state * 48271) % modulus
    local j = state % i + 1
    order[i], order[j] = order[j], order[i]
  end
  local first = redis.call('INCRBY', K_SEQ, n) - n
  for k = 1, n do
    local user = arrivals[order[k]]
    redis.call('ZADD', K_LINE, first + k, user)
    redis.call('RPUSH', K_ORDER, user)
    redis.call('RPUSH', K_ARRIVALS, arrivals[k])
  end
  redis.call('DEL', K_PRE)
  redis.call('HSET', K_SALE, 'opened', 1, 'drawn_at', now, 'seed', seed)
end

local function opened()
  return redis.call('HGET', K_SALE, 'opened') == '1'
end

local function sold_out()
  return redis.call('HGET', K_SALE, 'sold_out') == '1'
end

local function opening_due(opens_at, now)
  return opens_at == '' or now >= tonumber(opens_at)
end

local function live(key, user, now)
  local until_ms = redis.call('ZSCORE', key, user)
  return until_ms and tonumber(until_ms) > now
end

-- Passes handed out in the last RATE_WINDOW_MS and the window they count
-- over (shorter right after the opening).
local function rate_sample(now)
  local drawn_at = tonumber(redis.call('HGET', K_SALE, 'drawn_at') or '')
  if not drawn_at then return {0, 0} end
  local window = math.min(RATE_WINDOW_MS, now - drawn_at)
  if window <= 0 then return {0, 0} end
  return {redis.call('ZCOUNT', K_TIMES, now - window, now), window}
end

-- {opened, sold_out, waiting, admitted in window, window ms}
local function sale_state(now)
  local waiting
  if opened() then waiting = redis.call('ZCARD', K_LINE) else waiting = redis.call('ZCARD', K_PRE) end
  local rate = rate_sample(now)
  return {opened() and 1 or 0, sold_out() and 1 or 0, waiting, rate[1], rate[2]}
end

-- {kind, ticket, position, token, pass expiry ms}; kind is none, pre,
-- line, admitted or holding.
local function place_of(user, token_key, now)
  local pass_until = redis.call('ZSCORE', K_PASSES, user)
  if pass_until and tonumber(pass_until) > now then
    local token = redis.call('GET', token_key)
    if token and string.sub(token, 1, 5) ~= 'used:' then
      if string.sub(token, 1, 8) == 'claimed:' then token = string.sub(token, 9) end
      return {'admitted', 0, 0, token, tonumber(pass_until)}
    end
  end
  if live(K_ACTIVE, user, now) then return {'holding', 0, 0, '', 0} end
  if redis.call('ZSCORE', K_PRE, user) then return {'pre', 0, 0, '', 0} end
  local ticket = redis.call('ZSCORE', K_LINE, user)
  if ticket then
    return {'line', tonumber(ticket), redis.call('ZRANK', K_LINE, user) + 1, '', 0}
  end
  return {'none', 0, 0, '', 0}
end

local function view_of(user, token_key, now)
  local place = place_of(user, token_key, now)
  local sale = sale_state(now)
  for i = 1, #sale do place[#place + 1] = sale[i] end
  return place
end
