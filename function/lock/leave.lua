-- A waiter gives up: its entry ARGV[1] (MODE..owner) leaves the queue
-- KEYS[1] and its deadlines KEYS[2], and the waiters behind it are woken on
-- KEYS[3] with ARGV[2] (PUBLISH or SPUBLISH), since the lock may be theirs
-- now. Returns 1 if the entry was there.
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call(ARGV[2], KEYS[3], 'left')
end
return n
