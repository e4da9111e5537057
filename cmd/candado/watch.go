package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/candado-dev/candado/client"
)

const watchUsage = `usage: candado watch [flags] NAME
       candado watch [flags] --prefix P

Prints one JSON object per line for each event of lock NAME, or of every
lock whose name starts with P, until interrupted:
  {"event":"state","id":"NAME","state":0|1,"fence":N,"ttl_ms":N}
The first line is the state now ("state"; for a prefix, "snapshot" with
"locks"), then one line per change: acquired, extended, released, revoked,
expired. Owners are never shown. The stream reconnects by itself and
misses nothing (changes missed are replayed, then a fresh state).

Flags:
`

const statusPrefixUsage = `usage: candado status [flags] --prefix P

Prints one JSON object per line for each lock held now whose name starts
with P (all pages of GET /locks), never its owner:
  {"id":"NAME","state":1,"fence":N,"ttl_ms":N,"holder":"...","limit":N,"holders":N}
holder is the label of a lease that holds it, limit 1 for a mutex or N for a
semaphore, holders how many leases hold it; fields that are empty or 0 are
left out ("candado status NAME" lists every lease).

Flags:
`

// hasPrefixFlag reports whether args hold --prefix (or -prefix).
func hasPrefixFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "prefix" {
			return true
		}
	}
	return false
}

// eventLine is one printed event: a snapshot's locks, or the lock of any
// other event.
type eventLine struct {
	Event     string      `json:"event"`
	ID        string      `json:"id,omitempty"`
	State     *int        `json:"state,omitempty"`
	Fence     int64       `json:"fence,omitempty"`
	TTLms     *int64      `json:"ttl_ms,omitempty"`
	Holder    string      `json:"holder,omitempty"`
	Mode      string      `json:"mode,omitempty"`
	Limit     int         `json:"limit,omitempty"`
	Holders   int         `json:"holders,omitempty"`
	Locks     []leaseLine `json:"locks,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
}

// toWire is st as printed, never with an owner.
func toWire(st client.Status) leaseLine {
	st.Owner = ""
	return toLine(st)
}

// watch runs "candado watch".
func (c *cli) watch(args []string) int {
	fs := c.newFlagSet("watch")
	o := c.commonFlags(fs)
	var prefix string
	fs.StringVar(&prefix, "prefix", "", "watch every lock whose name starts with `P`")
	prefixed := hasPrefixFlag(args)
	var name string
	if prefixed {
		if code, done := c.parseOnlyFlags(fs, watchUsage, args); done {
			return code
		}
	} else {
		n, rest, _, code, done := c.parseArgs(fs, watchUsage, args)
		if done {
			return code
		}
		if len(rest) > 0 {
			fmt.Fprintf(c.stderr, "%s: unexpected arguments %q\n", fs.Name(), rest)
			return exitUsage
		}
		name = n
	}
	cl, err := o.client(c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	open, cancelOpen := context.WithTimeout(ctx, o.timeout)
	var events <-chan client.Event
	// The first connection is bounded by --timeout; the stream itself is not.
	ready := make(chan error, 1)
	go func() {
		var err error
		if prefixed {
			events, err = cl.WatchPrefix(ctx, prefix)
		} else {
			events, err = cl.Watch(ctx, name)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-open.Done():
		err = fmt.Errorf("%w: no stream within --timeout", client.ErrUnavailable)
	}
	cancelOpen()
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
		return exitCode(err)
	}
	enc := json.NewEncoder(c.stdout)
	for ev := range events {
		line := eventLine{Event: ev.Kind, Truncated: ev.Truncated}
		if ev.Kind == "snapshot" {
			line.Locks = make([]leaseLine, 0, len(ev.Locks))
			for _, l := range ev.Locks {
				line.Locks = append(line.Locks, toWire(l))
			}
		} else {
			w := toWire(ev.Lock)
			line.ID, line.State, line.Fence, line.TTLms = w.ID, &w.State, w.Fence, &w.TTLms
			line.Holder, line.Mode, line.Limit, line.Holders = w.Holder, w.Mode, w.Limit, w.Holders
		}
		if err := enc.Encode(line); err != nil {
			return exitFailure
		}
	}
	return exitOK
}

// statusPrefix runs "candado status --prefix P".
func (c *cli) statusPrefix(args []string) int {
	fs := c.newFlagSet("status")
	o := c.commonFlags(fs)
	var prefix string
	fs.StringVar(&prefix, "prefix", "", "list every held lock whose name starts with `P`")
	if code, done := c.parseOnlyFlags(fs, statusPrefixUsage, args); done {
		return code
	}
	cl, err := o.client(c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	enc := json.NewEncoder(c.stdout)
	for cursor := ""; ; {
		page, err := cl.List(ctx, prefix, 0, cursor)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s --prefix %s: %v\n", fs.Name(), prefix, err)
			return exitCode(err)
		}
		for _, l := range page.Locks {
			_ = enc.Encode(toWire(l))
		}
		if cursor = page.Cursor; cursor == "" {
			return exitOK
		}
	}
}

// parseOnlyFlags parses args that hold flags only; done is set with the
// exit code on --help or a usage error.
func (c *cli) parseOnlyFlags(fs *flag.FlagSet, usage string, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usage)
			fs.SetOutput(c.stdout)
			fs.PrintDefaults()
			return exitOK, true
		}
		fmt.Fprintf(c.stderr, "Run \"%s --help\" for usage.\n", fs.Name())
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected arguments %q (with --prefix, no NAME)\n", fs.Name(), fs.Args())
		return exitUsage, true
	}
	return exitOK, false
}
