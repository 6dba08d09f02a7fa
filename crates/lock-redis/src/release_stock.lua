-- An ended reservation's seats go back to the stock once, however often its
-- release is delivered or retried: the marker turns a repeat into a no-op.
-- KEYS[1] stock:{s:<id>}  KEYS[2] released:{s:<id>}:<reservationId>
-- ARGV[1] n  ARGV[2] marker lifetime (ms)
-- Returns 1 given back, 0 given back before, -1 stock unknown (nothing to
-- do: it is loaded from the database, which already counts these seats).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return 1
