// Package config loads gatewayd's configuration: defaults, then an optional
// file, then environment variables (later wins), and validates every value
// before the process does anything else.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/ctcgw/gatewayd/internal/duration"
	"github.com/ctcgw/gatewayd/internal/netguard"
)

// Config is the validated configuration of one gatewayd process.
type Config struct {
	DatabaseURL string
	// DatabaseMaxConns is the size of the connection pool; a
	// pool_max_conns in DatabaseURL wins over it.
	DatabaseMaxConns int
	EncryptionKey    []byte // 32 bytes, decoded
	// PreviousKeys only open passwords sealed before a key rotation.
	PreviousKeys [][]byte
	APIHost      string
	APIPort      int
	// APIMaxConnections caps concurrent HTTP connections, so that HTTP
	// clients cannot take the file descriptors the gateways need.
	APIMaxConnections int
	// APIMaxClientConnections caps one client's share of them (0: a
	// quarter of APIMaxConnections, the API's default).
	APIMaxClientConnections int
	LogLevel                string
	LogFormat               string
	CORSOrigins             []string
	MigrateOnStart          bool
	ChaosEnabled            bool
	Gateway                 Gateway
	// ReconcileInterval is how often the supervisor converges to the store.
	ReconcileInterval time.Duration
	ShutdownTimeout   time.Duration
	// DebugAddr serves Go's pprof when not empty.
	DebugAddr string
	// ReadCacheTTL is how long a factory or gateway read by id is kept
	// for the next GETs of it (0: not at all).
	ReadCacheTTL time.Duration
	// WaveformRetention is how long readings' samples are kept; 0 keeps
	// them forever.
	WaveformRetention time.Duration
	// EventsBuffer is how many recent events /api/events can resume from.
	EventsBuffer int
	// EventsClientBuffer is how many events one /api/events client may
	// fall behind before it is cut off with event: overflow.
	EventsClientBuffer int
	// AuthEnabled makes every route but the public ones need a token;
	// MetricsPublic lets /metrics be scraped without one.
	AuthEnabled   bool
	MetricsPublic bool
	// MetricsEnabled=false removes /metrics and the per-request HTTP
	// counting, so that what counting costs can be measured.
	MetricsEnabled bool
	// AllowedNetworks are where gateways may be dialed (nil: anywhere
	// but the always-denied addresses).
	AllowedNetworks []netip.Prefix
	// CAFile adds PEM roots for verifying wss:// gateways.
	CAFile string
}

// Gateway holds the connection runtime's settings.
type Gateway struct {
	ConnectTimeout    time.Duration
	AuthTimeout       time.Duration
	CommandTimeout    time.Duration
	BackoffInitial    time.Duration
	BackoffMax        time.Duration
	BackoffMultiplier float64
	PingInterval      time.Duration
	PongTimeout       time.Duration
	DialConcurrency   int
	RestartLimit      int
	RestartWindow     time.Duration
	// SensorRefreshInterval is how often an authenticated gateway is asked
	// for its sensors again.
	SensorRefreshInterval time.Duration
	ReadingQueueLimit     int
	ReadingStartTimeout   time.Duration
	ReadingTimeout        time.Duration
}

// OneConnection is a DATABASE_URL for a single connection (pgx.Connect):
// without pgxpool's own query parameters (pool_max_conns, …), which
// DATABASE_URL may carry and a single connection would send to the server
// as settings it refuses ("unrecognized configuration parameter").
func OneConnection(u url.URL) *url.URL {
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return &u
}

// DefaultDatabaseURL is DATABASE_URL's default: the local PostgreSQL of a
// developer's machine. It is written here only; scripts ask the binary.
const DefaultDatabaseURL = "postgres://postgres:postgres@127.0.0.1:5432/gatewayd?sslmode=disable"

// DefaultDatabaseMaxConns is DATABASE_MAX_CONNS's default, from the pool
// size sweep in BENCHMARKS.md.
const DefaultDatabaseMaxConns = "16"

// Variable is one configuration variable: its name, its default and what
// it means. Variables is the one list of them: the parser, `gatewayd
// --help` and the README's table (a test compares them) all read it.
type Variable struct{ Name, Default, Help string }

