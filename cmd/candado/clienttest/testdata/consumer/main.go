// Command consumer is a program outside the Candado repository that uses the
// Go client as a user would: it imports the client module by its published
// path, takes a lock on the server named by its first argument, prints the
// lease's fence, checks that a second owner is refused, and releases.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/candado-dev/candado/client"
)

func main() {
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run(server, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(server, nil)
	if err != nil {
		return err
	}
	lease, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	if _, err := c.Acquire(ctx, id, nil); !errors.Is(err, client.ErrHeld) {
		return fmt.Errorf("second owner: got %v, want ErrHeld", err)
	}
	fmt.Printf("fence %d\n", lease.Fence())
	if err := lease.Release(ctx); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	fmt.Println("released")
	return nil
}
