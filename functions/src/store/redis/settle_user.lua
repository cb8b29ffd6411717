-- Take one user offline if their pending offline is due and no connection
-- of theirs came back.
-- ARGV[3] user, ARGV[4] now (ms). Returns {new transition number, when
-- (ms)}, or {0, ''}.
local user = ARGV[3]
local due = redis.call('ZSCORE', k('pending'), user)
if not due or tonumber(due) > tonumber(ARGV[4]) then
  return {0, ''}
end
redis.call('ZREM', k('pending'), user)
local conns = tonumber(redis.call('HGET', k('presence'), user) or '0')
if conns > 0 or seq_of(user) % 2 == 0 then
  return {0, ''}
end
local seq, t = transition(user)
return {seq, t}
