//go:build !linux

package main

import "syscall"

// childAttr keeps the emulator in our process group, so a signal to the
// group reaches it. Only Linux can also tie its life to ours.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
