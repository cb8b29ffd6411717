-- Who is online and the log position that is as of, in one atomic read.
-- Returns {n, last entry id, user1, seq1, user2, seq2, ...}.
local n = redis.call('GET', k('log:n')) or '0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = '0-0'
if last[1] then
  id = last[1][1]
end
local out = {n, id}
local online = redis.call('HGETALL', k('online'))
for i = 1, #online do
  out[#out + 1] = online[i]
end
return out
