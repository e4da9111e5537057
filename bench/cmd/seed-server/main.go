// Command seed-server serves the seed-like baseline (package seed) on
// 127.0.0.1:$CANDADO_PORT against the Redis at $CANDADO_REDIS_URL.
package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"

	"handler/function/bench/internal/seed"
)

func main() {
	opt, err := redis.ParseURL(os.Getenv("CANDADO_REDIS_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed-server:", err)
		os.Exit(2)
	}
	err = http.ListenAndServe("127.0.0.1:"+os.Getenv("CANDADO_PORT"), seed.Handler(redis.NewClient(opt)))
	fmt.Fprintln(os.Stderr, "seed-server:", err)
	os.Exit(1)
}
