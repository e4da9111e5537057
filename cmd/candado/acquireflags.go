package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/candado-dev/candado/client"
)

// acquireFlags are the parameters of an acquire beyond TTL and wait, shared
// by "candado acquire" and "candado lock".
type acquireFlags struct {
	holder    string
	holderSet bool // --holder was given, possibly empty
	limit     int
	shared    bool
	lockDelay time.Duration
}

// addAcquireFlags defines them on fs; holderDefault is how --help describes
// the label used without --holder.
func addAcquireFlags(fs *flag.FlagSet, holderDefault string) *acquireFlags {
	var a acquireFlags
	fs.Func("holder", "public `label` of the lease that \"candado status\" shows to anyone: never a secret; up to 256 printable ASCII bytes (default "+holderDefault+")",
		func(v string) error { a.holder, a.holderSet = v, true; return nil })
	fs.IntVar(&a.limit, "limit", 0, "semaphore: up to `N` holders at once (1-1000; default 1, a mutex); every holder must give the same N")
	fs.BoolVar(&a.shared, "shared", false, "take a shared lease: many shared holders at once, never beside an exclusive one (readers and writers)")
	fs.DurationVar(&a.lockDelay, "lock-delay", 0, "if this lease expires instead of being released, nobody gets the lock for this long (default none)")
	return &a
}

// check reports a usage error of the flags, or nil.
func (a *acquireFlags) check() error {
	switch {
	case a.limit < 0 || a.limit > client.MaxLimit:
		return fmt.Errorf("--limit must be 1-%d", client.MaxLimit)
	case a.shared && a.limit > 1:
		return fmt.Errorf("--shared takes no --limit: shared holders are many by nature")
	case a.lockDelay < 0:
		return fmt.Errorf("--lock-delay must not be negative")
	}
	return nil
}

// options fills o's holder, limit, mode and lock-delay; without --holder the
// label is fallback ("" for none).
func (a *acquireFlags) options(o *client.AcquireOptions, fallback string) {
	o.Holder = a.holder
	if !a.holderSet {
		o.Holder = fallback
	}
	o.Limit, o.Shared, o.LockDelay = a.limit, a.shared, a.lockDelay
}

// processHolder is the label "candado lock" uses without --holder:
// "HOSTNAME pid PID" of this process, made to fit the contract (printable
// ASCII, at most 256 bytes) whatever the host is called.
func processHolder(hostname func() (string, error), pid int) string {
	suffix := " pid " + strconv.Itoa(pid)
	host, err := hostname()
	if err != nil || host == "" {
		return suffix[1:]
	}
	b := []byte(host)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if room := client.MaxHolderLen - len(suffix); len(b) > room {
		b = b[:room]
	}
	return string(b) + suffix
}

// defaultHolder is processHolder of this process.
func defaultHolder() string { return processHolder(os.Hostname, os.Getpid()) }