// Variables lists every configuration variable with its default, in the
// order of the documentation. A file uses the same names in lower case.
var Variables = []Variable{
	{"DATABASE_URL", DefaultDatabaseURL, "PostgreSQL connection URL (pool_max_conns there wins over DATABASE_MAX_CONNS); a Unix socket without a host: postgres://user@/db?host=/var/run/postgresql"},
	{"DATABASE_MAX_CONNS", DefaultDatabaseMaxConns, "database connections in the pool"},
	{"READ_CACHE_TTL", "1s", "how long a factory or gateway read by id answers later GETs of it without the database (0: never); gatewayd's own writes are seen at once"},
	{"ENCRYPTION_KEY", "", "32 random bytes, standard base64 (openssl rand -base64 32); seals gateway passwords"},
	{"ENCRYPTION_KEYS_PREVIOUS", "", "former ENCRYPTION_KEYs, comma-separated; they only open (see gatewayd rekey)"},
	{"API_HOST", "0.0.0.0", "listen address"},
	{"API_PORT", "3000", "listen port"},
	{"API_MAX_CONNECTIONS", "4096", "concurrent HTTP connections; past it a new one is answered 503"},
	{"API_MAX_CONNECTIONS_PER_CLIENT", "", "concurrent HTTP connections of one client address (IPv6: /64), event streams included; past it a new one is answered 429 (empty: a quarter of API_MAX_CONNECTIONS; behind a reverse proxy, set it to API_MAX_CONNECTIONS)"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"LOG_FORMAT", "json", "json or console"},
	{"CORS_ORIGIN", "*", "allowed browser origins, comma-separated: `*` alone, or each `scheme://host[:port]` (`https://*.example.com` for subdomains)"},
	{"MIGRATE_ON_START", "true", "serve applies pending migrations first"},
	{"CHAOS_ENABLED", "false", "exposes POST /api/debug/gateways/:id/crash"},
	{"GATEWAY_CONNECT_TIMEOUT", "10s", "TCP + WebSocket handshake limit"},
	{"GATEWAY_AUTH_TIMEOUT", "10s", "limit for the answer to POST_LOGIN"},
	{"GATEWAY_COMMAND_TIMEOUT", "30s", "limit for any other command's answer"},
	{"GATEWAY_BACKOFF_INITIAL", "1s", "first retry delay"},
	{"GATEWAY_BACKOFF_MAX", "30s", "retry delay cap"},
	{"GATEWAY_BACKOFF_MULTIPLIER", "2", "growth factor of the retry delay (1-100; delays are jittered)"},
	{"GATEWAY_PING_INTERVAL", "30s", "WebSocket ping period while authenticated"},
	{"GATEWAY_PONG_TIMEOUT", "10s", "no pong within this: the connection is dead"},
	{"GATEWAY_DIAL_CONCURRENCY", "64", "dials in flight at once, process-wide"},
	{"GATEWAY_RESTART_LIMIT", "10", "actor crashes tolerated within the window before FAILED"},
	{"GATEWAY_RESTART_WINDOW", "1m", "window for GATEWAY_RESTART_LIMIT"},
	{"RECONCILE_INTERVAL", "30s", "how often the runtime re-reads the gateways"},
	{"SENSOR_REFRESH_INTERVAL", "10m", "how often an authenticated gateway is asked for its sensors"},
	{"READING_QUEUE_LIMIT", "16", "readings waiting on one gateway; past it 429"},
	{"READING_START_TIMEOUT", "30s", "limit for NOT_DYN_READING_STARTED"},
	{"READING_TIMEOUT", "60s", "limit for NOT_DYN_READING after it started"},
	{"WAVEFORM_RETENTION", "90d", "how long readings' samples are kept (0 keeps them)"},
	{"EVENTS_BUFFER", "10000", "recent events /api/events can resume from"},
	{"EVENTS_CLIENT_BUFFER", "10000", "events one /api/events client may fall behind before it is cut off (event: overflow)"},
	{"SHUTDOWN_TIMEOUT", "10s", "graceful shutdown limit"},
	{"DEBUG_ADDR", "", "host:port for Go's pprof (empty: off)"},
	{"AUTH_ENABLED", "true", "every route but the public ones needs an API token"},
	{"METRICS_PUBLIC", "false", "GET /metrics needs no token"},
	{"METRICS_ENABLED", "true", "false: no /metrics route and no per-request HTTP metrics (to measure their cost)"},
	{"GATEWAY_ALLOWED_NETWORKS", "", "CIDRs gateways may be dialed in, comma-separated (empty: anywhere but the always-denied)"},
	{"GATEWAY_CA_FILE", "", "PEM file of roots added to the system's for wss:// gateways"},
}

