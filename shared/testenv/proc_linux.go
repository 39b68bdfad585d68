package testenv

import "syscall"

// sysProcAttr puts moto_server in its own process group, so that Stop can
// signal it and anything it spawned through one id, and asks the kernel to
// kill it if the test binary dies without calling Stop, so that an aborted
// test run leaves no emulator behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
