package main

import (
	"bytes"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"unsafe"
)

// terminal is the controlling terminal whose foreground process group
// candado was in when "candado lock" started its command. The command then
// runs in a process group of its own, made the terminal's foreground group,
// so that a Ctrl-C (or Ctrl-\) from the terminal reaches the command once,
// from the terminal, and never reaches candado: every signal candado gets is
// one sent to it alone, and it forwards those. A stopped command (Ctrl-Z)
// stops candado too, so the shell's job control keeps working.
type terminal struct {
	tty   *os.File
	pgrp  int // candado's process group
	child int // the command's process group, once started
}

// foregroundTerminal returns the controlling terminal if candado's process
// group is its foreground group, else nil (no terminal, or run in the
// background): then the command stays in candado's process group.
func foregroundTerminal() *terminal {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	pg, err := tcgetpgrp(tty)
	if err != nil || pg != syscall.Getpgrp() {
		tty.Close()
		return nil
	}
	return &terminal{tty: tty, pgrp: pg}
}

// procAttr puts the command in a process group of its own, in the
// terminal's foreground (set in the child before it runs the command).
func (t *terminal) procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Foreground: true, Ctty: int(t.tty.Fd())}
}

// started records the command's process group (its pid) and returns a
// channel that receives on every SIGCHLD, to be handed to stopped.
func (t *terminal) started(pid int) <-chan os.Signal {
	t.child = pid
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	return ch
}

// stopped handles a SIGCHLD: if the command was stopped (Ctrl-Z), candado
// takes the terminal back and stops itself, so the shell sees the job stop;
// once continued, it gives the terminal back to the command if it is in the
// foreground again, and continues the command.
func (t *terminal) stopped() {
	if procState(t.child) != 'T' {
		return
	}
	t.take(t.child, t.pgrp)
	// The stop takes effect asynchronously, on every thread: wait for the
	// SIGCONT that ends it before going on.
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	_ = syscall.Kill(syscall.Getpid(), syscall.SIGSTOP)
	<-cont
	// Continued (fg, or bg: then the terminal stays with the shell).
	t.take(t.pgrp, t.child)
	_ = syscall.Kill(-t.child, syscall.SIGCONT)
}

// restore gives the terminal back to candado's process group, if the
// command's group still has it, and closes it.
func (t *terminal) restore() {
	signal.Reset(syscall.SIGCHLD)
	if t.child != 0 {
		t.take(t.child, t.pgrp)
	}
	t.tty.Close()
}

// take makes pgrp the terminal's foreground group if from is. candado may
// be in the background meanwhile, so SIGTTOU is ignored for the change.
func (t *terminal) take(from, pgrp int) {
	if pg, err := tcgetpgrp(t.tty); err != nil || pg != from {
		return
	}
	signal.Ignore(syscall.SIGTTOU)
	_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, t.tty.Fd(), syscall.TIOCSPGRP, uintptr(unsafe.Pointer(&pgrp)))
}

func tcgetpgrp(f *os.File) (int, error) {
	var pg int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pg))); errno != 0 {
		return 0, errno
	}
	return int(pg), nil
}

// procState is the state letter of process pid in /proc (T: stopped), or 0.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2]
	}
	return 0
}
