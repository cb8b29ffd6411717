-- Unregister a connection and uncount it, atomically. If it was its user's
-- last, they go offline now (logged) or at a grace deadline.
-- ARGV[3] id, ARGV[4] '' to remove unconditionally, or a time (ms): remove
-- only if the lease ended at or before it; ARGV[5] '' to go offline now, or
-- the grace deadline (ms).
-- Returns nil if nothing was removed, else {user, session, seq, grace, t}:
-- seq the user's new transition number if they went offline now, else 0;
-- grace 1 if their offline now waits for the deadline; t when they went
-- offline now (ms), else ''.
local conn = k('conn:' .. ARGV[3])
local rec = redis.call('HMGET', conn, 'user', 'session')
if not rec[1] then
  -- Not registered; drop any stray index entries.
  redis.call('ZREM', k('leases'), ARGV[3])
  redis.call('ZREM', k('group:users'), ARGV[3])
  return nil
end
if ARGV[4] ~= '' then
  local lease = redis.call('ZSCORE', k('leases'), ARGV[3])
  if lease and tonumber(lease) > tonumber(ARGV[4]) then
    return nil
  end
end
local user = rec[1]
redis.call('DEL', conn)
redis.call('ZREM', k('leases'), ARGV[3])
redis.call('ZREM', k('group:users'), ARGV[3])
redis.call('SREM', k('sconns:' .. rec[2]), ARGV[3])
local seq, grace, t = 0, 0, ''
if redis.call('HINCRBY', k('presence'), user, -1) <= 0 then
  redis.call('HDEL', k('presence'), user)
  if seq_of(user) % 2 == 1 then
    if ARGV[5] == '' then
      redis.call('ZREM', k('pending'), user)
      seq, t = transition(user)
    else
      redis.call('ZADD', k('pending'), ARGV[5], user)
      grace = 1
    end
  end
end
return {user, rec[2], seq, grace, t}
