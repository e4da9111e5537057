package access

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadEvery is how often, at most, a TokenFile looks at its file.
const DefaultReloadEvery = 2 * time.Second

// TokenFile is a tokens file that follows changes to its content. A
// Kubernetes Secret mount is updated in place by swapping a symlink, so the
// file is read again (at most every reloadEvery, by the request that finds
// the last look too old) and compared by content hash, not by inotify or
// mtime. A file that cannot be read or parsed keeps the last good policy and
// logs why, once per bad content.
type TokenFile struct {
	path        string
	reloadEvery time.Duration
	log         *slog.Logger
	now         func() time.Time

	policy    atomic.Pointer[Policy]
	nextCheck atomic.Int64 // unix nanoseconds
	checking  sync.Mutex   // one reader at a time; the others use policy as it is
	sum       [sha256.Size]byte
	badSum    [sha256.Size]byte
}

// LoadTokenFile reads and parses path. A file that cannot be used at start
// is an error: the service should not start with rights nobody meant.
func LoadTokenFile(path string, reloadEvery time.Duration, log *slog.Logger) (*TokenFile, error) {
	if reloadEvery <= 0 {
		reloadEvery = DefaultReloadEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &TokenFile{path: path, reloadEvery: reloadEvery, log: log, now: time.Now}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the tokens file: %w", err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.sum = sha256.Sum256(data)
	f.policy.Store(p)
	f.nextCheck.Store(f.now().Add(reloadEvery).UnixNano())
	return f, nil
}

// Policy is the file's current policy, read again first if the last look
// is older than the reload interval.
func (f *TokenFile) Policy() *Policy {
	if f.now().UnixNano() >= f.nextCheck.Load() && f.checking.TryLock() {
		f.reload()
		f.checking.Unlock()
	}
	return f.policy.Load()
}

// reload looks at the file once; f.checking is held.
func (f *TokenFile) reload() {
	defer f.nextCheck.Store(f.now().Add(f.reloadEvery).UnixNano())
	data, err := os.ReadFile(f.path)
	if err != nil {
		// A missing file is how a Secret mount looks for an instant; it is
		// logged each time, since it should not last.
		f.log.Warn("tokens file not re-read; keeping the last good one", "path", f.path, "err", err)
		return
	}
	sum := sha256.Sum256(data)
	if sum == f.sum || sum == f.badSum {
		return
	}
	p, err := ParsePolicy(data)
	if err != nil {
		f.badSum = sum
		f.log.Error("tokens file changed but is not valid; keeping the last good one", "path", f.path, "err", err)
		return
	}
	f.sum = sum
	f.policy.Store(p)
	f.log.Info("tokens file reloaded", "path", f.path, "tokens", len(p.tokens), "subjects", len(p.subjects))
}
