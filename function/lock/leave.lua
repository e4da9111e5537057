-- A waiter gives up: its entry ARGV[1] (MODE..owner) leaves the queue
-- KEYS[1] and its deadlines KEYS[2]. If it was first, the new first waiter
-- is woken on KEYS[3] with ARGV[2] (PUBLISH or SPUBLISH): 'left PLACE', as
-- the lock may be its now. Returns 1 if the entry was there.
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if rank == 0 and head then
  redis.call(ARGV[2], KEYS[3], 'left ' .. head)
end
return 1
