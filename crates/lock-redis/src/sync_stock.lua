-- Rebuild a schedule's Redis state from a read of the database: every seat
-- the database has gets its mark, every free one loses it, and the stock
-- becomes the number of seats that are free and unlocked. So whatever
-- drifted (a dead instance's stock, a lost give-back, a mark missed while
-- the broker was down, a value set by hand) is set right, without a human.
-- Two kinds of key are left as they are: a lock (the hold in flight settles
-- its seat when it ends), and a key that changed while the database was
-- read (a hold, release or give-back that knew more than that read wrote it).
-- Whatever it writes only decides what Redis refuses: it cannot oversell,
-- because the database decides every hold.
-- KEYS[1] stock:{s:<id>}  KEYS[2] synced:{s:<id>}
-- KEYS[3..] lock:{s:<id>}:<seatId>, every seat of the schedule
-- ARGV[1] 'load' (only while the stock is missing) or 'resync'
-- ARGV[2] state lifetime (ms)  ARGV[3] resync period (ms)
-- ARGV[4..] two per seat, in KEYS order: what the database says ('' for
-- AVAILABLE, else 'held:<reservationId>'), and what the seat's key held
-- just before the database was read ('' for nothing)
-- Returns {1, stock, the stock before or -1}, or {0} when 'load' found the
-- schedule loaded already.
local before = redis.call('GET', KEYS[1])
if before and ARGV[1] == 'load' then
  return {0}
end
local stock = 0
for i = 1, #KEYS - 2 do
  local key = KEYS[2 + i]
  local db, seen = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local current = redis.call('GET', key) or ''
  if current ~= seen then
    if current == '' then
      stock = stock + 1
    end
  elseif current ~= '' and string.sub(current, 1, 5) ~= 'held:' then
    -- Locked: the hold in flight settles this seat when it ends.
  elseif db == '' then
    redis.call('DEL', key)
    stock = stock + 1
  else
    redis.call('SET', key, db, 'PX', ARGV[2])
  end
end
redis.call('SET', KEYS[1], stock, 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return {1, stock, tonumber(before or '-1')}
