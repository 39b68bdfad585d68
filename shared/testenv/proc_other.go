//go:build unix && !linux

package testenv

import "syscall"

// sysProcAttr puts moto_server in its own process group, so that Stop can
// signal it and anything it spawned through one id. Only Linux can also tie
// the child's life to the test binary's.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
