package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Test ports are drawn from [portLow, portHigh): below Linux's ephemeral
// range (32768–60999), which the kernel hands out as the local port of every
// outgoing connection. A port found free with ":0" comes from that range, and
// an outgoing connection to PostgreSQL or Redis could take it before the
// test's server binds it; here only another test could, and the draw is
// random over 12,000 ports, never the same twice in one process.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

// FindFreePort returns a port of 127.0.0.1 that was free a moment ago for TCP
// and for UDP alike (SRT and WebRTC listen on UDP), so one number serves
// either kind of listener.
func FindFreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		port := portLow + rand.IntN(portHigh-portLow)
		if portUsed[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		_ = u.Close()
		portUsed[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no port of 127.0.0.1 in [%d, %d) free for both TCP and UDP after 200 tries", portLow, portHigh)
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
