package testkit

import (
	"errors"
	"fmt"
	"net"
	"testing"
)

// FindFreePort returns a port of 127.0.0.1 that was free a moment ago for TCP
// and for UDP alike (SRT and WebRTC listen on UDP), so one number serves
// either kind of listener.
func FindFreePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = u.Close()
		return port, nil
	}
	return 0, errors.New("no port of 127.0.0.1 free for both TCP and UDP after 50 tries")
}

// FreePort is FindFreePort for a test: it fails the test when none is found.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := FindFreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreeAddr is "127.0.0.1:<FreePort>".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}
