package main

import "syscall"

// childAttr has the kernel stop the local stack if this tool dies without
// stopping it, so an aborted run leaves nothing behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
