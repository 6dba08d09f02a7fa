-- Puts places back after the room's state was lost (after sale.lua): one
-- instance's streams, all at once. Old tickets keep the old order across
-- instances; a user with a place now (entered again, admitted) keeps it.
-- ARGV: user, ticket ('' = none) pairs. Returns {head ticket (-1: nobody),
-- then each user's ticket now (-1: not in line)}.
local function has_place(user)
  return redis.call('ZSCORE', K_PASSES, user) or redis.call('ZSCORE', K_ACTIVE, user)
      or redis.call('ZSCORE', K_PRE, user) or redis.call('ZSCORE', K_LINE, user)
end

local highest = 0
for i = 2, #ARGV, 2 do
  if ARGV[i] ~= '' then highest = math.max(highest, tonumber(ARGV[i])) end
end
-- Later entrants stay behind every ticket put back.
if tonumber(redis.call('GET', K_SEQ) or 0) < highest then redis.call('SET', K_SEQ, highest) end

for i = 1, #ARGV, 2 do
  local user, ticket = ARGV[i], ARGV[i + 1]
  if ticket ~= '' and not has_place(user) then
    redis.call('ZADD', K_LINE, 'NX', ticket, user)
  end
end
for i = 1, #ARGV, 2 do
  local user = ARGV[i]
  if ARGV[i + 1] == '' and not has_place(user) then
    if opened() then
      redis.call('ZADD', K_LINE, redis.call('INCR', K_SEQ), user)
    else
      redis.call('ZADD', K_PRE, redis.call('INCR', K_SEQ), user)
    end
  end
end

local head = redis.call('ZRANGE', K_LINE, 0, 0, 'WITHSCORES')
local result = {head[2] and tonumber(head[2]) or -1}
for i = 1, #ARGV, 2 do
  local ticket = redis.call('ZSCORE', K_LINE, ARGV[i])
  result[#result + 1] = ticket and tonumber(ticket) or -1
end
return result
