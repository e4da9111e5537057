-- The state of KEYS[1] without its owner: {0, held, fence, pttl}.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local fence = tonumber(cur[2]) or 0
if cur[1] and cur[1] ~= '' then
  return {0, 1, fence, redis.call('PTTL', KEYS[1])}
end
return {0, 0, fence, 0}
