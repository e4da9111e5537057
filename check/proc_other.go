//go:build !linux

package check

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
