-- Unregister a connection and uncount it, atomically.
-- KEYS[1] conn hash, KEYS[2] leases zset, KEYS[3] presence hash, KEYS[4] seq
-- hash, KEYS[5] group zset
-- ARGV[1] id, ARGV[2] key prefix (for the session's connection set),
-- ARGV[3] '' to remove unconditionally, or a time (ms): remove only if the
-- lease ended at or before it.
-- Returns nil if nothing was removed, else {user, session, seq} where seq is
-- the user's new transition number on 1 -> 0, else 0.
local rec = redis.call('HMGET', KEYS[1], 'user', 'session')
if not rec[1] then
  -- Not registered; drop any stray index entries.
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return nil
end
if ARGV[3] ~= '' then
  local lease = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if lease and tonumber(lease) > tonumber(ARGV[3]) then
    return nil
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('SREM', ARGV[2] .. 'sconns:' .. rec[2], ARGV[1])
local seq = 0
if redis.call('HINCRBY', KEYS[3], rec[1], -1) <= 0 then
  redis.call('HDEL', KEYS[3], rec[1])
  seq = redis.call('HINCRBY', KEYS[4], rec[1], 1)
end
return {rec[1], rec[2], seq}
