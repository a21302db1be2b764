package mediamtx

import "syscall"

// sysProcAttr puts the child in its own process group (a terminal's Ctrl-C
// reaches only the edge, which stops the child in order) and has the kernel
// SIGKILL it if the edge dies without stopping it, so no orphan keeps the
// ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
