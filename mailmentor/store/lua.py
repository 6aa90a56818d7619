"""The store's Lua scripts: every multi-key change runs as one script, so it is atomic.

`COMMIT` is a small interpreter for a batch of checks and writes built by `store.batch.Batch`.
Its arguments are a flat, binary-safe stream (Message-ID hashes are raw bytes):

    ARGV = mode, groups, then per group: checks, ops, <checks>, <ops>

with each check or op a code followed by a fixed number of arguments (key arguments are
1-based positions in KEYS). ``mode`` "all": every group's checks must pass or nothing is
written (returns {0, failed group}); "each": a group whose checks fail is skipped and the others
are written (returns {1, skipped groups…}).

The claim scripts name the due set's bucket keys themselves (``prefix .. bucket``): those keys
are only known inside the script. That is fine on one Redis (or Sentinel); Redis Cluster is not
supported (dramatiq's Redis broker does not support it either).
"""

from __future__ import annotations

_TOP_OF_BUCKET = """
local function refresh_top(bucket, top, name)
  local first = redis.call('ZRANGE', bucket, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', top, first[2], name)
  else
    redis.call('ZREM', top, name)
  end
end
"""

# A claim call's log (KEYS[3]) holds '' and what it claimed: a retried call answers from it.
_REPLAY = """
local logged = redis.call('LRANGE', KEYS[3], 0, -1)
if #logged > 0 then
  table.remove(logged, 1)
  return logged
end
"""

COMMIT = (
    _TOP_OF_BUCKET
    + """
local ARITY = {rev = 3, lease = 2, below = 2,
  hset = 3, hdel = 2, append = 3, due = 5, undue = 4, index = 4,
  zadd = 3, zrem = 2, ztrim = 2, del = 1, ckpt = 3, set = 3, sadd = 3}

local function rev_of(value)
  if not value then return 0 end
  local rev = string.match(value, '^(%d+)|')
  return tonumber(rev) or -1
end

local function passes(c)
  local code = c[1]
  if code == 'rev' then
    return rev_of(redis.call('HGET', KEYS[tonumber(c[2])], c[3])) == tonumber(c[4])
  elseif code == 'lease' then
    return redis.call('GET', KEYS[tonumber(c[2])]) == c[3]
  elseif code == 'below' then
    local current = redis.call('GET', KEYS[tonumber(c[2])])
    return (not current) or tonumber(current) < tonumber(c[3])
  end
  error('commit: unknown check ' .. tostring(code))
end

local function merge_index(key, field, loop_id, applied)
  local current = redis.call('HGET', key, field)
  local tokens, found = {}, false
  if current then
    for token in string.gmatch(current, '%S+') do
      local id, mark = token, false
      if string.sub(token, -1) == '+' then
        id, mark = string.sub(token, 1, -2), true
      end
      if id == loop_id then
        found = true
        mark = mark or applied
      end
      tokens[#tokens + 1] = mark and (id .. '+') or id
    end
  end
  if not found then
    tokens[#tokens + 1] = applied and (loop_id .. '+') or loop_id
  end
  local value = table.concat(tokens, ' ')
  if value ~= current then
    redis.call('HSET', key, field, value)
  end
end

local function apply(o)
  local code = o[1]
  local k = KEYS[tonumber(o[2])]
  if code == 'hset' then
    redis.call('HSET', k, o[3], o[4])
  elseif code == 'hdel' then
    redis.call('HDEL', k, o[3])
  elseif code == 'append' then
    local current = redis.call('HGET', k, o[3])
    redis.call('HSET', k, o[3], current and (current .. '\\n' .. o[4]) or o[4])
  elseif code == 'due' then
    local top = KEYS[tonumber(o[3])]
    redis.call('ZADD', k, o[5], o[4])
    refresh_top(k, top, o[6])
  elseif code == 'undue' then
    local top = KEYS[tonumber(o[3])]
    if redis.call('ZREM', k, o[4]) == 1 then
      refresh_top(k, top, o[5])
    end
  elseif code == 'index' then
    merge_index(k, o[3], o[4], o[5] == '1')
  elseif code == 'zadd' then
    redis.call('ZADD', k, o[3], o[4])
  elseif code == 'zrem' then
    redis.call('ZREM', k, o[3])
  elseif code == 'ztrim' then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. o[3])
  elseif code == 'del' then
    redis.call('DEL', k)
  elseif code == 'ckpt' then
    local validity = redis.call('HGET', k, 'uidvalidity')
    local last = redis.call('HGET', k, 'last_uid')
    if not (validity == o[3] and last and tonumber(last) >= tonumber(o[4])) then
      redis.call('HSET', k, 'uidvalidity', o[3], 'last_uid', o[4])
    end
  elseif code == 'set' then
    if tonumber(o[4]) > 0 then
      redis.call('SET', k, o[3], 'PX', o[4])
    else
      redis.call('SET', k, o[3])
    end
  elseif code == 'sadd' then
    redis.call('SADD', k, o[3])
    if tonumber(o[4]) > 0 then redis.call('EXPIRE', k, o[4]) end
  else
    error('commit: unknown op ' .. tostring(code))
  end
end

local cursor = 1
local function take()
  local code = ARGV[cursor]
  local n = ARITY[code]
  if not n then
    error('commit: unknown code ' .. tostring(code) .. ' at ' .. cursor)
  end
  local item = {code}
  for i = 1, n do item[i + 1] = ARGV[cursor + i] end
  cursor = cursor + n + 1
  return item
end

local mode = ARGV[1]
local ngroups = tonumber(ARGV[2])
cursor = 3
local groups = {}
for g = 1, ngroups do
  local nchecks, nops = tonumber(ARGV[cursor]), tonumber(ARGV[cursor + 1])
  cursor = cursor + 2
  local group = {checks = {}, ops = {}}
  for i = 1, nchecks do group.checks[i] = take() end
  for i = 1, nops do group.ops[i] = take() end
  groups[g] = group
end

local function group_passes(group)
  for _, c in ipairs(group.checks) do
    if not passes(c) then return false end
  end
  return true
end

if mode == 'all' then
  for g, group in ipairs(groups) do
    if not group_passes(group) then return {0, g} end
  end
  for _, group in ipairs(groups) do
    for _, o in ipairs(group.ops) do apply(o) end
  end
  return {1}
end
local result = {1}
for g, group in ipairs(groups) do
  if group_passes(group) then
    for _, o in ipairs(group.ops) do apply(o) end
  else
    result[#result + 1] = g
  end
end
return result
"""
)

