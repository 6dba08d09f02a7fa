-- Lock every requested seat and take its stock, all or none: one script, so
-- no other client runs between the checks and the writes. A seat that is
-- locked (a hold in flight) or marked held (the database has it) refuses
-- the request before anything is written, so a request that cannot win
-- never holds stock that another one needs. The stock grants nothing: the
-- database still decides every hold.
-- KEYS[1] stock:{s:<id>}  KEYS[2] fence:{s:<id>}  KEYS[3] synced:{s:<id>}
-- KEYS[4..] lock:{s:<id>}:<seatId> in ascending seat order
-- ARGV[1] owner (unique per request)  ARGV[2] lease (ms)  ARGV[3] resync period (ms)
-- Returns {1, token, due}     locked, and n taken from the stock
--         {0, i, stock, due}  the i-th seat (1-based) is locked or held: nothing taken
--         {-2, stock, due}    the seats are free but the stock counts fewer: it drifted
--         {-1}                no stock: the schedule is not loaded from the database
-- due = 1: no resync for a period, and this request was chosen to run one.
local stock = redis.call('GET', KEYS[1])
if not stock then
  return {-1}
end
stock = tonumber(stock)
local due = redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[3]) and 1 or 0
for i = 4, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {0, i - 3, stock, due}
  end
end
local n = #KEYS - 3
if stock < n then
  return {-2, stock, due}
end
redis.call('DECRBY', KEYS[1], n)
local token = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ':' .. token
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], value, 'PX', ARGV[2])
end
return {1, token, due}
