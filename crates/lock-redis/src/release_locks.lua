-- Release only the locks this request still owns (compare-and-delete): a
-- lock whose lease ran out may belong to someone else by now.
-- KEYS[1..] lock keys   ARGV[1] the value this request wrote (owner:token)
-- Returns how many locks were released.
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