# KEYS: top, claims, this call's log, the scheduler's lease. ARGV: now, lease_until, limit,
# owner, bucket key prefix, the lease value the caller holds ("" when it holds none: no fence).
# Due members up to ``now`` get the score lease_until (they come back then unless recorded
# or re-planned) and a claim naming the owner, in one step: two schedulers never share one.
# The call's log (a nonce key, kept a minute) makes a retried call (its answer was lost)
# return what the first one claimed instead of claiming more and losing those.
CLAIM_DUE = (
    _TOP_OF_BUCKET
    + _REPLAY
    + """
if ARGV[6] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[6] then
  return {}
end
local now, expiry, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local mark = ARGV[4] .. '|' .. expiry
local out = {}
local buckets = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, name in ipairs(buckets) do
  local bucket = ARGV[5] .. name
  local ids = redis.call('ZRANGEBYSCORE', bucket, '-inf', now, 'LIMIT', 0, limit - #out)
  for _, id in ipairs(ids) do
    redis.call('ZADD', bucket, expiry, id)
    redis.call('HSET', KEYS[2], id, mark)
    out[#out + 1] = id
  end
  refresh_top(bucket, KEYS[1], name)
  if #out >= limit then break end
end
redis.call('RPUSH', KEYS[3], '', unpack(out))
redis.call('EXPIRE', KEYS[3], 60)
return out
"""
)

# KEYS: top, claims. ARGV: now, bucket key prefix, then (id, bucket name, claim value)...
# A claim whose holder died: due again now, if it is still that claim (not taken since by a live
# process) and its due entry still the claim's (nobody re-planned it since).
RECOVER_DUE = (
    _TOP_OF_BUCKET
    + """
local now, prefix = ARGV[1], ARGV[2]
local recovered = 0
for i = 3, #ARGV, 3 do
  local id, name, claim = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HGET', KEYS[2], id) == claim then
    local expiry = string.match(claim, '|([^|]*)$')
    local bucket = prefix .. name
    local score = redis.call('ZSCORE', bucket, id)
    if score and tonumber(score) == tonumber(expiry) then
      redis.call('ZADD', bucket, now, id)
      refresh_top(bucket, KEYS[1], name)
      recovered = recovered + 1
    end
    redis.call('HDEL', KEYS[2], id)
  end
end
return recovered
"""
)

