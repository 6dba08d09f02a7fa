-- One user's place and the room, read in one step (after sale.lua), so an
-- admission cannot land between reading the token and reading the place.
-- KEYS[11] token:{s}:<user>  ARGV[1] user  ARGV[2] now (ms)
return view_of(ARGV[1], KEYS[11], tonumber(ARGV[2]))
