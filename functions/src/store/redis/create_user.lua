-- Create a user unless the name is taken.
-- KEYS[1] user hash, KEYS[2] users sorted set
-- ARGV[1] name, ARGV[2] password hash, ARGV[3] created (ms)
-- Returns 1 if created, 0 if the name was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'hash', ARGV[2], 'created', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
