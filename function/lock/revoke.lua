-- Revoke the lease on KEYS[1], whoever holds it: end it now as an expiry
-- would, but leave a tombstone for ARGV[1] ms that keeps the fence (so the
-- next grant's fence is above it). prev is cleared, so the holder's late
-- release or heartbeat is refused (not_held), exactly as after an expiry.
-- Waiters on KEYS[2] are woken with ARGV[2] (PUBLISH or SPUBLISH), and a
-- "revoked FENCE 0" change message goes to KEYS[3] with ARGV[3].
-- Returns {revoked, held, fence, pttl}: {0, 0, fence, 0} when nobody held it.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence')
local owner, fence = cur[1], tonumber(cur[2]) or 0
if owner and owner ~= '' then
  redis.call('HSET', KEYS[1], 'owner', '', 'prev', '')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call(ARGV[2], KEYS[2], 'released')
  redis.call(ARGV[3], KEYS[3], 'revoked ' .. cur[2] .. ' 0')
  return {1, 0, fence, 0}
end
return {0, 0, fence, 0}
