package main

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// localRedis is the in-process Redis of a local run: "candado serve" with no
// Redis configured and not in a Kubernetes pod. Its TTLs run down with the
// wall clock (miniredis only moves them when told). It lives here, not in
// function/, so that no platform build links it or can fall back to it.
type localRedis struct {
	*miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
}

func startLocalRedis() (*localRedis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("starting the in-process Redis: %w", err)
	}
	l := &localRedis{Miniredis: m, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			case <-l.stop:
				return
			}
		}
	}()
	return l, nil
}

// Close stops the clock and the server.
func (l *localRedis) Close() {
	close(l.stop)
	<-l.done
	l.Miniredis.Close()
}
