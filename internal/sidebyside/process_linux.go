package sidebyside

import "syscall"

// childAttr makes the kernel kill a child when the harness exits, even by
// SIGKILL, so an interrupted benchmark leaves no server running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
