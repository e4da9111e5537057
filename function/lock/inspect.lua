-- The state of the lock KEYS[1] without owners (the layout is in
-- acquire.lua; KEYS[2] and KEYS[3] are its MULTI leases' zset and hash,
-- KEYS[4] its queue's deadlines). Writes nothing. Returns {0, held, fence,
-- pttl, 0, holders, limit, waiters, delay_left, holder, mode, then FENCE,
-- TTL, HOLDER, MODE per lease of a MULTI lock}, as acquire.lua's refusal.
local MULTI = '#################################################################################################################################' -- see acquire.lua
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'holder', 'limit', 'until')
local owner, fence = cur[1], tonumber(cur[2]) or 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local waiters = 0 -- quorum mode's masters pass KEYS[1] alone: no queue there
if KEYS[4] then waiters = redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf') end
if owner ~= MULTI then
  if owner and owner ~= '' then
    local p = redis.call('PTTL', KEYS[1])
    return {0, 1, fence, p, 0, 1, 1, waiters, 0, cur[3] or '', 'x'}
  end
  return {0, 0, fence, 0, 0, 0, 0, waiters, 0, '', ''}
end
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf', 'WITHSCORES')
local reply = {0, 0, fence, 0, 0, #live / 2, 0, waiters, 0, '', ''}
local u = tonumber(cur[5]) or 0
if u > now then reply[9] = u - now end
for i = 1, #live, 2 do
  local info = redis.call('HGET', KEYS[3], live[i]) or ''
  local f, md, _, h = string.match(info, '^(%d+) (%a) (%d+) (.*)$')
  local left = tonumber(live[i + 1]) - now
  if reply[4] == 0 or left < reply[4] then reply[4] = left end
  reply[#reply + 1] = tonumber(f) or 0
  reply[#reply + 1] = left
  reply[#reply + 1] = h or ''
  reply[#reply + 1] = md or 'x'
end
if #live > 0 then
  reply[2], reply[7], reply[10], reply[11] = 1, tonumber(cur[4]) or 1, reply[14], reply[15]
end
return reply
