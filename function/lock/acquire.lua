-- Acquire a lease on one lock. The layout of a lock's keys (they share the
-- id's hash tag):
--   KEYS[1] hash: fence (the last one minted), and either the one lease of
--           a plain mutex (owner, holder, prev: '' owner is a tombstone of a
--           release that keeps the fence for a moment) or, for semaphores,
--           shared leases and leases with a lock-delay, owner = MULTI,
--           limit, and until/until_owner while a lock-delay runs.
--   KEYS[3] zset of MULTI leases: owner -> expiry (ms, Redis' clock); a
--           negative score -(t) marks an owner who released, until t.
--   KEYS[4] hash of MULTI leases: owner -> 'FENCE MODE DELAY HOLDER'; a
--           release mark keeps 'FENCE r 0 ' (the repeat's answer).
--   KEYS[5] zset, the queue: MODE..owner -> arrival (us), and
--   KEYS[6] zset, its deadlines: MODE..owner -> when the entry lapses (ms).
-- KEYS[2] is the change channel (see changes.go), ARGV[3] its command;
-- KEYS[7] the wake-up channel, ARGV[9] its command (PUBLISH or SPUBLISH).
-- ARGV: 1 owner, 2 ttl ms, 3 change command, 4 holder, 5 limit, 6 mode
-- ('x' or 's'), 7 lock-delay ms, 8 how long a queue entry lives (ms; 0:
-- the caller does not wait, and does not join the queue), 9 wake command.
-- Returns {status, held, fence, pttl, retry, holders, limit, waiters,
-- delay_left, holder, mode, then FENCE, TTL, HOLDER, MODE per lease of a
-- MULTI lock}. status: 1 granted, 0 refused, 2 another limit.
-- MULTI is 129 '#', longer than any owner may be; a literal, as
-- string.rep would build it again on every call.
local MULTI = '#################################################################################################################################'
local owner_arg = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'holder')
local owner = cur[1]

-- The plain mutex, as fast as it can be: an exclusive lease of limit 1
-- with no lock-delay, on a lock that is no MULTI one and has no queue. Its
-- grant answers {1, 1, fence, ttl} alone, which the caller completes.
local plain = ARGV[5] == '1' and ARGV[6] == 'x' and ARGV[7] == '0'
if plain and owner ~= MULTI and owner ~= owner_arg and redis.call('EXISTS', KEYS[5]) == 0 then
  if not owner or owner == '' then
    -- A new fence is never below Redis' clock in microseconds (see mint),
    -- spelt from TIME's two parts: string.format costs more than the rest.
    if redis.replicate_commands then redis.replicate_commands() end
    local t = redis.call('TIME')
    local f = t[1] .. string.sub('00000' .. t[2], -6)
    local last = tonumber(cur[2])
    if last and last >= tonumber(f) then f = string.format('%.0f', last + 1) end
    redis.call('HSET', KEYS[1], 'owner', owner_arg, 'fence', f, 'prev', '', 'holder', ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call(ARGV[3], KEYS[2], 'acquired ' .. f .. ' ' .. ARGV[2] .. ' x ' .. ARGV[4])
    return {1, 1, tonumber(f), tonumber(ARGV[2])}
  end
  if ARGV[8] == '0' then
    local p = redis.call('PTTL', KEYS[1])
    return {0, 1, tonumber(cur[2]), p, p, 1, 1, 0, 0, cur[3] or '', 'x'}
  end
  -- a waiter: it joins the queue below
end

local ttl = tonumber(ARGV[2])
local fence = tonumber(cur[2])

local function change(kind, f, t, mode, holder)
  redis.call(ARGV[3], KEYS[2], kind .. ' ' .. f .. ' ' .. t .. ' ' .. mode .. ' ' .. holder)
end

-- A new fence is never below Redis' clock in microseconds, so it exceeds
-- every earlier fence even after the keys expired or the data was lost, and
-- exceeds the tombstone's fence even if the clock stalled.
-- Redis 4 refuses writes after TIME in a script unless its effects, not the
-- script, are replicated; from Redis 5 on that is the default.
if redis.replicate_commands then redis.replicate_commands() end
local function mint(micros)
  local f = micros
  if fence and fence >= f then f = fence + 1 end
  return string.format('%.0f', f)
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- The holder again: an idempotent retry keeps the fence, resets the TTL.
if plain and owner == owner_arg then
  redis.call('PEXPIRE', KEYS[1], ttl)
  change('extended', cur[2], ARGV[2], 'x', cur[3] or '')
  return {1, 1, fence, ttl, 0, 1, 1, redis.call('ZCARD', KEYS[5]), 0, cur[3] or '', 'x'}
end

local now, micros = clock()
local limit_arg = tonumber(ARGV[5])
local mode_arg = ARGV[6]

-- The live leases, as {owner, fence, mode, delay, holder, exp}.
local leases = {}
local limit = limit_arg
local until_ms, until_owner = 0, false
if owner == MULTI then
  local m = redis.call('HMGET', KEYS[1], 'limit', 'until', 'until_owner')
  limit = tonumber(m[1]) or 1
  until_ms, until_owner = tonumber(m[2]) or 0, m[3]
  -- Expired leases leave; one with a lock-delay starts it at its expiry.
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], 0, now, 'WITHSCORES')
  for i = 1, #gone, 2 do
    local info = redis.call('HGET', KEYS[4], gone[i])
    local d = tonumber(info and string.match(info, '^%d+ %a (%d+)') or 0)
    local ends = tonumber(gone[i + 1]) + d
    if d > 0 and ends > until_ms then until_ms, until_owner = ends, gone[i] end
    redis.call('HDEL', KEYS[4], gone[i])
    redis.call('ZREM', KEYS[3], gone[i])
  end
  if until_ms > now then
    redis.call('HSET', KEYS[1], 'until', until_ms, 'until_owner', until_owner)
  else
    until_ms = 0
    redis.call('HDEL', KEYS[1], 'until', 'until_owner')
  end
  -- Marks of releases whose idempotency window ended, and the fences
  -- they kept.
  for _, o in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. (-now), '(0')) do
    redis.call('HDEL', KEYS[4], o)
    redis.call('ZREM', KEYS[3], o)
  end
  local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf', 'WITHSCORES')
  for i = 1, #live, 2 do
    local info = redis.call('HGET', KEYS[4], live[i]) or ''
    local f, md, d, h = string.match(info, '^(%d+) (%a) (%d+) (.*)$')
    leases[#leases + 1] = {owner = live[i], fence = f or '0', mode = md or 'x', delay = tonumber(d) or 0,
      holder = h or '', exp = tonumber(live[i + 1])}
  end
