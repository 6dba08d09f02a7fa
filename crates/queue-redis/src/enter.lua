-- Enter the waiting room (after sale.lua). Before the opening: the
-- pre-queue, in arrival order. After it: the draw if nobody made it yet,
-- then the end of the line. Entering again keeps one's place; once sold out
-- nobody enters.
-- KEYS[11] token:{s}:<user>
-- ARGV[1] user  ARGV[2] now (ms)  ARGV[3] opens at (ms, or '')  ARGV[4] seed
-- Returns view_of(user).
local user, now, opens_at = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if not sold_out() then
  local place = place_of(user, KEYS[11], now)[1]
  if place == 'none' then
    if not opened() and not opening_due(opens_at, now) then
      redis.call('ZADD', K_PRE, 'NX', redis.call('INCR', K_SEQ), user)
    else
      if not opened() then draw(tonumber(ARGV[4]), now) end
      if not redis.call('ZSCORE', K_LINE, user) then
        redis.call('ZADD', K_LINE, redis.call('INCR', K_SEQ), user)
      end
    end
  elseif place == 'pre' and opening_due(opens_at, now) and not opened() then
    draw(tonumber(ARGV[4]), now)
  end
end
return view_of(user, KEYS[11], now)
