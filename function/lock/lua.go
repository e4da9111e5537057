package lock

import (
	"sync"

	"github.com/redis/go-redis/v9"
)

// lua is a lock script whose redis.Script, and so its SHA1, is made on
// first use rather than at package init, which a cold start would wait for.
type lua struct {
	src    string
	once   sync.Once
	script *redis.Script
}

func newLua(src string) *lua { return &lua{src: src} }

// get returns the script, hashing its source on the first call.
func (l *lua) get() *redis.Script {
	l.once.Do(func() { l.script = redis.NewScript(l.src) })
	return l.script
}