// FileEnv is the environment variable that names a configuration file when
// no --config flag is given.
const FileEnv = "GATEWAYD_CONFIG"

// Load reads the configuration. path is the --config flag (may be empty);
// environ is the process environment (os.Environ() in main, a fixed list in
// tests). The error, if any, is one line naming each bad variable.
func Load(path string, environ []string) (*Config, error) {
	envMap := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && v != "" { // an empty variable counts as unset
			envMap[k] = v
		}
	}
	if path == "" {
		path = envMap[FileEnv]
	}

	k := koanf.New("|") // no key of ours contains '|', so keys stay flat
	defaults := make(map[string]any, len(Variables))
	for _, v := range Variables {
		defaults[strings.ToLower(v.Name)] = v.Default
	}
	known := knownKeys()
	if err := k.Load(confmap.Provider(defaults, "|"), nil); err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	// A bad file does not hide the environment's problems: everything
	// wrong is reported in one line.
	var problems []string
	if path != "" {
		problems = loadFile(k, path, known)
	}
	err := k.Load(env.Provider("|", env.Opt{
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			key := strings.ToLower(name)
			if value == "" || !known[key] {
				return "", nil
			}
			return key, value
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	return parse(func(name string) string { return k.String(strings.ToLower(name)) }, problems)
}

// DatabaseURL is DATABASE_URL as Load would take it (default, then the
// file GATEWAYD_CONFIG names, then the environment), without the other
// variables' checks: for tools that only need the database (ensuredb,
// behind make db), which read only the environment and made sure of the
// default database while gatewayd ran on the file's (found by an audit,
// helper 5). An unreadable file is an error, as it is for gatewayd.
func DatabaseURL(environ []string) (string, error) {
	var path, fromEnv string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case v == "":
		case k == FileEnv:
			path = v
		case k == "DATABASE_URL":
			fromEnv = v
		}
	}
	if fromEnv != "" {
		return fromEnv, nil
	}
	if path != "" {
		k := koanf.New("|")
		if problems := loadFile(k, path, knownKeys()); len(problems) > 0 {
			return "", errors.New("config: " + strings.Join(problems, "; "))
		}
		if v := strings.TrimSpace(k.String("database_url")); v != "" {
			return v, nil
		}
	}
	return DefaultDatabaseURL, nil
}

// knownKeys is the set of the variables' keys as koanf holds them (lower
// case).
func knownKeys() map[string]bool {
	known := make(map[string]bool, len(Variables))
	for _, v := range Variables {
		known[strings.ToLower(v.Name)] = true
	}
	return known
}

// loadFile sets k from the YAML file's known keys and returns what is
// wrong with the file: it cannot be read or parsed, or it has unknown keys
// (the known ones still apply).
func loadFile(k *koanf.Koanf, path string, known map[string]bool) []string {
	name := filepath.Clean(path)
	fk := koanf.New("|")
	if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return []string{fmt.Sprintf("file %s does not exist", name)}
		}
		// One line, as every configuration problem is: the YAML parser
		// lists its complaints on lines of their own.
		return []string{fmt.Sprintf("file %s: %s", name, strings.Join(strings.Fields(err.Error()), " "))}
	}
	var problems, bad []string
	// Keys are matched without regard to case, so API_PORT and api_port
	// in one file are one variable given twice: the YAML parser refuses
	// an exact repeat, and this one was dropped silently (found by an
	// audit, helper 5).
	spelled := map[string][]string{}
	for _, key := range fk.Keys() {
		if lk := strings.ToLower(key); known[lk] {
			spelled[lk] = append(spelled[lk], key)
		}
	}
	for _, key := range fk.Keys() {
		if names := spelled[strings.ToLower(key)]; len(names) > 1 {
			if key == names[0] {
				problems = append(problems, fmt.Sprintf("file %s: %s given %d times (%s)", name, strings.ToLower(key), len(names), strings.Join(names, ", ")))
			}
			continue
		}
		if !known[strings.ToLower(key)] {
			// A nested key, as YAML would write it (koanf joins the path
			// with its delimiter).
			bad = append(bad, strings.ReplaceAll(key, "|", "."))
			continue
		}
		s, problem := fileValue(fk.Get(key), strings.ToUpper(key))
		if problem != "" {
			problems = append(problems, fmt.Sprintf("file %s: %s %s", name, key, problem))
			continue
		}
		if s != "" {
			if err := k.Set(strings.ToLower(key), s); err != nil {
				problems = append(problems, fmt.Sprintf("file %s: %v", name, err))
			}
		}
	}
	if len(bad) > 0 {
		problems = append(problems, fmt.Sprintf("file %s: unknown keys %s (use the variable names in lower case)", name, strings.Join(bad, ", ")))
	}
	return problems
}

