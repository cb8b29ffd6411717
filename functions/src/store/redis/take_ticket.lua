-- Consumes a socket ticket: its session and expiry, and it is gone (one
-- script, so of racing takes exactly one gets it).
-- KEYS[1] = P ticket:{hash}
local got = redis.call('HMGET', KEYS[1], 'session', 'exp')
if not got[1] then
  return false
end
redis.call('DEL', KEYS[1])
return {got[1], got[2] or '0'}
