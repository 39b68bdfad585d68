//go:build !linux

package main

import "syscall"

// childAttr asks for nothing special: only Linux can tie a child's life to
// its parent's.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
