//go:build !linux

package mediamtx

import "syscall"

// sysProcAttr has no portable equivalent of Linux's Pdeathsig: the edge is
// meant to run on Linux.
func sysProcAttr() *syscall.SysProcAttr { return nil }