# KEYS: out, outclaims, this call's log, the scheduler's lease. ARGV: now, lease_until, limit,
# owner, the lease value held ("" none). The outbox's claim: one level, like CLAIM_DUE.
CLAIM_OUT = (
    _REPLAY
    + """
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then
  return {}
end
local now, expiry, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local mark = ARGV[4] .. '|' .. expiry
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, key in ipairs(keys) do
  redis.call('ZADD', KEYS[1], expiry, key)
  redis.call('HSET', KEYS[2], key, mark)
end
redis.call('RPUSH', KEYS[3], '', unpack(keys))
redis.call('EXPIRE', KEYS[3], 60)
return keys
"""
)

# KEYS: top, claims. ARGV: id, bucket name, bucket key prefix, owner, lease_until.
# The sender holds a claimed loop while it works on it: the claim names the sending process and
# its lease starts again, so a long retry is never claimed twice, and a dead sender's claim is
# recognised. Only an existing claim is held: a recorded or re-planned loop has none.
HOLD_DUE = (
    _TOP_OF_BUCKET
    + """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return 0
end
local bucket = ARGV[3] .. ARGV[2]
redis.call('ZADD', bucket, ARGV[5], ARGV[1])
refresh_top(bucket, KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. '|' .. ARGV[5])
return 1
"""
)

# KEYS: out, outclaims, outjob. ARGV: key, owner, lease_until. HOLD_DUE for the outbox.
HOLD_OUT = """
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
"""

# KEYS: out, outclaims. ARGV: now, then (key, claim value)...
RECOVER_OUT = """
local recovered = 0
for i = 2, #ARGV, 2 do
  local key, claim = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[2], key) == claim then
    local expiry = string.match(claim, '|([^|]*)$')
    local score = redis.call('ZSCORE', KEYS[1], key)
    if score and tonumber(score) == tonumber(expiry) then
      redis.call('ZADD', KEYS[1], ARGV[1], key)
      recovered = recovered + 1
    end
    redis.call('HDEL', KEYS[2], key)
  end
end
return recovered
"""

# KEYS: lease, fence. ARGV: owner, ttl_ms, a dead holder's value we may take over ("" none).
# Returns {1, token} when we hold it (new token on every new acquisition), else {0, holder}.
ACQUIRE_LEASE = """
local current = redis.call('GET', KEYS[1])
if current then
  local token, holder = string.match(current, '^(%d+)|(.*)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(token)}
  end
  if ARGV[3] == '' or current ~= ARGV[3] then
    return {0, current}
  end
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1], 'PX', ARGV[2])
return {1, token}
"""

# KEYS: lease. ARGV: owner. Give the lease up only if we hold it.
RELEASE_LEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^%d+|(.*)$') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: sending mark. ARGV: owner, ttl_ms, a dead holder's value we may take over ("" none).
# Returns "" when the caller now holds the mark, else the current holder.
BEGIN_SEND = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] and current ~= ARGV[3] then
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''
"""

# KEYS: marks set, its validity key. ARGV: uidvalidity, uids...
HANDLED_MARKS = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1])
end
for i = 2, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
end
return 1
"""

# KEYS: key. ARGV: value. Delete the key only while it still holds our value.
DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: the week's budget set. ARGV: budget (-1: none), ttl_s, items most urgent first.
# Returns the items that may go: counted already, or counted now while there is room.
ADMIT = """
local budget, admitted = tonumber(ARGV[1]), {}
for i = 3, #ARGV do
  local item = ARGV[i]
  if redis.call('SISMEMBER', KEYS[1], item) == 1 then
    admitted[#admitted + 1] = item
  elseif budget < 0 or redis.call('SCARD', KEYS[1]) < budget then
    redis.call('SADD', KEYS[1], item)
    admitted[#admitted + 1] = item
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return admitted
"""
