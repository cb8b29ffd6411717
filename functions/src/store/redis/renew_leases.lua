-- Extend the leases of registered connections (never shorten one).
-- KEYS[1] leases zset; ARGV[1] new lease end (ms), ARGV[2..] ids
-- Returns the ids that are not registered.
local missing = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
return missing