// ListVariables are the variables whose value is a comma-separated list:
// in a file they may also be written as a YAML list.
var ListVariables = map[string]bool{"ENCRYPTION_KEYS_PREVIOUS": true, "CORS_ORIGIN": true, "GATEWAY_ALLOWED_NETWORKS": true}

// fileValue is the string a file's value stands for, as the environment
// would give it, or what is wrong with it. A YAML list is taken for a list
// variable (its entries joined with commas) and refused for any other:
// koanf would have printed it as Go prints a slice ("[a b]"), which the
// variable's check then quoted as one bad entry (found by an audit,
// helper 1).
func fileValue(v any, name string) (string, string) {
	list, ok := v.([]any)
	if !ok {
		return scalar(v), ""
	}
	if !ListVariables[name] {
		return "", "must be one value, not a list"
	}
	parts := make([]string, len(list))
	for i, e := range list {
		switch e.(type) {
		case []any, map[string]any:
			return "", fmt.Sprintf("entry %d must be one value, not a list or a mapping", i+1)
		}
		// An empty entry is refused, as the environment's "," is: a
		// list of only empty entries was taken as unset, the default,
		// which for GATEWAY_ALLOWED_NETWORKS is anywhere and for
		// CORS_ORIGIN every origin (found by an audit, helper 5).
		if parts[i] = strings.TrimSpace(scalar(e)); parts[i] == "" {
			return "", fmt.Sprintf("entry %d is empty", i+1)
		}
	}
	return strings.Join(parts, ","), ""
}

