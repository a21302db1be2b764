// Package conf is the configuration mechanism every Dionysia binary shares
// (dionysia api, edge, router, the CLI commands and dionysia-worker).
//
// Each binary keeps its settings in a struct whose zero value means
// "defaults" (a WithDefaults method fills it with cmp.Or) and checks it with
// a Validate method. A setting is named once, as a Var: its flag and its
// DIONYSIA_* environment variable. RegisterFlags methods bind the struct's
// fields to flags through Flags, which records each flag's variable and gives
// it a parser whose errors say what was expected; ApplyEnv then copies the
// variables into the flags the command line left unset, in one place, and
// fails on a value it cannot parse, naming the variable and the value:
//
//	DIONYSIA_EDGE_RTMP_PORT="abc": not a port number (1-65535)
//
// Validate methods report a value that parses but is out of range with the
// checks of this package (HostPort, HTTPURL, Range, ...), which name the
// variable, the flag and the value. Nothing falls back to a default silently.
//
// Secrets are environment variables only (command lines are visible to every
// local user): Secret reads them, and they are never logged.
//
// The variables shared by several binaries are declared here (RedisURL,
// RedisPrefix, APIURL, LogLevel, LogFormat and the secrets); every other
// variable is DIONYSIA_<BINARY>_<SETTING>. docs/configuration.md lists them
// all, and each binary's tests check its section of it (package conftest).
package conf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Var names one setting: its flag and its environment variable.
type Var struct {
	// Flag is the flag name without dashes; "" for a setting read from the
	// environment only (a secret).
	Flag string
	// Env is the environment variable, DIONYSIA_...
	Env string
}

// String names the setting as an operator sets it: `DIONYSIA_X (--x)`.
func (v Var) String() string {
	if v.Flag == "" {
		return v.Env
	}
	return v.Env + " (--" + v.Flag + ")"
}

// Invalid returns the error of a setting whose value is wrong, naming the
// variable, the flag and the value:
//
//	DIONYSIA_ROUTER_CACHE_TTL="2m0s" (--cache-ttl): must be at most 1m0s
func (v Var) Invalid(value any, format string, args ...any) error {
	name := v.Env + "=" + fmt.Sprintf("%q", fmt.Sprint(value))
	if v.Flag != "" {
		name += " (--" + v.Flag + ")"
	}
	return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
}

// Variables shared by several binaries.
var (
	// RedisURL is the Redis of the queues, the fleet, the ownership leases and
	// the stop signals (api, router, worker).
	RedisURL = Var{Flag: "redis-url", Env: "DIONYSIA_REDIS_URL"}
	// RedisPrefix prefixes every key but asynq's; the same on the API, the
	// routers and the workers.
	RedisPrefix = Var{Flag: "redis-prefix", Env: "DIONYSIA_REDIS_PREFIX"}
	// APIURL is the management API's base URL (edge, worker, CLI commands).
	APIURL = Var{Flag: "api-url", Env: "DIONYSIA_API_URL"}
	// LogLevel and LogFormat configure the logs of every binary.
	LogLevel  = Var{Flag: "log-level", Env: "DIONYSIA_LOG_LEVEL"}
	LogFormat = Var{Flag: "log-format", Env: "DIONYSIA_LOG_FORMAT"}

	// EdgeSecret is the edge↔API shared secret (api, edge).
	EdgeSecret = Var{Env: "DIONYSIA_EDGE_SECRET"}
	// WorkerSecret is the worker↔API shared secret (api, worker).
	WorkerSecret = Var{Env: "DIONYSIA_WORKER_SECRET"}
	// PlaybackKeys are the playback token keys, "kid:base64secret,..."
	// (api, router).
	PlaybackKeys = Var{Env: "DIONYSIA_PLAYBACK_KEYS"}

	// StorageURL is the object store of recordings, file:///dir or
	// s3://bucket/prefix?endpoint=…&region=… (api, router, worker;
	// docs/recording.md).
	StorageURL = Var{Flag: "storage-url", Env: "DIONYSIA_STORAGE_URL"}
	// StorageAccessKeyID and StorageSecretAccessKey are its S3 credentials
	// (environment only; empty: anonymous requests).
	StorageAccessKeyID     = Var{Env: "DIONYSIA_STORAGE_ACCESS_KEY_ID"}
	StorageSecretAccessKey = Var{Env: "DIONYSIA_STORAGE_SECRET_ACCESS_KEY"}
)

// envAnnotation is the pflag annotation naming a flag's environment variable.
const envAnnotation = "dionysia_env"

// Bind ties the registered flag v.Flag to the variable v.Env for ApplyEnv
// and mentions the variable in the flag's help. Flags does it for the flags
// it registers; Bind is for flags registered otherwise.
func Bind(fs *pflag.FlagSet, v Var) {
	f := fs.Lookup(v.Flag)
	if f == nil {
		panic("conf: no flag --" + v.Flag + " to bind to " + v.Env)
	}
	f.Usage += " (env " + v.Env + ")"
	_ = fs.SetAnnotation(v.Flag, envAnnotation, []string{v.Env})
}

// EnvName returns the environment variable bound to f, or "".
func EnvName(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// Vars returns the settings bound in fs, in flag order.
func Vars(fs *pflag.FlagSet) []Var {
	var vs []Var
	fs.VisitAll(func(f *pflag.Flag) {
		if env := EnvName(f); env != "" {
			vs = append(vs, Var{Flag: f.Name, Env: env})
		}
	})
	return vs
}

// ApplyEnv sets every bound flag of fs that the command line did not set from
// its environment variable. A variable that is unset or empty leaves the
// flag's default. A value that does not parse is an error naming the
// variable and the value; all of them are reported at once. lookup is
// os.LookupEnv when nil.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		env := EnvName(f)
		if env == "" || f.Changed {
			return
		}
		v, ok := lookup(env)
		if !ok || v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
	})
	return errors.Join(errs...)
}

// Secret returns the value of the environment-only setting v, trimmed of
// surrounding white space (a trailing newline from a secrets file is not part
// of a secret). lookup is os.LookupEnv when nil.
func Secret(lookup func(string) (string, bool), v Var) string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	s, _ := lookup(v.Env)
	return strings.TrimSpace(s)
}

// Redacted describes a secret for logs: "set" or "unset", never its value.
func Redacted(secret string) string {
	if secret == "" {
		return "unset"
	}
	return "set"
}
