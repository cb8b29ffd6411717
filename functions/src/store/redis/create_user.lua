-- Create a user unless the name is taken, and log the sign-up.
-- ARGV[3] name, ARGV[4] password hash, ARGV[5] created (ms)
-- Returns 1 if created, 0 if the name was taken.
local key = k('user:' .. ARGV[3])
if redis.call('EXISTS', key) == 1 then
  return 0
end
redis.call('HSET', key, 'hash', ARGV[4], 'created', ARGV[5])
redis.call('ZADD', k('users'), 0, ARGV[3])
redis.call('ZADD', k('users:joined'), ARGV[5], ARGV[3])
log('j', ARGV[3], 'c', ARGV[5])
return 1
