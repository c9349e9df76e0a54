package config

import (
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

var goodKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// A URL without a host is libpq's way to name a Unix socket (host= in the
// query) or the default server; a URL that is not hierarchical is not one.
func TestDatabaseURLWithoutAHost(t *testing.T) {
	for _, raw := range []string{
		"postgres:///gatewayd?host=/var/run/postgresql",
		"postgresql://app:secret@/gatewayd?host=/tmp&sslmode=disable",
		"postgres:///gatewayd",
	} {
		c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "DATABASE_URL=" + raw})
		if assert.NoError(t, err, raw) {
			assert.Equal(t, raw, c.DatabaseURL)
		}
	}
	_, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "DATABASE_URL=postgres:gatewayd"})
	assert.ErrorContains(t, err, "DATABASE_URL must be a postgres:// URL")
}

func TestDefaults(t *testing.T) {
	c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err)
	assert.Equal(t, "postgres://postgres:postgres@127.0.0.1:5432/gatewayd?sslmode=disable", c.DatabaseURL)
	assert.Equal(t, []byte("0123456789abcdef0123456789abcdef"), c.EncryptionKey)
	assert.Equal(t, "0.0.0.0:3000", c.Addr())
	assert.Equal(t, 4096, c.APIMaxConnections)
	assert.Equal(t, "info", c.LogLevel)
	assert.Equal(t, "json", c.LogFormat)
	assert.Equal(t, []string{"*"}, c.CORSOrigins)
	assert.True(t, c.MigrateOnStart)
	assert.False(t, c.ChaosEnabled)
	assert.Equal(t, Gateway{
		ConnectTimeout: 10 * time.Second, AuthTimeout: 10 * time.Second, CommandTimeout: 30 * time.Second,
		BackoffInitial: time.Second, BackoffMax: 30 * time.Second, BackoffMultiplier: 2,
		PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second, DialConcurrency: 64,
		RestartLimit: 10, RestartWindow: time.Minute, SensorRefreshInterval: 10 * time.Minute,
		ReadingQueueLimit: 16, ReadingStartTimeout: 30 * time.Second, ReadingTimeout: time.Minute,
	}, c.Gateway)
	assert.Equal(t, 30*time.Second, c.ReconcileInterval)
	assert.Equal(t, 10*time.Second, c.ShutdownTimeout)
	assert.Equal(t, 90*24*time.Hour, c.WaveformRetention)
	assert.True(t, c.AuthEnabled, "access control is on unless turned off")
	assert.False(t, c.MetricsPublic)
	assert.True(t, c.MetricsEnabled, "metrics are on unless turned off")
	assert.Equal(t, 10000, c.EventsClientBuffer)
	assert.Nil(t, c.AllowedNetworks)
	assert.Empty(t, c.PreviousKeys)
	assert.Empty(t, c.CAFile)
}

func TestSecuritySettings(t *testing.T) {
	other := base64.StdEncoding.EncodeToString([]byte("another key, thirty-two bytes!!!"))
	ca, _ := testutil.NewTestCA(t, "gateway.example")
	c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "ENCRYPTION_KEYS_PREVIOUS= " + other + " , " + goodKey,
		"AUTH_ENABLED=false", "METRICS_PUBLIC=true", "METRICS_ENABLED=false", "EVENTS_CLIENT_BUFFER=20000", "GATEWAY_ALLOWED_NETWORKS=10.0.0.0/8, 192.168.1.7,fd00::/8",
		"GATEWAY_CA_FILE=" + ca})
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("another key, thirty-two bytes!!!"), []byte("0123456789abcdef0123456789abcdef")}, c.PreviousKeys)
	assert.False(t, c.AuthEnabled)
	assert.True(t, c.MetricsPublic)
	assert.False(t, c.MetricsEnabled)
	assert.Equal(t, 20000, c.EventsClientBuffer)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("fd00::/8")}, c.AllowedNetworks)
	assert.Equal(t, ca, c.CAFile)
}

func TestPrecedenceFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.yaml")
	require.NoError(t, os.WriteFile(path, []byte("api_port: 4000\nlog_level: debug\ncors_origin: https://a.example, https://b.example\ngateway_ping_interval: 5s\n"), 0o600))
	c, err := Load(path, []string{"ENCRYPTION_KEY=" + goodKey, "API_PORT=5000", "LOG_LEVEL="})
	require.NoError(t, err)
	assert.Equal(t, 5000, c.APIPort, "env wins over file")
	assert.Equal(t, "debug", c.LogLevel, "an empty variable counts as unset")
	assert.Equal(t, []string{"https://a.example", "https://b.example"}, c.CORSOrigins)
	assert.Equal(t, 5*time.Second, c.Gateway.PingInterval)

	// GATEWAYD_CONFIG names the file when no flag does.
	c, err = Load("", []string{"ENCRYPTION_KEY=" + goodKey, "GATEWAYD_CONFIG=" + path})
	require.NoError(t, err)
	assert.Equal(t, 4000, c.APIPort)
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"), []string{"ENCRYPTION_KEY=" + goodKey})
	assert.ErrorContains(t, err, "does not exist")
	typo := filepath.Join(dir, "typo.yaml")
	require.NoError(t, os.WriteFile(typo, []byte("api_prot: 1\n"), 0o600))
	_, err = Load(typo, []string{"ENCRYPTION_KEY=" + goodKey})
	assert.ErrorContains(t, err, "unknown keys api_prot")
	numeric := filepath.Join(dir, "numeric.yaml")
	require.NoError(t, os.WriteFile(numeric, []byte("shutdown_timeout: 500\n"), 0o600))
	_, err = Load(numeric, []string{"ENCRYPTION_KEY=" + goodKey})
	assert.ErrorContains(t, err, `SHUTDOWN_TIMEOUT must be a duration with a unit`)

	// A bad file does not hide the environment's problems, nor the
	// file's own bad values: all in one line.
	mixed := filepath.Join(dir, "mixed.yaml")
	require.NoError(t, os.WriteFile(mixed, []byte("api_prot: 1\nlog_level: loud\n"), 0o600))
	_, err = Load(mixed, []string{"API_PORT=x"})
	require.Error(t, err)
	for _, want := range []string{"unknown keys api_prot", "LOG_LEVEL must be one of", "API_PORT must be a whole number", "ENCRYPTION_KEY is required"} {
		assert.ErrorContains(t, err, want)
	}
	assert.NotContains(t, err.Error(), "\n")
	broken := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(broken, []byte("api_port: ["), 0o600))
	_, err = Load(broken, []string{"ENCRYPTION_KEY=" + goodKey, "LOG_LEVEL=loud"})
	assert.ErrorContains(t, err, "broken.yaml")
	assert.ErrorContains(t, err, "LOG_LEVEL must be one of")
	_, err = Load(filepath.Join(dir, "missing.yaml"), []string{"API_PORT=0"})
	assert.ErrorContains(t, err, "does not exist")
	assert.ErrorContains(t, err, "API_PORT must be")

	// An empty value in the file counts as unset, as in the environment.
	blank := filepath.Join(dir, "blank.yaml")
	require.NoError(t, os.WriteFile(blank, []byte("reconcile_interval: \"\"\nlog_level:\n"), 0o600))
	c, err := Load(blank, []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, c.ReconcileInterval)
	assert.Equal(t, "info", c.LogLevel)

	// The parser's complaints in one line; a nested key as YAML writes it.
	twice := filepath.Join(dir, "twice.yaml")
	require.NoError(t, os.WriteFile(twice, []byte("api_port: 1\napi_port: 2\n"), 0o600))
	_, err = Load(twice, []string{"ENCRYPTION_KEY=" + goodKey})
	assert.ErrorContains(t, err, `line 2: mapping key "api_port" already defined`)
	assert.NotContains(t, err.Error(), "\n")
	nested := filepath.Join(dir, "nested.yaml")
	require.NoError(t, os.WriteFile(nested, []byte("gateway:\n  connect_timeout: 1s\n"), 0o600))
	_, err = Load(nested, []string{"ENCRYPTION_KEY=" + goodKey})
	assert.ErrorContains(t, err, "unknown keys gateway.connect_timeout")
}

