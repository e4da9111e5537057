package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestTooOld(t *testing.T) {
	for info, want := range map[string]bool{
		"# Server\r\nredis_version:3.2.12\r\nredis_mode:standalone\r\n": true,
		"redis_version:2.8.24\r\n":                                      true,
		"redis_version:4.0.14\r\n":                                      false,
		"redis_version:7.0.15\r\n":                                      false,
		"redis_version:10.1.0\r\n":                                      false,
		"# Server\r\nredis_mode:x\r\n":                                  false, // no version: nothing to say
		"redis_version:garbage\r\n":                                     false,
	} {
		if _, got := tooOld(info); got != want {
			t.Errorf("tooOld(%q) = %v, want %v", info, got, want)
		}
	}
}

// fakeRedis answers every EVAL and EVALSHA with scriptErr and INFO with
// the given version, as an old Redis refusing acquire.lua would.
func fakeRedis(t *testing.T, version, scriptErr string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := bufio.NewReader(c)
				for {
					args, err := readCommand(rd)
					if err != nil {
						return
					}
					switch strings.ToUpper(args[0]) {
					case "INFO":
						body := "# Server\r\nredis_version:" + version + "\r\n"
						fmt.Fprintf(c, "$%d\r\n%s\r\n", len(body), body)
					case "EVAL", "EVALSHA":
						fmt.Fprintf(c, "-%s\r\n", scriptErr)
					default: // HELLO and the like: unknown to an old Redis
						fmt.Fprintf(c, "-ERR unknown command '%s'\r\n", args[0])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		head, err := rd.ReadString('\n') // $len
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
		if err != nil {
			return nil, err
		}
		// By its length: a script's source spans many lines.
		v := make([]byte, size+2)
		if _, err := io.ReadFull(rd, v); err != nil {
			return nil, err
		}
		args[i] = string(v[:size])
	}
	return args, nil
}

// On a Redis older than MinRedis, a refused script answers an error that
// says which Redis is needed; on a recent one the error is left alone.
func TestOldRedisIsNamed(t *testing.T) {
	const refusal = "ERR Error running script (call to f_0123): @user_script:20: Write commands not allowed after non deterministic commands"
	for _, tc := range []struct {
		version string
		want    string
	}{
		{"3.0.7", "redis 3.0.7 is too old: Candado needs Redis 4.0 or later"},
		{"7.2.4", ""},
	} {
		rdb := redis.NewClient(&redis.Options{Addr: fakeRedis(t, tc.version, refusal), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
		s := NewRedisStore(rdb, RedisOptions{Timeout: time.Second})
		_, err := s.Acquire(context.Background(), AcquireRequest{ID: "a", Owner: "o", TTL: time.Second})
		s.Close()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Redis %s: acquire = %v, want ErrUnavailable", tc.version, err)
		}
		if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Redis %s: %q does not say %q", tc.version, err, tc.want)
		}
		if tc.want == "" && strings.Contains(err.Error(), "too old") {
			t.Errorf("Redis %s: %q blames the version", tc.version, err)
		}
		if !strings.Contains(err.Error(), "non deterministic") {
			t.Errorf("Redis %s: %q lost Redis' own error", tc.version, err)
		}
	}
}
