package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/candado-dev/candado/client"
)

// Take a lock, keep it alive while working, and give it back.
func Example() {
	srv := startFake() // a stand-in for e.g. "http://candado.default.svc"
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL, &client.Options{AuthToken: os.Getenv("CANDADO_AUTH_TOKEN")})
	if err != nil {
		panic(err)
	}
	lease, err := c.Acquire(ctx, "orders/42", &client.AcquireOptions{
		TTL:           30 * time.Second,
		Wait:          5 * time.Second,
		AutoHeartbeat: true,
	})
	if err != nil {
		panic(err)
	}
	defer lease.Release(ctx)

	// Hand the fence to the protected resource, which rejects smaller ones.
	fmt.Println("holding", lease.ID(), "with fence", lease.Fence())
	select {
	case <-lease.Done():
		fmt.Println("lost:", lease.Err())
	default:
		fmt.Println("still held")
	}
	// Output:
	// holding orders/42 with fence 1
	// still held
}

// A second owner is refused with ErrHeld; the *APIError tells the current fence.
func ExampleClient_Acquire_held() {
	srv := startFake()
	defer srv.Close()
	ctx := context.Background()
	c, _ := client.New(srv.URL, nil)

	first, _ := c.Acquire(ctx, "report", &client.AcquireOptions{TTL: time.Minute})
	_, err := c.Acquire(ctx, "report", &client.AcquireOptions{TTL: time.Minute})

	var apiErr *client.APIError
	if errors.Is(err, client.ErrHeld) && errors.As(err, &apiErr) {
		fmt.Println("held, status", apiErr.Status, "fence", apiErr.Lock.Fence)
	}
	_ = first.Release(ctx)
	// Output: held, status 409 fence 1
}

// Watch a lease and stop work when it is lost.
func ExampleLease_Done() {
	srv := startFake()
	defer srv.Close()
	c, _ := client.New(srv.URL, nil)

	lease, err := c.Acquire(context.Background(), "leader", &client.AcquireOptions{TTL: 50 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	// No heartbeats: the lease runs out after its TTL.
	<-lease.Done()
	fmt.Println(errors.Is(lease.Err(), client.ErrLeaseExpired))
	// Output: true
}

// A command-line tool that only has the owner token can extend and release.
func ExampleClient_Release() {
	srv := startFake()
	defer srv.Close()
	ctx := context.Background()
	c, _ := client.New(srv.URL, nil)

	lease, _ := c.Acquire(ctx, "deploy/prod", &client.AcquireOptions{TTL: time.Minute})
	owner := lease.Owner() // e.g. printed by "candado acquire", passed to the next command

	st, err := c.Heartbeat(ctx, "deploy/prod", owner, 2*time.Minute)
	fmt.Println(st.Held, st.TTL, err)
	_, err = c.Release(ctx, "deploy/prod", owner)
	fmt.Println(err)
	st, _ = c.Inspect(ctx, "deploy/prod")
	fmt.Println(st.Held, st.Fence)
	// Output:
	// true 2m0s <nil>
	// <nil>
	// false 1
}
