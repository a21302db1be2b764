package conf

import (
	"errors"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

// Flags registers settings on a flag set: each method binds a field to the
// flag v.Flag with the default def, ties it to v.Env and gives it a parser
// whose error says what the value should be.
type Flags struct{ fs *pflag.FlagSet }

// On returns the Flags registering on fs.
func On(fs *pflag.FlagSet) Flags { return Flags{fs: fs} }

func (f Flags) add(v Var, val pflag.Value, usage string) *pflag.Flag {
	f.fs.Var(val, v.Flag, usage)
	Bind(f.fs, v)
	return f.fs.Lookup(v.Flag)
}

// String binds a string.
func (f Flags) String(p *string, v Var, def, usage string) {
	*p = def
	f.add(v, (*stringValue)(p), usage)
}

// Int binds a whole number.
func (f Flags) Int(p *int, v Var, def int, usage string) {
	*p = def
	f.add(v, (*intValue)(p), usage)
}

// Int64 binds a whole number of 64 bits (byte sizes).
func (f Flags) Int64(p *int64, v Var, def int64, usage string) {
	*p = def
	f.add(v, (*int64Value)(p), usage)
}

// Port binds a TCP or UDP port number, 1-65535.
func (f Flags) Port(p *int, v Var, def int, usage string) {
	*p = def
	f.add(v, (*portValue)(p), usage)
}

// Duration binds a Go duration ("500ms", "10s", "1m30s").
func (f Flags) Duration(p *time.Duration, v Var, def time.Duration, usage string) {
	*p = def
	f.add(v, (*durationValue)(p), usage)
}

// Bool binds a boolean; the flag alone means true.
func (f Flags) Bool(p *bool, v Var, def bool, usage string) {
	*p = def
	f.add(v, (*boolValue)(p), usage).NoOptDefVal = "true"
}

// The parsers' errors complete "DIONYSIA_X="value": ..." (ApplyEnv) and
// pflag's `invalid argument "value" for "--x" flag: ...`.
var (
	errInt      = errors.New("not a whole number")
	errPort     = errors.New("not a port number (1-65535)")
	errDuration = errors.New("not a duration (a number with a unit, such as 500ms, 10s or 1m)")
	errBool     = errors.New("not a boolean (true or false)")
)

type stringValue string

func (s *stringValue) Set(v string) error { *s = stringValue(v); return nil }
func (s *stringValue) String() string     { return string(*s) }
func (s *stringValue) Type() string       { return "string" }

type intValue int

func (n *intValue) Set(v string) error {
	i, err := strconv.Atoi(v)
	if err != nil {
		return errInt
	}
	*n = intValue(i)
	return nil
}
func (n *intValue) String() string { return strconv.Itoa(int(*n)) }
func (n *intValue) Type() string   { return "int" }

type int64Value int64

func (n *int64Value) Set(v string) error {
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errInt
	}
	*n = int64Value(i)
	return nil
}
func (n *int64Value) String() string { return strconv.FormatInt(int64(*n), 10) }
func (n *int64Value) Type() string   { return "int" }

type portValue int

func (p *portValue) Set(v string) error {
	i, err := strconv.Atoi(v)
	if err != nil || i < 1 || i > 65535 {
		return errPort
	}
	*p = portValue(i)
	return nil
}
func (p *portValue) String() string { return strconv.Itoa(int(*p)) }
func (p *portValue) Type() string   { return "port" }

type durationValue time.Duration

func (d *durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return errDuration
	}
	*d = durationValue(x)
	return nil
}

// String is "0" for zero, which pflag's help treats as "no default shown"
// (a zero duration means "the default" in every config struct).
func (d *durationValue) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}
func (d *durationValue) Type() string { return "duration" }

type boolValue bool

func (b *boolValue) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return errBool
	}
	*b = boolValue(x)
	return nil
}
func (b *boolValue) String() string   { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) Type() string     { return "bool" }
func (b *boolValue) IsBoolFlag() bool { return true }
