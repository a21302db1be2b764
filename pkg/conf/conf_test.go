package conf_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

type settings struct {
	Name  string
	Count int
	Size  int64
	Port  int
	Wait  time.Duration
	On    bool
}

var (
	varName  = conf.Var{Flag: "name", Env: "DIONYSIA_T_NAME"}
	varCount = conf.Var{Flag: "count", Env: "DIONYSIA_T_COUNT"}
	varSize  = conf.Var{Flag: "size", Env: "DIONYSIA_T_SIZE"}
	varPort  = conf.Var{Flag: "port", Env: "DIONYSIA_T_PORT"}
	varWait  = conf.Var{Flag: "wait", Env: "DIONYSIA_T_WAIT"}
	varOn    = conf.Var{Flag: "on", Env: "DIONYSIA_T_ON"}
)

func register(s *settings) *pflag.FlagSet {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f := conf.On(fs)
	f.String(&s.Name, varName, "n", "a name")
	f.Int(&s.Count, varCount, 3, "a count")
	f.Int64(&s.Size, varSize, 1024, "a size")
	f.Port(&s.Port, varPort, 1935, "a port")
	f.Duration(&s.Wait, varWait, time.Second, "a wait")
	f.Bool(&s.On, varOn, false, "a switch")
	return fs
}

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	t.Parallel()
	var s settings
	fs := register(&s)
	require.Equal(t, settings{Name: "n", Count: 3, Size: 1024, Port: 1935, Wait: time.Second}, s, "defaults")
	require.NoError(t, fs.Parse([]string{"--port", "2000", "--on"}))
	require.NoError(t, conf.ApplyEnv(fs, envOf(map[string]string{
		"DIONYSIA_T_PORT":  "3000", // loses to the flag
		"DIONYSIA_T_WAIT":  "250ms",
		"DIONYSIA_T_COUNT": "", // empty means unset
		"DIONYSIA_T_NAME":  "x",
	})))
	require.Equal(t, settings{Name: "x", Count: 3, Size: 1024, Port: 2000, Wait: 250 * time.Millisecond, On: true}, s)
	require.Contains(t, fs.Lookup("port").Usage, "(env DIONYSIA_T_PORT)")
	require.Equal(t, []conf.Var{varCount, varName, varOn, varPort, varSize, varWait}, conf.Vars(fs))
}

func TestApplyEnvNamesTheVariableAndTheValue(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ env, value, want string }{
		"port":         {"DIONYSIA_T_PORT", "abc", `DIONYSIA_T_PORT="abc": not a port number (1-65535)`},
		"port range":   {"DIONYSIA_T_PORT", "70000", `DIONYSIA_T_PORT="70000": not a port number`},
		"no unit":      {"DIONYSIA_T_WAIT", "5", `DIONYSIA_T_WAIT="5": not a duration`},
		"forever":      {"DIONYSIA_T_WAIT", "forever", `DIONYSIA_T_WAIT="forever": not a duration`},
		"count":        {"DIONYSIA_T_COUNT", "x", `DIONYSIA_T_COUNT="x": not a whole number`},
		"size":         {"DIONYSIA_T_SIZE", "1MiB", `DIONYSIA_T_SIZE="1MiB": not a whole number`},
		"bool":         {"DIONYSIA_T_ON", "yes please", `DIONYSIA_T_ON="yes please": not a boolean`},
		"spaced count": {"DIONYSIA_T_COUNT", " 4", `DIONYSIA_T_COUNT=" 4": not a whole number`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var s settings
			fs := register(&s)
			err := conf.ApplyEnv(fs, envOf(map[string]string{tc.env: tc.value}))
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Every bad variable is reported at once.
	var s settings
	err := conf.ApplyEnv(register(&s), envOf(map[string]string{"DIONYSIA_T_PORT": "a", "DIONYSIA_T_WAIT": "b"}))
	require.ErrorContains(t, err, "DIONYSIA_T_PORT")
	require.ErrorContains(t, err, "DIONYSIA_T_WAIT")
	// A bad flag is pflag's error with the same explanation.
	err = register(&s).Parse([]string{"--port", "abc"})
	require.ErrorContains(t, err, `invalid argument "abc" for "--port" flag: not a port number`)
}

func TestChecksNameTheSettingAndTheValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want string
	}{
		{conf.HostPort(varName, "8080"), `DIONYSIA_T_NAME="8080" (--name): must be host:port`},
		{conf.HostPort(varName, "127.0.0.1:99999"), "port must be 0-65535"},
		{conf.Loopback(varName, "0.0.0.0:1"), `DIONYSIA_T_NAME="0.0.0.0:1" (--name): must be a loopback address`},
		{conf.Loopback(varName, ":1"), "loopback"},
		{conf.HTTPURL(varName, "ftp://x"), `DIONYSIA_T_NAME="ftp://x" (--name): must be an absolute http(s) URL`},
		{conf.Host(varName, "http://x/"), "must be a host name or an IP address"},
		{conf.Port(varPort, 0), `DIONYSIA_T_PORT="0" (--port): must be a port number`},
		{conf.Range(varWait, 2*time.Minute, time.Millisecond, time.Minute), `DIONYSIA_T_WAIT="2m0s" (--wait): must be between 1ms and 1m0s`},
		{conf.Positive(varCount, -1), `DIONYSIA_T_COUNT="-1" (--count): must be positive`},
		{conf.OneOf(varName, "x", "a", "b", "c"), `DIONYSIA_T_NAME="x" (--name): must be a, b or c`},
		{conf.Required(conf.EdgeSecret, ""), "DIONYSIA_EDGE_SECRET is required"},
	}
	for _, tc := range cases {
		require.ErrorContains(t, tc.err, tc.want)
	}
	for _, err := range []error{
		conf.HostPort(varName, ":0"), conf.HostPort(varName, "[::1]:80"), conf.Loopback(varName, "127.0.0.1:0"),
		conf.Loopback(varName, "[::1]:9"), conf.HTTPURL(varName, "https://x:1/p"), conf.Host(varName, "::1"),
		conf.Host(varName, "edge-1.example"), conf.Port(varPort, 65535), conf.Range(varCount, 1, 1, 2),
		conf.OneOf(varName, "a", "a"), conf.Required(varName, "x"),
	} {
		require.NoError(t, err)
	}
}

