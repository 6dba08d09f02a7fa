-- Reserve an entry token for one reservation attempt: only the user's own,
-- live, unclaimed token matches. Its expiry is kept.
-- KEYS[1] token:{s:<id>}:<userId>  ARGV[1] the token presented
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'claimed:' .. ARGV[1], 'KEEPTTL')
  return 1
end
return 0
