package conf

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The checks below return nil for a good value and otherwise an error naming
// the setting and the value (Var.Invalid), for Validate methods to join.

// HostPort checks a listen address, host:port (an empty host means every
// interface; port 0 picks a free port).
func HostPort(v Var, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return v.Invalid(addr, "must be host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return v.Invalid(addr, "port must be 0-65535")
	}
	if strings.ContainsAny(host, "/ ") {
		return v.Invalid(addr, "must be host:port")
	}
	return nil
}

// Loopback checks a listen address that must stay on this machine: host:port
// with a loopback IP.
func Loopback(v Var, addr string) error {
	if err := HostPort(v, addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return v.Invalid(addr, "must be a loopback address such as 127.0.0.1:PORT")
	}
	return nil
}

// HTTPURL checks an absolute http:// or https:// URL.
func HTTPURL(v Var, s string) error {
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return v.Invalid(s, "must be an absolute http(s) URL")
	}
	return nil
}

// Host checks a host name or an IP address (no scheme, port or path).
func Host(v Var, s string) error {
	if s == "" || (strings.ContainsAny(s, "/:?#@ ") && net.ParseIP(s) == nil) {
		return v.Invalid(s, "must be a host name or an IP address")
	}
	return nil
}

// Port checks a port number, 1-65535.
func Port(v Var, p int) error {
	if p < 1 || p > 65535 {
		return v.Invalid(p, "must be a port number (1-65535)")
	}
	return nil
}

// Range checks lo <= x <= hi.
func Range[T cmp.Ordered](v Var, x, lo, hi T) error {
	if x < lo || x > hi {
		return v.Invalid(x, "must be between %v and %v", lo, hi)
	}
	return nil
}

// Positive checks x > 0.
func Positive[T cmp.Ordered](v Var, x T) error {
	var zero T
	if x <= zero {
		return v.Invalid(x, "must be positive")
	}
	return nil
}

// OneOf checks that s is one of the allowed values.
func OneOf(v Var, s string, allowed ...string) error {
	if !slices.Contains(allowed, s) {
		return v.Invalid(s, "must be %s", orList(allowed))
	}
	return nil
}

// Required checks that a setting is set.
func Required(v Var, s string) error {
	if s == "" {
		return fmt.Errorf("%s is required", v)
	}
	return nil
}

func orList(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
