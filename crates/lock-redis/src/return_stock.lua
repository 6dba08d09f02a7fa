-- Give seats back to the advisory stock, but only if it is known: creating
-- it from nothing would invent a count the database never had.
-- KEYS[1] stock:{s:<id>}   ARGV[1] n
-- Returns the new stock, or -1 if the stock is unknown.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return -1
