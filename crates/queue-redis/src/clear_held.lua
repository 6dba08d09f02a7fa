-- Remove the hold markers a reservation still owns (compare-and-delete): a
-- seat held since by someone else keeps that hold's marker.
-- KEYS[1..] hold:{s:<id>}:<seatId>  ARGV[1] reservation id
local cleared = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    cleared = cleared + 1
  end
end
return cleared
