//go:build linux

package redistest

import "syscall"

// sysProcAttr makes the kernel kill redis-server when the test process dies,
// even if it dies before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
