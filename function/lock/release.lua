-- Release the lease on KEYS[1] if owner ARGV[1] holds it, leave a tombstone
-- for ARGV[2] ms that keeps the fence, and wake waiters on channel KEYS[2]
-- with ARGV[3] (PUBLISH, or SPUBLISH in Cluster). A release repeated by the
-- same owner within the tombstone's life succeeds again, so a retried call
-- is idempotent. Returns {released, held, fence, pttl}.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'fence', 'prev')
local owner, fence = cur[1], tonumber(cur[2]) or 0
if owner == ARGV[1] then
  redis.call('HSET', KEYS[1], 'owner', '', 'prev', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call(ARGV[3], KEYS[2], 'released')
  return {1, 0, fence, 0}
end
if owner == '' and cur[3] == ARGV[1] then
  return {1, 0, fence, 0}
end
if owner and owner ~= '' then
  return {0, 1, fence, redis.call('PTTL', KEYS[1])}
end
-- Free: never held, expired, or a tombstone ('' owner) of another's release.
return {0, 0, fence, 0}
