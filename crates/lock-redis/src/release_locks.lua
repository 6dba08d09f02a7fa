-- End a hold: release its locks and settle their stock in one script. Per
-- seat, ARGV says what the database made of it: a mark 'held:<reservationId>'
-- (this hold has it) or 'held:' (the database refused it: someone has it)
-- replaces the lock and keeps the seat out of the stock; '' (the seat is
-- still free) deletes the lock and gives the seat back to the stock.
-- Only this request's own lock, or no key at all (its lease ran out), is
-- replaced or deleted (compare-and-delete). A key holding anything else was
-- set since by someone who took the seat's stock itself, so this request's
-- stock comes back, unless the key is the mark of this very reservation (a
-- resync read it from the database and counted the stock afresh). Nothing
-- here can sell a seat: the database has already decided; this records it.
-- KEYS[1] stock:{s:<id>}  KEYS[2..] lock:{s:<id>}:<seatId>
-- ARGV[1] the value this request wrote (owner:token)  ARGV[2] mark lifetime (ms)
-- ARGV[3..] per seat, in KEYS order: the mark to leave, or ''
-- Returns {locks released, seats given back to the stock}.
local known = redis.call('EXISTS', KEYS[1]) == 1
local released, returned = 0, 0
for i = 2, #KEYS do
  local current = redis.call('GET', KEYS[i])
  local mark = ARGV[i + 1]
  local ours = current == ARGV[1]
  if ours then
    released = released + 1
  end
  if not known then
    -- Redis lost the schedule: the next hold loads it from the database.
    if ours then
      redis.call('DEL', KEYS[i])
    end
  elseif ours or not current then
    if mark ~= '' then
      redis.call('SET', KEYS[i], mark, 'PX', ARGV[2])
    else
      redis.call('DEL', KEYS[i])
      returned = returned + 1
    end
  elseif current ~= mark or mark == 'held:' then
    returned = returned + 1
  end
end
if returned > 0 then
  redis.call('INCRBY', KEYS[1], returned)
end
return {released, returned}