func TestInvalidValues(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	long := base64.StdEncoding.EncodeToString(make([]byte, 33))
	cases := []struct {
		env  string
		want string
	}{
		{"ENCRYPTION_KEY=", "ENCRYPTION_KEY is required and 32 bytes of standard base64; make one with: openssl rand -base64 32"},
		{"ENCRYPTION_KEY=" + short, "ENCRYPTION_KEY must be 32 bytes of standard base64; make one with: openssl rand -base64 32"},
		{"ENCRYPTION_KEY=" + long, "ENCRYPTION_KEY must be 32 bytes"},
		{"ENCRYPTION_KEY=not base64!", "ENCRYPTION_KEY must be 32 bytes"},
		{"API_PORT=0", `API_PORT must be a whole number from 1 to 65535, got "0"`},
		{"API_PORT=70000", `API_PORT must be a whole number from 1 to 65535, got "70000"`},
		{"API_PORT=http", `API_PORT must be a whole number from 1 to 65535, got "http"`},
		{"API_MAX_CONNECTIONS=0", `API_MAX_CONNECTIONS must be a whole number from 1 to 1000000, got "0"`},
		{"API_MAX_CONNECTIONS=lots", `API_MAX_CONNECTIONS must be a whole number from 1 to 1000000`},
		{"GATEWAY_CONNECT_TIMEOUT=10", `GATEWAY_CONNECT_TIMEOUT must be a duration with a unit such as 500ms, 10s, 1m or 2d, got "10"`},
		{"GATEWAY_AUTH_TIMEOUT=-1s", `GATEWAY_AUTH_TIMEOUT must be at least 10ms, got "-1s"`},
		{"RECONCILE_INTERVAL=1ns", `RECONCILE_INTERVAL must be at least 1s, got "1ns"`},
		{"GATEWAY_PING_INTERVAL=10ms", `GATEWAY_PING_INTERVAL must be at least 100ms`},
		{"GATEWAY_RESTART_WINDOW=500ms", `GATEWAY_RESTART_WINDOW must be at least 1s`},
		{"SENSOR_REFRESH_INTERVAL=999ms", `SENSOR_REFRESH_INTERVAL must be at least 1s`},
		{"READING_TIMEOUT=9ms", `READING_TIMEOUT must be at least 10ms`},
		// Products of a timeout (4 × GATEWAY_COMMAND_TIMEOUT for a
		// discovery, and more) wrapped negative past ~26,690d: every
		// discovery was 504 at once (found by an audit, helper 4).
		{"GATEWAY_COMMAND_TIMEOUT=30000d", `GATEWAY_COMMAND_TIMEOUT must be at most 365d, got "30000d"`},
		{"SHUTDOWN_TIMEOUT=366d", `SHUTDOWN_TIMEOUT must be at most 365d`},
		{"RECONCILE_INTERVAL=8761h", `RECONCILE_INTERVAL must be at most 365d`},
		{"GATEWAY_BACKOFF_MULTIPLIER=NaN", `GATEWAY_BACKOFF_MULTIPLIER must be a number from 1 to 100, got "NaN"`},
		{"API_HOST=127.0.0.1:80", `API_HOST must be an IP address or a host name (without a port), got "127.0.0.1:80"`},
		{"API_HOST=not a host!", `API_HOST must be an IP address or a host name`},
		{"DEBUG_ADDR=127.0.0.1:3000", `DEBUG_ADDR must not be the API's address (0.0.0.0:3000)`},
		{"LOG_LEVEL=verbose", `LOG_LEVEL must be one of debug, info, warn, error, got "verbose"`},
		{"LOG_FORMAT=xml", `LOG_FORMAT must be one of json, console`},
		{"MIGRATE_ON_START=maybe", `MIGRATE_ON_START must be true or false, got "maybe"`},
		{"CHAOS_ENABLED=2", `CHAOS_ENABLED must be true or false`},
		{"GATEWAY_BACKOFF_MULTIPLIER=0.5", `GATEWAY_BACKOFF_MULTIPLIER must be a number from 1 to 100`},
		{"GATEWAY_DIAL_CONCURRENCY=0", `GATEWAY_DIAL_CONCURRENCY must be a whole number from 1`},
		{"GATEWAY_BACKOFF_INITIAL=1m", `GATEWAY_BACKOFF_MAX must not be less than GATEWAY_BACKOFF_INITIAL`},
		{"DATABASE_URL=host=localhost user=x", `DATABASE_URL must be a postgres:// URL`},
		{"DATABASE_URL=postgres://u:hunter2@h/db?pool_max_conns=0", `DATABASE_URL cannot be used: pool_max_conns too small`},
		{"DATABASE_URL=postgres://u:hunter2@h/db?sslmode=bogus&password=hunter2", `DATABASE_URL cannot be used: failed to configure TLS`},
		{"CORS_ORIGIN= , ", `CORS_ORIGIN must list at least one origin`},
		{"CORS_ORIGIN=example.com", `CORS_ORIGIN entry 1 must be an origin such as https://ui.example.com, got "example.com"`},
		{"CORS_ORIGIN=https://a.example, https://ui.example.com/app", `CORS_ORIGIN entry 2 must be only scheme://host[:port]`},
		{"CORS_ORIGIN=https://u@a.example", `CORS_ORIGIN entry 1 must be only scheme://host[:port]`},
		{"CORS_ORIGIN=*,https://a.example", `CORS_ORIGIN must be * alone or a list of origins, not both`},
		{"CORS_ORIGIN=https://a.*.example", `CORS_ORIGIN entry 1 may use * only as *.domain`},
		{"DEBUG_ADDR=6060", `DEBUG_ADDR must be host:port`},
		{"WAVEFORM_RETENTION=10m", `WAVEFORM_RETENTION must be at least 1h`},
		{"WAVEFORM_RETENTION=forever", `WAVEFORM_RETENTION must be a duration such as 90d`},
		{"READING_QUEUE_LIMIT=0", `READING_QUEUE_LIMIT must be a whole number from 1 to 10000`},
		{"ENCRYPTION_KEYS_PREVIOUS=" + goodKey + "," + short, `ENCRYPTION_KEYS_PREVIOUS entry 2 must be 32 bytes of standard base64`},
		{"AUTH_ENABLED=no", `AUTH_ENABLED must be true or false`},
		{"METRICS_PUBLIC=yes", `METRICS_PUBLIC must be true or false`},
		{"METRICS_ENABLED=off", `METRICS_ENABLED must be true or false`},
		{"EVENTS_CLIENT_BUFFER=0", `EVENTS_CLIENT_BUFFER must be a whole number from 1 to 1000000, got "0"`},
		{"GATEWAY_ALLOWED_NETWORKS=10.0.0.0/8,", `GATEWAY_ALLOWED_NETWORKS`},
		{"GATEWAY_ALLOWED_NETWORKS=10.0.0.0/33", `GATEWAY_ALLOWED_NETWORKS`},
		{"GATEWAY_CA_FILE=/nonexistent/ca.pem", `GATEWAY_CA_FILE names a file that cannot be read`},
		{"GATEWAY_CA_FILE=config.go", `GATEWAY_CA_FILE CA file config.go: no PEM certificate found`},
		{"GATEWAY_CA_FILE=/", `GATEWAY_CA_FILE CA file: read /: is a directory`},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			env := []string{"ENCRYPTION_KEY=" + goodKey, tc.env}
			if strings.HasPrefix(tc.env, "ENCRYPTION_KEY=") {
				env = env[1:]
			}
			_, err := Load("", env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.NotContains(t, err.Error(), goodKey, "no secret in the message")
			assert.NotContains(t, err.Error(), "hunter2", "no password in the message")
		})
	}
}

