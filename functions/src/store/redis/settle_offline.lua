-- Take offline the users whose grace deadline passed with no connection back.
-- ARGV[3] now (ms), ARGV[4] at most this many users
-- Returns {user1, seq1, t1, user2, seq2, t2, ...} of those who went offline
-- (t: when, ms).
local due = redis.call('ZRANGEBYSCORE', k('pending'), '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
local out = {}
for _, user in ipairs(due) do
  redis.call('ZREM', k('pending'), user)
  local conns = tonumber(redis.call('HGET', k('presence'), user) or '0')
  if conns <= 0 and seq_of(user) % 2 == 1 then
    local seq, t = transition(user)
    out[#out + 1] = user
    out[#out + 1] = seq
    out[#out + 1] = t
  end
end
return out
