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
-- 'patch' does the same for a slice of the seats (the periodic resync of a
-- large schedule goes slice by slice, so Redis never stalls on it): it fixes
-- the slice's marks and moves the stock by what it freed and took, instead
-- of recounting it.
-- KEYS[1] stock:{s:<id>}  KEYS[2] synced:{s:<id>}
-- KEYS[3..] lock:{s:<id>}:<seatId>, every seat of the schedule ('patch': of the slice)
-- ARGV[1] 'load' (only while the stock is missing), 'resync' or 'patch'
-- ARGV[2] state lifetime (ms)  ARGV[3] resync period (ms)
-- ARGV[4..] two per seat, in KEYS order: what the database says ('' for
-- AVAILABLE, else 'held:<reservationId>'), and what the seat's key held
-- just before the database was read ('' for nothing)
-- Returns {1, stock, the stock before or -1, free}, free being the seats of
-- KEYS that are free and unlocked now; or {0} when 'load' found the schedule
-- loaded already or 'patch' found it not loaded.
local before = redis.call('GET', KEYS[1])
if before and ARGV[1] == 'load' then
  return {0}
end
local patch = ARGV[1] == 'patch'
if patch and not before then
  return {0}
end
local stock = 0
local moved = 0
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
    if current ~= '' then
      redis.call('DEL', key)
      moved = moved + 1
    end
    stock = stock + 1
  else
    if current == '' then
      moved = moved - 1
    end
    redis.call('SET', key, db, 'PX', ARGV[2])
  end
end
local free = stock
if patch then
  stock = redis.call('INCRBY', KEYS[1], moved)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], stock, 'PX', ARGV[2])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return {1, stock, tonumber(before or '-1'), free}
