-- The attempt succeeded: the pass is used for good (the token key says so
-- until the hold ends, so the user reads `token-used`), and the user's slot
-- now lasts until the hold expires (or is paid or cancelled: free_slot).
-- The hold exists even if the pass expired mid-attempt, so its slot counts
-- whatever the token key holds now.
-- KEYS[1] token:{s}:<user>  KEYS[2] passes:{s}  KEYS[3] active:{s}
-- ARGV[1] the token  ARGV[2] user id  ARGV[3] hold expiry (ms)  ARGV[4] now (ms)
local ttl = tonumber(ARGV[3]) - tonumber(ARGV[4])
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], 'used:' .. ARGV[1], 'PX', ttl)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
