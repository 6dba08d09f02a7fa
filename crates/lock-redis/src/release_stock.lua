-- An ended (cancelled or expired) reservation's seats go back to the stock
-- once, however often its release is delivered or retried: the first call
-- sets the marker, and a seat is freed only while it still carries this
-- reservation's mark (or the anonymous 'held:'), so a seat held again since,
-- or already freed by a resync, is left alone. A seat freed here too early
-- could only reach the database, which refuses it if it is taken.
-- KEYS[1] stock:{s:<id>}  KEYS[2] released:{s:<id>}:<reservationId>
-- KEYS[3..] lock:{s:<id>}:<seatId> of the reservation's seats
-- ARGV[1] 'held:<reservationId>'  ARGV[2] marker lifetime (ms)
-- Returns 1 given back, 0 given back before, -1 stock unknown (nothing to
-- do: it is loaded from the database, which already counts these seats).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return 0
end
local freed = 0
for i = 3, #KEYS do
  local mark = redis.call('GET', KEYS[i])
  if mark == ARGV[1] or mark == 'held:' then
    redis.call('DEL', KEYS[i])
    freed = freed + 1
  end
end
if freed > 0 then
  redis.call('INCRBY', KEYS[1], freed)
end
return 1
