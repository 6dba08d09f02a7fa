-- The attempt succeeded: the token is gone, and the user's slot now lasts
-- until the hold expires (or is paid or cancelled: free_slot).
-- KEYS[1] token:{s:<id>}:<userId>  KEYS[2] active:{s:<id>}
-- ARGV[1] the token  ARGV[2] user id  ARGV[3] hold expiry (ms)
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  return 1
end
return 0
