-- Register a connection, count it for its user, cancel the user's pending
-- offline, and on 0 -> 1 move them online (logged), atomically.
-- ARGV[3] id, ARGV[4] user, ARGV[5] session key, ARGV[6] lease end (ms),
-- ARGV[7] most connections the user may have ('' for no cap), ARGV[8] the
-- session's end (ms: renewals stop there)
-- Returns the user's new transition number if they came online, else 0;
-- -1 (and nothing changed) if the session no longer exists (logged out or
-- expired: session keys expire by PEXPIREAT); -2 (and nothing changed) if
-- the user already has ARGV[7] connections.
if redis.call('EXISTS', k('session:' .. ARGV[5])) == 0 then
  return -1
end
local conn = k('conn:' .. ARGV[3])
if redis.call('EXISTS', conn) == 1 then
  redis.call('ZADD', k('leases'), 'GT', ARGV[6], ARGV[3])
  return 0
end
if ARGV[7] ~= '' and tonumber(redis.call('HGET', k('presence'), ARGV[4]) or '0') >= tonumber(ARGV[7]) then
  return -2
end
redis.call('HSET', conn, 'user', ARGV[4], 'session', ARGV[5], 'ends', ARGV[8])
redis.call('ZADD', k('leases'), ARGV[6], ARGV[3])
redis.call('SADD', k('sconns:' .. ARGV[5]), ARGV[3])
redis.call('ZADD', k('group:users'), 0, ARGV[3])
redis.call('HINCRBY', k('presence'), ARGV[4], 1)
redis.call('ZREM', k('pending'), ARGV[4])
if seq_of(ARGV[4]) % 2 == 0 then
  local seq = transition(ARGV[4])
  return seq
end
return 0
