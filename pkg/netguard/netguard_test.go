package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/netguard"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string
	}{
		{"127.0.0.1", "loopback"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "cloud metadata (link-local)"},
		{"::ffff:169.254.169.254", "cloud metadata (link-local)"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"100.64.0.1", "carrier-grade NAT (shared)"},
		{"100.127.255.254", "carrier-grade NAT (shared)"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "link-local"},
		{"239.1.2.3", "multicast"},
		{"ff02::1", "link-local"},
		{"ff0e::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"64:ff9b::7f00:1", "loopback"},
		{"8.8.8.8", ""},
		{"100.128.0.1", ""},
		{"172.32.0.1", ""},
		{"2001:4860:4860::8888", ""},
		{"::ffff:8.8.8.8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, netguard.Classify(netip.MustParseAddr(tt.addr)))
		})
	}
}

// resolver answers from a table, like a DNS server the test controls.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	res := resolver{
		"hooks.example.com":   {netip.MustParseAddr("93.184.216.34")},
		"rebind.example.com":  {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")},
		"metadata.example":    {netip.MustParseAddr("169.254.169.254")},
		"internal.example":    {netip.MustParseAddr("10.1.2.3")},
		"v6private.example":   {netip.MustParseAddr("fd00::5")},
		"mapped-loop.example": {netip.MustParseAddr("::ffff:127.0.0.1")},
	}
	tests := []struct {
		name    string
		url     string
		allow   bool
		schemes []string
		want    error
	}{
		{"public host", "https://hooks.example.com/in", false, nil, nil},
		{"public literal", "http://93.184.216.34:8080/x", false, nil, nil},
		{"loopback literal", "http://127.0.0.1:9000/", false, nil, netguard.ErrForbiddenAddress},
		{"loopback v6 literal", "http://[::1]:9000/", false, nil, netguard.ErrForbiddenAddress},
		{"a name resolving to loopback among others", "https://rebind.example.com/", false, nil, netguard.ErrForbiddenAddress},
		{"metadata", "http://metadata.example/latest/meta-data", false, nil, netguard.ErrForbiddenAddress},
		{"metadata literal", "http://169.254.169.254/", false, nil, netguard.ErrForbiddenAddress},
		{"private", "http://internal.example/", false, nil, netguard.ErrForbiddenAddress},
		{"private v6", "http://v6private.example/", false, nil, netguard.ErrForbiddenAddress},
		{"mapped loopback", "http://mapped-loop.example/", false, nil, netguard.ErrForbiddenAddress},
		{"cgnat literal", "http://100.64.1.1/", false, nil, netguard.ErrForbiddenAddress},
		{"private allowed", "http://127.0.0.1:9000/", true, nil, nil},
		{"unknown host", "https://nowhere.example/", false, nil, netguard.ErrResolve},
		{"ftp", "ftp://hooks.example.com/", false, nil, netguard.ErrScheme},
		{"ftp even when private is allowed", "ftp://127.0.0.1/", true, nil, netguard.ErrScheme},
		{"rtmp allowed by the caller", "rtmp://hooks.example.com/live", false, []string{"rtmp", "rtmps"}, nil},
		{"no host", "http:///path", false, nil, netguard.ErrURL},
		{"credentials", "https://u:p@hooks.example.com/", false, nil, netguard.ErrURL},
		{"unparsable", "http://[::1", false, nil, netguard.ErrURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := netguard.Guard{AllowPrivate: tt.allow, Schemes: tt.schemes, Resolver: res}
			_, err := g.CheckURL(t.Context(), tt.url)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestCheckURLNamesTheAddress(t *testing.T) {
	t.Parallel()
	// localhost resolves to 127.0.0.1 (and ::1) through the system resolver.
	_, err := netguard.Guard{}.CheckURL(t.Context(), "http://localhost:8080/hook")
	var ae *netguard.AddressError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "loopback", ae.Reason)
	require.Contains(t, err.Error(), "localhost resolves to")
}

// The dialer's check is what stops DNS rebinding: it sees the address
// actually connected to.
func TestControlRefusesTheConnection(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)

	dial := func(g netguard.Guard) error {
		tr := &http.Transport{DialContext: g.Dialer(net.Dialer{Timeout: 5 * time.Second}).DialContext}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		// A name (localhost) rather than the literal: the check happens after
		// resolution, whatever the name.
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		resp, err := c.Get("http://localhost:" + port + "/")
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	err := dial(netguard.Guard{})
	require.Error(t, err)
	require.True(t, errors.Is(err, netguard.ErrForbiddenAddress), "got %v", err)
	require.NoError(t, dial(netguard.Guard{AllowPrivate: true}))
}
