package lock

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// changeStore is a store for parsing change messages only: it never
// reaches Redis.
func changeStore() *RedisStore { return &RedisStore{opts: RedisOptions{Prefix: "test:"}} }

// Messages of the new scripts and of the previous version's both parse,
// with the id from the channel; the holder is the rest of the message,
// spaces and all.
func TestParseChangeReadsBothFormats(t *testing.T) {
	s := changeStore()
	for _, tc := range []struct {
		msg  string
		want Change
	}{
		{"acquired 7 5000", Change{Kind: ChangeAcquired, Fence: 7, TTL: 5 * time.Second}},
		{"released 7 0", Change{Kind: ChangeReleased, Fence: 7}},
		{"acquired 8 250 x worker-3 pid 4242", Change{Kind: ChangeAcquired, Fence: 8, TTL: 250 * time.Millisecond, Mode: Exclusive, Holder: "worker-3 pid 4242"}},
		{"extended 9 1000 s reader", Change{Kind: ChangeExtended, Fence: 9, TTL: time.Second, Mode: Shared, Holder: "reader"}},
		{"revoked 9 0 s ", Change{Kind: ChangeRevoked, Fence: 9, Mode: Shared}},
		{"revoked 9 0 s", Change{Kind: ChangeRevoked, Fence: 9, Mode: Shared}},
		{"acquired 10 100 x  two  spaces ", Change{Kind: ChangeAcquired, Fence: 10, TTL: 100 * time.Millisecond, Mode: Exclusive, Holder: " two  spaces "}},
	} {
		got, err := s.parseChange("test:{jobs/1}:changes", tc.msg)
		tc.want.ID = "jobs/1"
		if err != nil || got != tc.want {
			t.Errorf("parseChange(%q) = %+v, %v; want %+v", tc.msg, got, err, tc.want)
		}
	}
}

// Anything else is refused, so that a foreign publisher on our channel
// pattern cannot make watchers see a change that did not happen.
func TestParseChangeRefusesBadMessages(t *testing.T) {
	s := changeStore()
	for _, msg := range []string{
		"", "acquired", "acquired 7", "acquired 7 5000 x\x00", "acquired 7 5000 q holder",
		"acquired 7 5000 ", "acquired  7 5000", "acquired x 5000", "acquired 7 soon",
		"acquired -1 5000", "acquired 7 -5", "acquired 7 99999999999999999999",
		"expired 7 0", "stolen 7 0 x h", "acquired 7 5000 x tab\there",
		"acquired 7 5000 x " + strings.Repeat("h", MaxHolderLen+1),
	} {
		if c, err := s.parseChange("test:{a}:changes", msg); err == nil {
			t.Errorf("parseChange(%q) = %+v, want an error", msg, c)
		}
	}
	for _, ch := range []string{"other:{a}:changes", "test:{a}:wake", "test:a:changes"} {
		if c, err := s.parseChange(ch, "acquired 7 5000"); err == nil {
			t.Errorf("parseChange on channel %q = %+v, want an error", ch, c)
		}
	}
	long := "acquired 7 5000 x " + strings.Repeat("h", MaxHolderLen)
	if c, err := s.parseChange("test:{a}:changes", long); err != nil || len(c.Holder) != MaxHolderLen {
		t.Errorf("a holder of %d bytes: %v", MaxHolderLen, err)
	}
}

// formatChange writes c as the scripts do.
func formatChange(c Change) string {
	head := c.Kind + " " + strconv.FormatInt(c.Fence, 10) + " " + strconv.FormatInt(c.TTL.Milliseconds(), 10)
	switch c.Mode {
	case Exclusive:
		return head + " x " + c.Holder
	case Shared:
		return head + " s " + c.Holder
	}
	return head
}

// Whatever a message holds, parseChange either refuses it or returns a
// change of a known kind, in range, with a usable holder, that the
// scripts' format writes back to the same change.
func FuzzParseChange(f *testing.F) {
	for _, seed := range []string{"acquired 7 5000", "extended 8 250 x worker-3 pid 4242", "revoked 9 0 s ", "released 1 0 s", "acquired 7 5000 q"} {
		f.Add(seed)
	}
	s := changeStore()
	f.Fuzz(func(t *testing.T, msg string) {
		c, err := s.parseChange("test:{f}:changes", msg)
		if err != nil {
			return
		}
		switch c.Kind {
		case ChangeAcquired, ChangeExtended, ChangeReleased, ChangeRevoked:
		default:
			t.Fatalf("%q: kind %q", msg, c.Kind)
		}
		if c.ID != "f" || c.Fence < 0 || c.TTL < 0 {
			t.Fatalf("%q: %+v", msg, c)
		}
		if err := ValidateAcquire(AcquireRequest{Holder: c.Holder}); err != nil {
			t.Fatalf("%q: holder %q: %v", msg, c.Holder, err)
		}
		again, err := s.parseChange("test:{f}:changes", formatChange(c))
		if err != nil || again != c {
			t.Fatalf("%q parsed to %+v, written back as %q, parsed to %+v, %v", msg, c, formatChange(c), again, err)
		}
	})
}
