-- The attempt failed: the claimed token is usable again, with its expiry.
-- KEYS[1] token:{s:<id>}:<userId>  ARGV[1] the token
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
return 0