func TestSecret(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{"DIONYSIA_EDGE_SECRET": " s3cret\n"})
	require.Equal(t, "s3cret", conf.Secret(env, conf.EdgeSecret))
	require.Empty(t, conf.Secret(env, conf.WorkerSecret))
	require.Equal(t, "set", conf.Redacted("s3cret"))
	require.Equal(t, "unset", conf.Redacted(""))
}

func TestSharedSettings(t *testing.T) {
	t.Parallel()
	require.Equal(t, job.DefaultPrefix, conf.DefaultRedisPrefix)
	require.Equal(t, ownership.DefaultPrefix, conf.DefaultRedisPrefix)

	var r conf.Redis
	var l conf.Log
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	r.RegisterFlags(fs)
	l.RegisterFlags(fs)
	require.NoError(t, conf.ApplyEnv(fs, envOf(map[string]string{
		"DIONYSIA_REDIS_URL": "redis://127.0.0.1:6379/4", "DIONYSIA_REDIS_PREFIX": "t:", "DIONYSIA_LOG_FORMAT": "json",
	})))
	require.Equal(t, conf.Redis{URL: "redis://127.0.0.1:6379/4", Prefix: "t:"}, r)
	require.NoError(t, r.Validate())
	o, err := r.Options()
	require.NoError(t, err)
	require.Equal(t, 4, o.DB)

	err = conf.Redis{URL: "http://user:hunter2@x"}.WithDefaults().Validate()
	require.ErrorContains(t, err, "DIONYSIA_REDIS_URL=")
	require.NotContains(t, err.Error(), "hunter2", "a password in the URL is not repeated")
	require.Equal(t, conf.Redis{URL: conf.DefaultRedisURL, Prefix: conf.DefaultRedisPrefix}, conf.Redis{}.WithDefaults())

	var buf bytes.Buffer
	log, err := l.Logger(&buf)
	require.NoError(t, err)
	log.Info("hello")
	require.Contains(t, buf.String(), `"msg":"hello"`)
	_, err = conf.Log{Level: "loud"}.Logger(&buf)
	require.ErrorContains(t, err, `DIONYSIA_LOG_LEVEL="loud" (--log-level): must be debug, info, warn or error`)
	_, err = conf.Log{Format: "xml"}.Logger(&buf)
	require.ErrorContains(t, err, `DIONYSIA_LOG_FORMAT="xml"`)
}
