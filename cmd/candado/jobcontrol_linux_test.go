package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a new pseudo-terminal: its master, and its slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err) // the test needs one; say so loudly
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	go io.Copy(io.Discard, master) // the terminal's echo must not fill up
	return master, slave
}

// sigintCounter is the command of TestCLILockCtrlCReachesCommandOnce: it
// writes its process group and the terminal's foreground group to $2, then
// takes every SIGINT it gets in the 1.5s after the first (sigtimedwait, so no
// two are merged while one waits for a handler), one line each to $1, and
// exits 3.
const sigintCounter = `
import os, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
count, ready = sys.argv[1], sys.argv[2]
with open(ready + ".tmp", "w") as f:
    f.write("%d %d\n" % (os.getpgrp(), os.tcgetpgrp(0)))
os.rename(ready + ".tmp", ready)
end = None
while True:
    info = signal.sigtimedwait({signal.SIGINT}, 15 if end is None else max(0, end - time.time()))
    if info is None:
        break
    with open(count, "a") as f:
        f.write("INT code=%d pid=%d\n" % (info.si_code, info.si_pid))
    if end is None:
        end = time.time() + 1.5
sys.exit(3)
`

// TestCLILockCtrlCReachesCommandOnce: on a terminal, one Ctrl-C reaches the
// command once (issue 11 item 12: it got the terminal's SIGINT and candado's
// forwarded copy); a SIGINT sent to candado alone is still forwarded, once.
// The command runs as the terminal's foreground group, which candado is not
// in, so no terminal signal can reach candado to be forwarded.
func TestCLILockCtrlCReachesCommandOnce(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("this test runs its command with python3 (for sigtimedwait): %v", err)
	}
	s := startServer(t, candadoBin(t))
	for _, how := range []string{"ctrl-c", "kill -INT candado", "ctrl-z, continue, ctrl-c"} {
		t.Run(how, func(t *testing.T) {
			master, slave := openPTY(t)
			dir := t.TempDir()
			count, ready := filepath.Join(dir, "count"), filepath.Join(dir, "ready")
			cmd := exec.Command(candadoBin(t), "lock", "tty", "--", python, "-c", sigintCounter, count, ready)
			cmd.Env = cliEnv(s.base)
			cmd.Stdin, cmd.Stdout = slave, slave
			stderr, err := os.Create(filepath.Join(dir, "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = stderr
			// candado leads a session on the terminal, in its foreground, as
			// a shell's job would be.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			done := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					cmd.Process.Kill()
					<-done
				}
			})
			var pgrp, fg int
			if _, err := fmt.Sscan(waitFile(t, ready, 10*time.Second), &pgrp, &fg); err != nil {
				t.Fatal(err)
			}
			if pgrp != fg || pgrp == cmd.Process.Pid {
				t.Fatalf("command in process group %d, terminal's foreground %d, candado's group %d: want the command alone in the foreground",
					pgrp, fg, cmd.Process.Pid)
			}
			if strings.HasPrefix(how, "ctrl-z") {
				// The command stops; so does candado, with the terminal back
				// in its own group, as a shell's job control expects. Once
				// continued it hands the terminal and SIGCONT on.
				if _, err := master.Write([]byte{0x1a}); err != nil {
					t.Fatal(err)
				}
				waitState(t, cmd.Process.Pid, 'T')
				if pg, err := tcgetpgrp(master); err != nil || pg != cmd.Process.Pid {
					t.Fatalf("stopped: terminal's foreground %d (%v), want candado's group %d; stderr: %s", pg, err, cmd.Process.Pid, readFile(stderr.Name()))
				}
				if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				waitState(t, cmd.Process.Pid, 'S')
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if pg, err := tcgetpgrp(master); err == nil && pg == pgrp {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("continued: the command did not get the terminal back")
					}
				}
			}
			if how != "kill -INT candado" {
				if _, err := master.Write([]byte{0x03}); err != nil {
					t.Fatal(err)
				}
			} else if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("candado lock still running; stderr: %s", readFile(stderr.Name()))
			}
			var ee *exec.ExitError
			if !errors.As(waitErr, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("exit %v, want the command's 3; stderr: %s", waitErr, readFile(stderr.Name()))
			}
			if got := readFile(count); strings.Count(got, "INT") != 1 {
				t.Fatalf("the command got %d SIGINTs, want 1:\n%s", strings.Count(got, "INT"), got)
			}
			if st := runCLI(t, cliEnv(s.base), "status", "tty").json(t); st.State != 0 {
				t.Fatalf("lock not released: %+v", st)
			}
		})
	}
}

func readFile(name string) string {
	b, _ := os.ReadFile(name)
	return string(b)
}

// waitState waits up to 5s for process pid to be in state (T stopped, S sleeping).
func waitState(t *testing.T, pid int, state byte) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if procState(pid) == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d in state %q, want %q", pid, procState(pid), state)
		}
	}
}
