-- Take a user offline now if they have no connection but are still online
-- (a pending grace period): log out is immediate.
-- ARGV[3] user. Returns {new transition number, when (ms)}, or {0, ''}.
local user = ARGV[3]
local conns = tonumber(redis.call('HGET', k('presence'), user) or '0')
if conns > 0 or seq_of(user) % 2 == 0 then
  return {0, ''}
end
redis.call('ZREM', k('pending'), user)
local seq, t = transition(user)
return {seq, t}
