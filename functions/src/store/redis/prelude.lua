-- Shared by every rollcall script (prepended to each).
-- KEYS[1] is the event log stream (declared so a cluster routes the script;
-- every other key is built from the prefix, so on Redis Cluster the prefix
-- must carry a hash tag, e.g. {rollcall}:).
-- ARGV[1] key prefix, ARGV[2] the log's approximate maximum length; the
-- script's own arguments start at ARGV[3].
local P = ARGV[1]
local LOG_MAX = ARGV[2]
local function k(name) return P .. name end

-- Appends an entry to the log, numbered consecutively (field n) so readers
-- notice a gap or a rewind; then the entry's fields (name, value, ...).
local function log(kind, user, ...)
  local n = redis.call('INCR', k('log:n'))
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', LOG_MAX, '*', 'n', n, 'k', kind, 'u', user, ...)
end

-- Redis's clock in ms since the epoch, as a string (exact: no float).
local function now_ms()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end

local function seq_of(user)
  return tonumber(redis.call('HGET', k('seq'), user) or '0')
end

-- The user's next presence transition (odd: online, even: offline), with
-- its log entry, in the same atomic step. Going offline records when (P
-- seen, the log entry's t): the user's last seen. Returns the new
-- transition number and that time ('' going online).
local function transition(user)
  local seq = redis.call('HINCRBY', k('seq'), user, 1)
  if seq % 2 == 1 then
    redis.call('HSET', k('online'), user, seq)
    log('p', user, 's', seq)
    return seq, ''
  end
  local t = now_ms()
  redis.call('HDEL', k('online'), user)
  redis.call('HSET', k('seen'), user, t)
  log('p', user, 's', seq, 't', t)
  return seq, t
end
