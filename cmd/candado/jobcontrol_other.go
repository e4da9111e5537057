//go:build !linux

package main

import (
	"os"
	"syscall"
)

// terminal is Linux-only: elsewhere the command stays in candado's process
// group, and a terminal's Ctrl-C reaches it directly as well as forwarded.
type terminal struct{}

func foregroundTerminal() *terminal                { return nil }
func (t *terminal) procAttr() *syscall.SysProcAttr { return nil }
func (t *terminal) started(int) <-chan os.Signal   { return nil }
func (t *terminal) stopped()                       {}
func (t *terminal) restore()                       {}
