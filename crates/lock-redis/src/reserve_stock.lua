-- Stock pre-check: take n from the schedule's advisory stock, or refuse at
-- once without touching the database.
-- KEYS[1] stock:{s:<id>}   ARGV[1] n
-- Returns the stock left, -1 if the stock is unknown (the caller loads it
-- from the database), -2 if fewer than n seats are left.
local stock = redis.call('GET', KEYS[1])
if not stock then
  return -1
end
if tonumber(stock) < tonumber(ARGV[1]) then
  return -2
end
return redis.call('DECRBY', KEYS[1], ARGV[1])