elseif owner and owner ~= '' then
  leases[1] = {owner = owner, fence = cur[2], mode = 'x', delay = 0, holder = cur[3] or '',
    exp = now + redis.call('PTTL', KEYS[1])}
  limit = 1
end
if #leases == 0 then limit = limit_arg end

-- keep makes every MULTI key live at least until ms (Redis' clock).
local function keep(ms)
  local want = ms - now
  for _, k in ipairs({KEYS[1], KEYS[3], KEYS[4]}) do
    if redis.call('PTTL', k) < want then redis.call('PEXPIRE', k, want) end
  end
end

-- The caller's own lease: an idempotent retry keeps it and its fence, and
-- resets its TTL.
for _, l in ipairs(leases) do
  if l.owner == owner_arg then
    if owner == MULTI then
      redis.call('ZADD', KEYS[3], 'XX', now + ttl, owner_arg)
      keep(now + ttl + l.delay)
    else
      redis.call('PEXPIRE', KEYS[1], ttl)
    end
    change('extended', l.fence, ttl, l.mode, l.holder)
    return {1, 1, tonumber(l.fence), ttl, 0, #leases, limit, redis.call('ZCARD', KEYS[5]), 0, l.holder, l.mode}
  end
end

-- The queue, without the entries whose waiters stopped refreshing them.
local me = mode_arg .. owner_arg
if redis.call('EXISTS', KEYS[5]) == 1 then
  local dead = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)
  for _, d in ipairs(dead) do
    redis.call('ZREM', KEYS[5], d)
    redis.call('ZREM', KEYS[6], d)
  end
end
local rank = redis.call('ZRANK', KEYS[5], me)
local ahead = rank or redis.call('ZCARD', KEYS[5])

local nx, ns = 0, 0
for _, l in ipairs(leases) do
  if l.mode == 's' then ns = ns + 1 else nx = nx + 1 end
end
local status = 0
if #leases > 0 and limit ~= limit_arg then
  status = 2
  if rank then -- a waiter of another limit: it will not wait any more
    redis.call('ZREM', KEYS[5], me)
    redis.call('ZREM', KEYS[6], me)
    rank, ahead = nil, 0
  end
end
local delay_left = 0
if until_ms > now then delay_left = until_ms - now end

local grant = false
if status == 0 and delay_left == 0 then
  if mode_arg == 'x' then
    grant = ns == 0 and nx + ahead < limit
  else
    grant = nx == 0 and ns < 1000
    if grant and ahead > 0 then
      for _, m in ipairs(redis.call('ZRANGE', KEYS[5], 0, ahead - 1)) do
        if string.sub(m, 1, 1) == 'x' then grant = false break end
      end
    end
  end
end

if grant then
  local f = mint(micros)
  if rank then
    redis.call('ZREM', KEYS[5], me)
    redis.call('ZREM', KEYS[6], me)
  end
  local waiters = redis.call('ZCARD', KEYS[5])
  if plain and #leases == 0 then
    if owner == MULTI then redis.call('DEL', KEYS[3], KEYS[4]) end
    redis.call('HDEL', KEYS[1], 'limit', 'until', 'until_owner')
    redis.call('HSET', KEYS[1], 'owner', owner_arg, 'fence', f, 'prev', '', 'holder', ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ttl)
    change('acquired', f, ttl, 'x', ARGV[4])
    return {1, 1, tonumber(f), ttl, 0, 1, 1, waiters, 0, ARGV[4], 'x'}
  end
  redis.call('HSET', KEYS[1], 'owner', MULTI, 'fence', f, 'limit', limit, 'prev', '', 'holder', '')
  redis.call('ZADD', KEYS[3], now + ttl, owner_arg)
  redis.call('HSET', KEYS[4], owner_arg, f .. ' ' .. mode_arg .. ' ' .. ARGV[7] .. ' ' .. ARGV[4])
  keep(now + ttl + tonumber(ARGV[7]))
  change('acquired', f, ttl, mode_arg, ARGV[4])
  -- Room may be left for the next waiters (shared leases, a semaphore's
  -- free slots) who looked while this one was ahead of them.
  if rank and waiters > 0 then redis.call(ARGV[9], KEYS[7], 'granted') end
  return {1, 1, tonumber(f), ttl, 0, #leases + 1, limit, waiters, 0, ARGV[4], mode_arg}
end

-- Refused. A waiter joins the queue, or keeps its place and refreshes it.
local hold = tonumber(ARGV[8])
if hold > 0 and status == 0 then
  redis.call('ZADD', KEYS[5], 'NX', micros, me)
  redis.call('ZADD', KEYS[6], now + hold, me)
  for _, k in ipairs({KEYS[5], KEYS[6]}) do
    if redis.call('PTTL', k) < hold then redis.call('PEXPIRE', k, hold) end
  end
  if not rank then ahead = redis.call('ZRANK', KEYS[5], me) end
end

-- When the answer may change with no wake-up: a lease's end, the
-- lock-delay's end, or the lapse of a queue entry ahead.
local retry, pttl = 0, 0
local function soonest(ms)
  if ms > 0 and (retry == 0 or ms < retry) then retry = ms end
end
for _, l in ipairs(leases) do
  local left = l.exp - now
  if pttl == 0 or left < pttl then pttl = left end
  soonest(left)
end
soonest(delay_left)
if ahead > 0 then
  local first = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  if first[2] then soonest(tonumber(first[2]) - now) end
end

local held, mode, holder = 0, '', ''
if #leases > 0 then
  held, mode, holder = 1, leases[1].mode, leases[1].holder
end
local reply = {status, held, fence or 0, pttl, retry, #leases, (#leases > 0) and limit or 0,
  redis.call('ZCARD', KEYS[5]), delay_left, holder, mode}
if owner == MULTI then
  for _, l in ipairs(leases) do
    reply[#reply + 1] = tonumber(l.fence)
    reply[#reply + 1] = l.exp - now
    reply[#reply + 1] = l.holder
    reply[#reply + 1] = l.mode
  end
end
return reply
