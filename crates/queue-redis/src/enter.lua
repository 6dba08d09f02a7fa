-- Enter the waiting room: ZADD NX at the next arrival number, so entering
-- twice keeps the first place. An admitted user (a live slot) stays admitted.
-- KEYS[1] queue:{s:<id>}  KEYS[2] queue-seq:{s:<id>}  KEYS[3] active:{s:<id>}
-- ARGV[1] user id  ARGV[2] now (ms)
-- Returns {position (1-based, 0 if admitted), waiting, admitted (0/1)}.
local slot = redis.call('ZSCORE', KEYS[3], ARGV[1])
if slot and tonumber(slot) > tonumber(ARGV[2]) then
  return {0, redis.call('ZCARD', KEYS[1]), 1}
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then
  redis.call('ZADD', KEYS[1], 'NX', redis.call('INCR', KEYS[2]), ARGV[1])
  rank = redis.call('ZRANK', KEYS[1], ARGV[1])
end
return {rank + 1, redis.call('ZCARD', KEYS[1]), 0}
