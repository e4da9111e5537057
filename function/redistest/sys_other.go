//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: the test's cleanup
// is what stops redis-server there.
func sysProcAttr() *syscall.SysProcAttr { return nil }