// scalar is a YAML scalar as the environment would give it. Numbers are
// written out in full: %v printed 1e6 as "1e+06", which the variable's
// check then refused (1e3, printed "1000", was taken) and quoted back as
// a text the file never held; a date is written as YAML writes it, not
// as Go prints a time.Time (found by an audit, helper 5).
func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case time.Time:
		if v.Equal(v.Truncate(24*time.Hour)) && v.Location() == time.UTC {
			return v.Format(time.DateOnly)
		}
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// parse validates every variable and gathers all problems, after those
// already found, into one line.
func parse(get func(string) string, problems []string) (*Config, error) {
	p := parser{get: get, errs: problems}
	c := &Config{
		DatabaseURL:             p.databaseURL("DATABASE_URL"),
		DatabaseMaxConns:        p.intRange("DATABASE_MAX_CONNS", 1, 1000),
		ReadCacheTTL:            p.cacheTTL("READ_CACHE_TTL"),
		EncryptionKey:           p.key("ENCRYPTION_KEY"),
		PreviousKeys:            p.keys("ENCRYPTION_KEYS_PREVIOUS"),
		APIHost:                 p.host("API_HOST"),
		APIPort:                 p.intRange("API_PORT", 1, 65535),
		APIMaxConnections:       p.intRange("API_MAX_CONNECTIONS", 1, 1000000),
		APIMaxClientConnections: p.optionalInt("API_MAX_CONNECTIONS_PER_CLIENT", 1, 1000000),
		LogLevel:                p.oneOf("LOG_LEVEL", "debug", "info", "warn", "error"),
		LogFormat:               p.oneOf("LOG_FORMAT", "json", "console"),
		CORSOrigins:             p.origins("CORS_ORIGIN"),
		MigrateOnStart:          p.boolean("MIGRATE_ON_START"),
		ChaosEnabled:            p.boolean("CHAOS_ENABLED"),
		Gateway: Gateway{
			ConnectTimeout:        p.duration("GATEWAY_CONNECT_TIMEOUT"),
			AuthTimeout:           p.duration("GATEWAY_AUTH_TIMEOUT"),
			CommandTimeout:        p.duration("GATEWAY_COMMAND_TIMEOUT"),
			BackoffInitial:        p.duration("GATEWAY_BACKOFF_INITIAL"),
			BackoffMax:            p.duration("GATEWAY_BACKOFF_MAX"),
			BackoffMultiplier:     p.float("GATEWAY_BACKOFF_MULTIPLIER", 1, 100),
			PingInterval:          p.duration("GATEWAY_PING_INTERVAL"),
			PongTimeout:           p.duration("GATEWAY_PONG_TIMEOUT"),
			DialConcurrency:       p.intRange("GATEWAY_DIAL_CONCURRENCY", 1, 100000),
			RestartLimit:          p.intRange("GATEWAY_RESTART_LIMIT", 0, 1000000),
			RestartWindow:         p.duration("GATEWAY_RESTART_WINDOW"),
			SensorRefreshInterval: p.duration("SENSOR_REFRESH_INTERVAL"),
			ReadingQueueLimit:     p.intRange("READING_QUEUE_LIMIT", 1, 10000),
			ReadingStartTimeout:   p.duration("READING_START_TIMEOUT"),
			ReadingTimeout:        p.duration("READING_TIMEOUT"),
		},
		ReconcileInterval:  p.duration("RECONCILE_INTERVAL"),
		ShutdownTimeout:    p.duration("SHUTDOWN_TIMEOUT"),
		DebugAddr:          p.optionalAddr("DEBUG_ADDR"),
		WaveformRetention:  p.retention("WAVEFORM_RETENTION"),
		EventsBuffer:       p.intRange("EVENTS_BUFFER", 0, 1_000_000),
		EventsClientBuffer: p.intRange("EVENTS_CLIENT_BUFFER", 1, 1_000_000),
		AuthEnabled:        p.boolean("AUTH_ENABLED"),
		MetricsPublic:      p.boolean("METRICS_PUBLIC"),
		MetricsEnabled:     p.boolean("METRICS_ENABLED"),
		AllowedNetworks:    p.networks("GATEWAY_ALLOWED_NETWORKS"),
		CAFile:             p.caFile("GATEWAY_CA_FILE"),
	}
	if c.DebugAddr != "" && c.APIHost != "" && sameListener(c.DebugAddr, c.Addr()) {
		p.fail("DEBUG_ADDR", "must not be the API's address (%s)", c.Addr())
	}
	if c.Gateway.BackoffMax > 0 && c.Gateway.BackoffInitial > c.Gateway.BackoffMax {
		p.fail("GATEWAY_BACKOFF_MAX", "must not be less than GATEWAY_BACKOFF_INITIAL (%s)", c.Gateway.BackoffInitial)
	}
	if len(p.errs) > 0 {
		return nil, errors.New("config: " + strings.Join(p.errs, "; "))
	}
	return c, nil
}

type parser struct {
	get  func(string) string
	errs []string
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, name+" "+fmt.Sprintf(format, args...))
}

func (p *parser) str(name string) string {
	v := strings.TrimSpace(p.get(name))
	if v == "" {
		p.fail(name, "must not be empty")
	}
	return v
}

// host is a listen address without a port: an IP address (IPv6 with or
// without brackets) or a host name. Anything else failed only after the
// database work of a start, as "too many colons in address".
func (p *parser) host(name string) string {
	v := strings.TrimSpace(p.get(name))
	bare := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	switch {
	case v == "":
		p.fail(name, "must not be empty")
	case net.ParseIP(bare) != nil:
		return bare
	case !isHostName(v):
		p.fail(name, "must be an IP address or a host name (without a port), got %q", v)
	}
	return v
}

// isHostName: letters, digits, '-', '_' (container names have them) and
// '.', at most 253 characters, no empty label.
func isHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// sameListener: the two host:port addresses would take the same port on
// the same address (a wildcard address takes it on every one).
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

