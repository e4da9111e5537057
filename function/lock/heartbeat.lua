-- Extend owner ARGV[1]'s live lease on the lock KEYS[1] to ARGV[2] ms (the
-- layout is in acquire.lua; KEYS[3] and KEYS[4] are its MULTI leases' zset
-- and hash). An expired lease is gone, or past its score, so it is never
-- revived here. Returns {extended, held, fence, pttl}; an "extended FENCE
-- TTL MODE HOLDER" change message goes to KEYS[2] with the command ARGV[3].
-- Quorum mode's masters run it with KEYS[1] alone (no MULTI locks there).
local MULTI = '#################################################################################################################################' -- see acquire.lua
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'holder')
local owner, fence = cur[1], tonumber(cur[2]) or 0
local ttl = tonumber(ARGV[2])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  if KEYS[2] then redis.call(ARGV[3], KEYS[2], 'extended ' .. cur[2] .. ' ' .. ttl .. ' x ' .. (cur[3] or '')) end
  return {1, 1, fence, ttl}
end
if owner ~= MULTI then
  if owner and owner ~= '' then
    return {0, 1, fence, redis.call('PTTL', KEYS[1])}
  end
  return {0, 0, fence, 0}
end
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]))
if score and score > now then
  local info = redis.call('HGET', KEYS[4], ARGV[1]) or ''
  local f, md, d, h = string.match(info, '^(%d+) (%a) (%d+) (.*)$')
  redis.call('ZADD', KEYS[3], 'XX', now + ttl, ARGV[1])
  local want = ttl + (tonumber(d) or 0)
  for _, k in ipairs({KEYS[1], KEYS[3], KEYS[4]}) do
    if redis.call('PTTL', k) < want then redis.call('PEXPIRE', k, want) end
  end
  redis.call(ARGV[3], KEYS[2], 'extended ' .. (f or '0') .. ' ' .. ttl .. ' ' .. (md or 'x') .. ' ' .. (h or ''))
  return {1, 1, tonumber(f) or fence, ttl}
end
local n = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
return {0, n > 0 and 1 or 0, fence, 0}