func TestErrorsNeverEchoSecrets(t *testing.T) {
	_, err := Load("", []string{"ENCRYPTION_KEY=c2VjcmV0LXNlY3JldA==", "DATABASE_URL=mysql://u:topsecret@h/db"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "c2VjcmV0LXNlY3JldA==")
	assert.NotContains(t, err.Error(), "topsecret")
	assert.True(t, strings.Count(err.Error(), ";") >= 1, "all problems in one line: %s", err)
}

func TestMaskURL(t *testing.T) {
	assert.Equal(t, "postgres://app:xxxxx@db:5432/gw?sslmode=disable", MaskURL("postgres://app:hunter2@db:5432/gw?sslmode=disable"))
	assert.Equal(t, "postgres://app@db/gw", MaskURL("postgres://app@db/gw"))
	masked := MaskURL("postgres://app@db/gw?sslmode=disable&password=hunter2")
	assert.NotContains(t, masked, "hunter2", "a password query parameter is masked too")
	assert.Contains(t, masked, "sslmode=disable")
}

func TestDatabaseMaxConns(t *testing.T) {
	c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err)
	assert.Equal(t, 16, c.DatabaseMaxConns)
	c, err = Load("", []string{"ENCRYPTION_KEY=" + goodKey, "DATABASE_MAX_CONNS=8"})
	require.NoError(t, err)
	assert.Equal(t, 8, c.DatabaseMaxConns)
	for _, bad := range []string{"0", "1001", "-1", "many", "8.5"} {
		_, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "DATABASE_MAX_CONNS=" + bad})
		assert.ErrorContains(t, err, "DATABASE_MAX_CONNS must be a whole number from 1 to 1000", bad)
	}
}

