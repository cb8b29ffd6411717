-- Extend the leases of registered connections (never shorten one), each
-- at most to its session's end (field `ends` of its hash).
-- KEYS[1] leases zset; ARGV[1] new lease end (ms), ARGV[2] the prefix of
-- connection hashes (`P conn:`), ARGV[3..] ids
-- Returns the ids that are not registered.
local missing = {}
local want = tonumber(ARGV[1])
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    local ends = tonumber(redis.call('HGET', ARGV[2] .. ARGV[i], 'ends') or '')
    local to = want
    if ends and ends < to then
      to = ends
    end
    redis.call('ZADD', KEYS[1], 'GT', to, ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
return missing
