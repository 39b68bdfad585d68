package main

import "syscall"

// childAttr keeps the emulator in our process group (so a signal to the
// group reaches it) and has the kernel end it if we die without stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