func TestReadCacheTTL(t *testing.T) {
	c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey})
	require.NoError(t, err)
	assert.Equal(t, time.Second, c.ReadCacheTTL)
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "250ms": 250 * time.Millisecond, "1m": time.Minute} {
		c, err = Load("", []string{"ENCRYPTION_KEY=" + goodKey, "READ_CACHE_TTL=" + v})
		require.NoError(t, err, v)
		assert.Equal(t, want, c.ReadCacheTTL, v)
	}
	for _, bad := range []string{"5ms", "61s", "-1s", "soon", "1"} {
		_, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "READ_CACHE_TTL=" + bad})
		assert.ErrorContains(t, err, "READ_CACHE_TTL must be 0 or a duration from 10ms to 1m", bad)
	}
}

// API_HOST may be any IP address, IPv6 too (with or without brackets), or
// a host name; the listen address joins it with the port properly.
func TestAPIHostForms(t *testing.T) {
	for host, addr := range map[string]string{
		"0.0.0.0":    "0.0.0.0:3000",
		"::":         "[::]:3000",
		"::1":        "[::1]:3000",
		"[::1]":      "[::1]:3000",
		"localhost":  "localhost:3000",
		"gatewayd_1": "gatewayd_1:3000",
	} {
		c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "API_HOST=" + host})
		require.NoError(t, err, host)
		assert.Equal(t, addr, c.Addr(), host)
	}
	c, err := Load("", []string{"ENCRYPTION_KEY=" + goodKey, "API_HOST=127.0.0.1", "DEBUG_ADDR=127.0.0.2:3000"})
	require.NoError(t, err, "another address, the same port")
	assert.Equal(t, "127.0.0.2:3000", c.DebugAddr)
}