func (p *parser) databaseURL(name string) string {
	v := strings.TrimSpace(p.get(name))
	if v == "" {
		p.fail(name, "must not be empty")
		return ""
	}
	// Only the URL form is accepted, so the password can always be masked.
	// A URL may leave out the host, as libpq's do: the server is then the
	// host= parameter's (a Unix socket's directory, e.g.
	// postgres:///gatewayd?host=/var/run/postgresql), PGHOST's, or pgx's
	// default, a local Unix socket if there is one.
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Opaque != "" {
		p.fail(name, "must be a postgres:// URL, e.g. postgres://user:password@127.0.0.1:5432/gatewayd?sslmode=disable")
		return ""
	}
	// What the driver will refuse (pool_max_conns=0, sslmode=bogus, a
	// bad port) is named now, not as a bare "cannot be parsed" at connect.
	// The driver's message quotes the URL (its password masked); only its
	// reason is kept.
	if _, err := pgxpool.ParseConfig(v); err != nil {
		reason := err.Error()
		if i := strings.Index(reason, "`: "); i >= 0 {
			reason = reason[i+len("`: "):]
		} else {
			reason = "the driver refuses it"
		}
		p.fail(name, "cannot be used: %s", reason)
		return ""
	}
	return v
}

func (p *parser) key(name string) []byte {
	const how = "must be 32 bytes of standard base64; make one with: openssl rand -base64 32"
	v := strings.TrimSpace(p.get(name))
	if v == "" {
		p.fail(name, "is required and %s", strings.TrimPrefix(how, "must be "))
		return nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != 32 {
		p.fail(name, how)
		return nil
	}
	return b
}

// keys is a comma-separated list of keys, each as key() takes them.
func (p *parser) keys(name string) [][]byte {
	var out [][]byte
	for i, v := range strings.Split(p.get(name), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		b, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil || len(b) != 32 {
			p.fail(name, "entry %d must be 32 bytes of standard base64 (a former ENCRYPTION_KEY)", i+1)
			continue
		}
		out = append(out, b)
	}
	return out
}

// networks is a comma-separated list of CIDRs (or addresses); empty is
// no allowlist.
func (p *parser) networks(name string) []netip.Prefix {
	nets, err := netguard.ParseNetworks(p.get(name))
	if err != nil {
		p.fail(name, "%v", err)
	}
	// An entry that allows nothing is a mistake to name at start, not in
	// every gateway's last_error later.
	var never []string
	for i, pfx := range nets {
		if d, ok := netguard.NeverAllowed(pfx); ok {
			never = append(never, fmt.Sprintf("entry %d %s lies in %s", i+1, pfx, d))
		}
	}
	if len(never) > 0 {
		p.fail(name, "%s, which gatewayd never dials (link-local, unspecified, multicast, broadcast, cloud metadata): such an entry allows nothing", strings.Join(never, ", "))
	}
	return nets
}

// file is empty or a readable file.
func (p *parser) file(name string) string {
	v := strings.TrimSpace(p.get(name))
	if v == "" {
		return ""
	}
	if _, err := os.Stat(v); err != nil {
		p.fail(name, "names a file that cannot be read: %s", filepath.Clean(v))
		return ""
	}
	return v
}

// caFile is file, whose content must also be what serve will read: PEM
// certificates. Every command loads the configuration, so a file that is
// not one is named here, with the variable, and not only when serve
// starts.
func (p *parser) caFile(name string) string {
	v := p.file(name)
	if v == "" {
		return ""
	}
	if _, err := netguard.RootCAs(v); err != nil {
		p.fail(name, "%s", err)
		return ""
	}
	return v
}

func (p *parser) intRange(name string, lo, hi int) int {
	v := strings.TrimSpace(p.get(name))
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, "must be a whole number from %d to %d, got %q", lo, hi, v)
	}
	return n
}

// optionalInt is intRange, or 0 when the variable is empty.
func (p *parser) optionalInt(name string, lo, hi int) int {
	if strings.TrimSpace(p.get(name)) == "" {
		return 0
	}
	return p.intRange(name, lo, hi)
}

func (p *parser) float(name string, lo, hi float64) float64 {
	v := strings.TrimSpace(p.get(name))
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < lo || f > hi {
		p.fail(name, "must be a number from %g to %g, got %q", lo, hi, v)
	}
	return f
}

func (p *parser) duration(name string) time.Duration {
	v := strings.TrimSpace(p.get(name))
	d, err := duration.Parse(v)
	if err != nil {
		p.fail(name, "must be a duration with a unit such as 500ms, 10s, 1m or 2d, got %q", v)
		return 0
	}
	if floor := durationFloor(name); d < floor {
		p.fail(name, "must be at least %s, got %q", floor, v)
	}
	if d > maxDuration {
		p.fail(name, "must be at most 365d, got %q", v)
	}
	return d
}

