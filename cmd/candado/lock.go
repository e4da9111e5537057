package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/candado-dev/candado/client"
)

const lockUsage = `usage: candado lock [flags] NAME [flags] -- COMMAND [ARGS...]

Takes lock NAME (waiting up to --wait, however short the server's own
CANDADO_MAX_WAIT: a cut wait is asked for again), runs COMMAND while holding
it, keeps the lease alive with heartbeats every TTL/3, and releases it when
COMMAND ends. The lease counts from its grant, so a long wait does not eat
into the TTL. COMMAND's exit code is passed through (128+N if signal N
killed it). Waiters are served in the order they began to wait.

Beyond a mutex: --limit N lets up to N commands hold NAME at once (a
semaphore; every one must give the same N), --shared runs COMMAND beside
other --shared holders but never beside an exclusive one (readers and a
writer; a waiting writer holds back new readers). Each holder has its own
fence. --holder labels the lease for "candado status NAME" (who leads?);
the default is "HOSTNAME pid PID" of this candado process, left out for a
server too old to take labels. --lock-delay D:
if the lease expires rather than being released (this host died, say),
nobody gets NAME for D, for resources that cannot check fences.

COMMAND's environment gets:
  CANDADO_LOCK    the lock NAME
  CANDADO_FENCE   the lease's fence; hand it to the resources you write, so
                  they can reject a writer that lost the lock (a smaller fence)
  CANDADO_OWNER   the lease's owner token (secret: it can release the lease)
  CANDADO_SERVER  the server URL

SIGINT, SIGTERM and SIGHUP sent to candado are forwarded to COMMAND. When
candado runs in the foreground of a terminal, COMMAND runs in a process group
of its own that gets the terminal's foreground: a Ctrl-C reaches COMMAND once,
from the terminal, and not candado; Ctrl-Z stops both, and fg resumes both.
Otherwise COMMAND stays in candado's process group. If the lease is lost while COMMAND runs (a heartbeat is refused, or
the server cannot confirm the lease within its TTL), COMMAND gets SIGTERM,
then SIGKILL after --grace, candado tries once more to release the lock (so
the next owner need not wait out the TTL) and exits 75.

Exit codes of its own: 64 usage (or a parameter the server's backend cannot
honour), 65 NAME held with another --limit or in the other mode, 69 server
unavailable until --wait plus --timeout ran out, 73 still held by others
after --wait, 75 lease lost while COMMAND ran, 77 unauthorized, 78 forbidden
(the token's scope does not cover NAME), 126 COMMAND not executable, 127
COMMAND not found.

Flags:
`

// lostLeaseRelease bounds the release after a lost lease, so a server that
// cannot answer does not hold up the exit.
const lostLeaseRelease = time.Second

// forwarded are the signals lock passes on to its command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// lock runs "candado lock".
func (c *cli) lock(args []string) int {
	fs := c.newFlagSet("lock")
	o := c.commonFlags(fs)
	ttl := fs.Duration("ttl", 0, "lease length (default: the server's, 30s unless configured); heartbeats renew it every TTL/3")
	wait := fs.Duration("wait", 0, "how long to wait for a held lock (default: try once)")
	grace := fs.Duration("grace", 5*time.Second, "after a lost lease, how long COMMAND has between SIGTERM and SIGKILL")
	extra := addAcquireFlags(fs, `"HOSTNAME pid PID" of this candado process; --holder= for none`)
	name, command, _, code, done := c.parseArgs(fs, lockUsage, args)
	if done {
		return code
	}
	if len(command) == 0 {
		fmt.Fprintf(c.stderr, "candado lock: missing COMMAND\nRun \"candado lock --help\" for usage.\n")
		return exitUsage
	}
	if *ttl < 0 || *wait < 0 || *grace < 0 {
		fmt.Fprintf(c.stderr, "candado lock: --ttl, --wait and --grace must not be negative\n")
		return exitUsage
	}
	if err := extra.check(); err != nil {
		fmt.Fprintf(c.stderr, "candado lock: %v\n", err)
		return exitUsage
	}
	opts := &client.AcquireOptions{TTL: *ttl, Wait: *wait, AutoHeartbeat: true}
	extra.options(opts, defaultHolder())
	ownLabel := !extra.holderSet // the label is candado's choice, not the user's
	cl, err := o.client(c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "candado lock: %v\n", err)
		return exitUsage
	}

	// From here on the forwarded signals are ours to handle, also while we
	// wait for the lock.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	lease, code := c.acquireForLock(cl, name, opts, ownLabel, o.timeout, sigs)
	if lease == nil {
		return code
	}

	cmd := lockedCommand(command, name, lease, o.server)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.stdout, c.stderr
	term := foregroundTerminal()
	if term != nil {
		cmd.SysProcAttr = term.procAttr()
		defer term.restore()
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.stderr, "candado lock: %v\n", err)
		c.releaseLock(lease, o.timeout)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotExec
	}
	waitErr, leaseErr := c.supervise(cmd, term, lease, name, *grace, sigs)
	return c.finishLock(lease, name, o.timeout, commandExitCode(waitErr), leaseErr)
}

