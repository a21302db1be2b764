// Package netguard keeps the platform's outbound requests (webhooks, and
// later pull sources and restream targets) away from addresses an operator's
// users must not reach through it: loopback, link-local (including the cloud
// metadata address 169.254.169.254), private networks (RFC 1918, fc00::/7),
// carrier-grade NAT (100.64.0.0/10), unspecified, multicast and broadcast
// addresses, and the IPv4-mapped IPv6 forms of all of them (server-side
// request forgery).
//
// A Guard checks twice: CheckURL when the target is configured (the API
// answers 422 at once), and Control on the dialer when the connection is
// made, so that a host name that resolves to a public address at creation and
// to 127.0.0.1 later (DNS rebinding) is still refused: the address checked is
// the one actually connected to.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
)

// Sentinel errors. Each error of CheckURL and Control matches one with
// errors.Is.
var (
	// ErrScheme: the URL's scheme is not one of the allowed ones.
	ErrScheme = errors.New("scheme not allowed")
	// ErrURL: the URL cannot be parsed or has no host.
	ErrURL = errors.New("invalid URL")
	// ErrForbiddenAddress: the target is (or resolves to) a refused address.
	ErrForbiddenAddress = errors.New("address not allowed")
	// ErrResolve: the host name does not resolve.
	ErrResolve = errors.New("host does not resolve")
)

// AddressError says which address was refused and why. It matches
// ErrForbiddenAddress.
type AddressError struct {
	Host   string     // the host name or literal address, as written
	Addr   netip.Addr // the refused address
	Reason string     // e.g. "loopback"
}

func (e *AddressError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, a %s address", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("%s is a %s address", e.Addr, e.Reason)
}

// Unwrap returns ErrForbiddenAddress.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard validates outbound targets. The zero value refuses every address
// class above, allows http and https and uses net.DefaultResolver.
type Guard struct {
	// AllowPrivate lets every address through (on-prem receivers, tests,
	// `just dev`): the DIONYSIA_ALLOW_PRIVATE_TARGETS switch. Schemes are
	// still checked.
	AllowPrivate bool
	// Schemes are the allowed URL schemes; nil means http and https.
	Schemes []string
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	broadcast = netip.MustParseAddr("255.255.255.255")
	reserved  = netip.MustParsePrefix("240.0.0.0/4")  // "future use", never a legitimate target
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")    // "this network"
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // NAT64 embeds an IPv4 address
)

// Classify returns why addr is refused ("loopback", "private", ...), or ""
// when it is a public unicast address.
func Classify(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified(), thisNet.Contains(addr):
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr == netip.MustParseAddr("169.254.169.254"):
		return "cloud metadata (link-local)"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local"
	case addr.IsPrivate():
		return "private"
	case cgnat.Contains(addr):
		return "carrier-grade NAT (shared)"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	case addr == broadcast:
		return "broadcast"
	case reserved.Contains(addr):
		return "reserved"
	}
	return ""
}

// CheckAddr returns an *AddressError when addr is refused (and private
// targets are not allowed). host is only for the message.
func (g Guard) CheckAddr(host string, addr netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	if reason := Classify(addr); reason != "" {
		return &AddressError{Host: host, Addr: addr.Unmap(), Reason: reason}
	}
	return nil
}

func (g Guard) schemes() []string {
	if g.Schemes == nil {
		return []string{"http", "https"}
	}
	return g.Schemes
}

// CheckURL parses raw, checks its scheme, resolves its host and checks every
// address it resolves to. It returns the parsed URL.
func (g Guard) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	if !slices.Contains(g.schemes(), strings.ToLower(u.Scheme)) {
		return nil, fmt.Errorf("%w: %q, must be %s", ErrScheme, u.Scheme, strings.Join(g.schemes(), " or "))
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%w: no host", ErrURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: credentials in the URL are not allowed", ErrURL)
	}
	if g.AllowPrivate {
		return u, nil
	}
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if err := g.CheckAddr(host, a); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (g Guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s: %v", ErrResolve, host, err)
	}
	return addrs, nil
}

// Control is a net.Dialer.Control function: it refuses a connection to a
// refused address, whatever name led to it. Set it on every dialer that
// connects to a user-given target.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: dialing %s %q: %v", ErrForbiddenAddress, network, address, err)
	}
	if err := g.CheckAddr("", ap.Addr()); err != nil {
		return fmt.Errorf("refusing to connect to %s: %w", address, err)
	}
	return nil
}

// Dialer returns a dialer whose connections are checked by Control (unless
// private targets are allowed).
func (g Guard) Dialer(d net.Dialer) *net.Dialer {
	if !g.AllowPrivate {
		d.Control = g.Control
	}
	return &d
}
