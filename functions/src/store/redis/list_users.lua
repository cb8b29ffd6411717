-- A page of users by name, with their transition numbers.
-- ARGV[3] lower bound ('-' from the start, '(' .. name after a name, '['
-- .. prefix from a prefix on), ARGV[5] upper bound ('+', or '(' .. prefix
-- .. "\xff": every name starting with the prefix, no byte of UTF-8 being
-- 0xff),
-- ARGV[4] at most this many. Returns {name1, seq1, seen1, ...} (seen: when
-- they last went offline, ms, or '').
local names = redis.call('ZRANGEBYLEX', k('users'), ARGV[3], ARGV[5], 'LIMIT', 0, ARGV[4])
local out = {}
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', k('seq'), name) or '0'
  out[#out + 1] = redis.call('HGET', k('seen'), name) or ''
end
return out