// lockedCommand is COMMAND with the lease in its environment.
func lockedCommand(command []string, name string, lease *client.Lease, server string) *exec.Cmd {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(),
		"CANDADO_LOCK="+name,
		"CANDADO_FENCE="+strconv.FormatInt(lease.Fence(), 10),
		"CANDADO_OWNER="+lease.Owner(),
		"CANDADO_SERVER="+server,
	)
	return cmd
}

// supervise runs the started cmd to its end: it forwards the signals sigs
// brings, hands the terminal back and forth as the command stops, and when
// the lease is lost stops the command (SIGTERM, SIGKILL after grace). It
// returns cmd's Wait error and, if the lease was lost, the lease's error.
func (c *cli) supervise(cmd *exec.Cmd, term *terminal, lease *client.Lease, name string, grace time.Duration,
	sigs <-chan os.Signal) (waitErr, leaseErr error) {
	var children <-chan os.Signal // SIGCHLD, when the command owns the terminal
	if term != nil {
		children = term.started(cmd.Process.Pid)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	lost := lease.Done()
	var kill <-chan time.Time
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case <-children:
			term.stopped()
		case <-lost:
			lost = nil
			leaseErr = lease.Err()
			fmt.Fprintf(c.stderr, "candado lock %s: lease lost (%v); stopping the command (SIGTERM, SIGKILL after %v)\n", name, leaseErr, grace)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(grace)
			defer t.Stop()
			kill = t.C
		case <-kill:
			kill = nil
			_ = cmd.Process.Kill()
		case waitErr = <-exited:
			return waitErr, leaseErr
		}
	}
}

// finishLock releases the lease after the command ended with exit code
// code, and returns candado lock's exit code: the command's, or
// exitLeaseLost when the lease was lost (leaseErr) or found lost on release.
func (c *cli) finishLock(lease *client.Lease, name string, timeout time.Duration, code int, leaseErr error) int {
	if leaseErr != nil {
		// Best effort, briefly: if the lease lapsed only on this side (the
		// server could not confirm it), the next owner need not wait its TTL.
		c.releaseLock(lease, min(timeout, lostLeaseRelease))
		return exitLeaseLost
	}
	if err := c.releaseLock(lease, timeout); errors.Is(err, client.ErrNotHeld) {
		// The lease ended before the command did: it may have run without it.
		fmt.Fprintf(c.stderr, "candado lock %s: the lease was lost before the command ended (command exit code %d)\n", name, code)
		return exitLeaseLost
	}
	return code
}

// acquireForLock takes the lease as opts say (with automatic heartbeats).
// On failure, or a forwarded signal while waiting, it returns a nil lease
// and the exit code. If ownLabel, opts.Holder is the label candado chose
// itself, and a server that refuses the acquire as bad is asked once more
// without it: a server from before holder labels refuses the parameter,
// and a default label is not worth failing the command for.
func (c *cli) acquireForLock(cl *client.Client, name string, opts *client.AcquireOptions, ownLabel bool, timeout time.Duration,
	sigs <-chan os.Signal) (*client.Lease, int) {
	ctx, cancel := context.WithTimeout(context.Background(), opts.Wait+timeout)
	defer cancel()
	type result struct {
		lease *client.Lease
		err   error
	}
	res := make(chan result, 1)
	go func() {
		l, err := cl.Acquire(ctx, name, opts)
		if err != nil && ownLabel && opts.Holder != "" && errors.Is(err, client.ErrBadRequest) && !errors.Is(err, client.ErrUnsupported) {
			// The refused try did nothing; another bad request is reported as such.
			unlabelled := *opts
			unlabelled.Holder = ""
			l, err = cl.Acquire(ctx, name, &unlabelled)
		}
		res <- result{l, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			fmt.Fprintf(c.stderr, "candado lock %s: %v\n", name, r.err)
			return nil, exitCode(r.err)
		}
		return r.lease, exitOK
	case sig := <-sigs:
		cancel()
		if r := <-res; r.err == nil {
			c.releaseLock(r.lease, timeout)
		}
		fmt.Fprintf(c.stderr, "candado lock %s: interrupted by %v while acquiring\n", name, sig)
		return nil, 128 + int(sig.(syscall.Signal))
	}
}

// releaseLock gives the lease back, reporting failures other than not_held
// (which the caller interprets) on stderr.
func (c *cli) releaseLock(l *client.Lease, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := l.Release(ctx)
	if err != nil && !errors.Is(err, client.ErrNotHeld) && !errors.Is(err, client.ErrReleased) {
		fmt.Fprintf(c.stderr, "candado lock %s: release: %v (the lease expires at its TTL)\n", l.ID(), err)
	}
	return err
}

// commandExitCode turns the result of cmd.Wait into a shell-style exit code.
func commandExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return exitFailure
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}