// maxDuration is the most a duration variable may be: a year is already
// "never". Timeouts are added and multiplied (a discovery waits four
// command timeouts and more), and 30000d wrapped negative: every
// discovery was 504 at once (found by an audit, helper 4). Under a year,
// no product the runtime makes comes near time.Duration's 292 years.
const maxDuration = 365 * 24 * time.Hour

// durationFloor is the least a duration variable may be. A nanosecond
// was accepted: timers then re-armed as fast as they fired (1ns
// RECONCILE_INTERVAL: three quarters of a core, and PostgreSQL's share,
// with no gateway at all). Periods of whole-fleet work get a second;
// the ping, which tests run short, 100ms; everything else 10ms.
func durationFloor(name string) time.Duration {
	switch name {
	case "RECONCILE_INTERVAL", "SENSOR_REFRESH_INTERVAL", "GATEWAY_RESTART_WINDOW":
		return time.Second
	case "GATEWAY_PING_INTERVAL":
		return 100 * time.Millisecond
	}
	return 10 * time.Millisecond
}

// cacheTTL is 0 (keep nothing) or a duration from 10ms to 1m: what the
// cache may hide is a write made behind gatewayd's back, and a minute of
// that is already long.
func (p *parser) cacheTTL(name string) time.Duration {
	v := strings.TrimSpace(p.get(name))
	d, err := duration.Parse(v)
	if err != nil || d < 0 || (d > 0 && d < 10*time.Millisecond) || d > time.Minute {
		p.fail(name, "must be 0 or a duration from 10ms to 1m, got %q", v)
		return 0
	}
	return d
}

// retention is a duration, where 0 means keep forever.
func (p *parser) retention(name string) time.Duration {
	v := strings.TrimSpace(p.get(name))
	d, err := duration.Parse(v)
	if err != nil || d < 0 {
		p.fail(name, "must be a duration such as 90d or 12h, or 0 to keep everything, got %q", v)
		return 0
	}
	if d > 0 && d < time.Hour {
		p.fail(name, "must be at least 1h (or 0 to keep everything), got %q", v)
	}
	return d
}

// optionalAddr is empty or a host:port to listen on.
func (p *parser) optionalAddr(name string) string {
	v := strings.TrimSpace(p.get(name))
	if v == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		p.fail(name, "must be host:port such as 127.0.0.1:6060, got %q", v)
		return ""
	}
	return v
}

func (p *parser) boolean(name string) bool {
	v := strings.TrimSpace(p.get(name))
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "must be true or false, got %q", v)
	}
	return b
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := strings.ToLower(strings.TrimSpace(p.get(name)))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	return ""
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.get(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		p.fail(name, "must list at least one origin")
	}
	return out
}

// origins reads a list of browser origins: "*" alone, or each
// scheme://host[:port] with nothing after it ("https://*.example.com"
// allows the subdomains of example.com). The CORS middleware would
// otherwise find a bad entry only when the server is built, and panic.
func (p *parser) origins(name string) []string {
	list := p.list(name)
	for i, o := range list {
		if o == "*" {
			if len(list) > 1 {
				p.fail(name, "must be * alone or a list of origins, not both")
				return nil
			}
			continue
		}
		if msg := badOrigin(o); msg != "" {
			p.fail(name, "entry %d %s, got %q", i+1, msg, o)
		}
	}
	return list
}

func badOrigin(o string) string {
	u, err := url.Parse(strings.Replace(o, "://*.", "://", 1))
	switch {
	case err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "must be an origin such as https://ui.example.com"
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "must be only scheme://host[:port], without a path, query or user"
	case strings.Contains(u.Host, "*"):
		return "may use * only as *.domain right after the scheme"
	}
	return ""
}

// Addr is the HTTP listen address.
func (c *Config) Addr() string {
	return net.JoinHostPort(c.APIHost, strconv.Itoa(c.APIPort))
}

// MaskURL returns a connection URL with its passwords replaced, fit for
// logs: the one in the user part and a password query parameter (libpq
// accepts both).
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	masked := false
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "xxxxx")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
