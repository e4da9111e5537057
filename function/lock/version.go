package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MinRedis is the oldest Redis the scripts run on: 4.0 has HSET with
// several fields, and redis.replicate_commands(), which lets acquire.lua
// write after TIME (the default from 5.0 on).
const MinRedis = "4.0"

// versionCheck finds out whether a script error comes from a Redis older
// than MinRedis. It costs nothing until a script fails with an error of
// Redis' own, so a cold start does no extra round trip; an INFO that fails
// is asked again at the next such error.
type versionCheck struct {
	mu    sync.Mutex
	known bool  // INFO has answered
	err   error // non-nil when Redis is too old
}

// explain returns err, or an error that says which Redis is needed when err
// is an error answered by a Redis older than MinRedis.
func (v *versionCheck) explain(ctx context.Context, rdb redis.UniversalClient, err error) error {
	var rerr redis.Error
	if !errors.As(err, &rerr) || redis.HasErrorPrefix(err, "NOSCRIPT") {
		return err // a network error, or one that says nothing of the version
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.known {
		// Its own bound: the request's may be nearly spent by now.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		info, ierr := rdb.Info(ictx, "server").Result()
		cancel()
		if ierr != nil {
			return err
		}
		v.known = true
		if version, old := tooOld(info); old {
			v.err = fmt.Errorf("redis %s is too old: Candado needs Redis %s or later", version, MinRedis)
		}
	}
	if v.err != nil {
		return fmt.Errorf("%w (%w)", v.err, err)
	}
	return err
}

// tooOld reads redis_version from an INFO answer and reports whether it is
// older than MinRedis; an answer without a version is not too old.
func tooOld(info string) (version string, old bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "redis_version:")
		if !ok {
			continue
		}
		major, rest, _ := strings.Cut(v, ".")
		minor, _, _ := strings.Cut(rest, ".")
		maj, err1 := strconv.Atoi(major)
		mnr, err2 := strconv.Atoi(minor)
		if err1 != nil || err2 != nil {
			return v, false
		}
		needMaj, needMin := 4, 0
		return v, maj < needMaj || (maj == needMaj && mnr < needMin)
	}
	return "", false
}
