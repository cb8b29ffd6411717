-- Register a connection and count it for its user, atomically.
-- KEYS[1] conn hash, KEYS[2] leases zset, KEYS[3] presence hash (user -> open
-- connections), KEYS[4] seq hash (user -> transitions), KEYS[5] the session's
-- connection set, KEYS[6] group zset
-- ARGV[1] id, ARGV[2] user, ARGV[3] session key, ARGV[4] lease end (ms)
-- Returns the user's new transition number on 0 -> 1, else 0.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZADD', KEYS[2], 'GT', ARGV[4], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], 'user', ARGV[2], 'session', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], 0, ARGV[1])
if redis.call('HINCRBY', KEYS[3], ARGV[2], 1) == 1 then
  return redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
end
return 0
