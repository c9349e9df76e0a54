package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/logging"
	"github.com/ctcgw/gatewayd/store"
)

// gwloadAppName is the application_name of gwload's own database
// connections.
const gwloadAppName = "gwload"

// env is one scenario's world: a fresh database, a simulator, and a
// gatewayd (a subprocess, or a target given with -target).
type env struct {
	o      *options
	dbName string
	dbURL  string
	ownDB  bool // created by gwload, dropped at the end
	pool   *pgxpool.Pool
	// sealer seals the seeded gateways' passwords the way gatewayd does
	// (the format is the contract's, API.md §2).
	sealer  *store.Sealer
	key     string
	sim     *ctctest.Server
	org     uuid.UUID
	factory uuid.UUID

	proc    *exec.Cmd
	exited  chan error
	logFile *os.File
	api     string
	client  *http.Client
	// token is sent as a bearer token on every request.
	token string

	ids  []uuid.UUID
	sims []*ctctest.Gateway
	// sensors, when set, gives the i-th seeded gateway its sensors; nil
	// keeps the simulator's default (ctctest.DefaultSensors(2)).
	sensors func(i int) []ctc.Sensor
}

func newEnv(ctx context.Context, o *options) (*env, error) {
	e := &env{o: o, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute},
	}}
	sim, err := ctctest.NewServer("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sim.KeepRecords(0) // a long run measures gatewayd, not the simulator's records
	e.sim = sim
	if o.target != "" {
		e.token = o.token
		e.api = strings.TrimSuffix(o.target, "/") + "/api"
		return e, e.seedParentsViaAPI()
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	e.key = base64.StdEncoding.EncodeToString(raw)
	if e.sealer, err = store.NewSealer(raw); err != nil {
		return nil, err
	}
	if o.freshDatabase != nil {
		e.dbURL = o.freshDatabase()
		u, err := url.Parse(e.dbURL)
		if err != nil {
			return nil, fmt.Errorf("database URL: %w", err)
		}
		e.dbName = strings.TrimPrefix(u.Path, "/")
	} else {
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix)
		e.dbName = "gwload_" + hex.EncodeToString(suffix)
		if err := e.admin(ctx, "CREATE DATABASE "+e.dbName); err != nil {
			return nil, err
		}
		e.ownDB = true
		u, _ := url.Parse(o.database)
		u.Path = "/" + e.dbName
		e.dbURL = u.String()
	}
	// The binary migrates, as it would for a user.
	migrate := exec.CommandContext(ctx, o.gatewayd, "migrate")
	migrate.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + e.dbURL, "ENCRYPTION_KEY=" + e.key}
	if out, err := migrate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s migrate: %v\n%s", o.gatewayd, err, out)
	}
	// An admin token, made the way an operator makes one.
	mint := exec.CommandContext(ctx, o.gatewayd, "token", "create", "--name", "gwload", "--role", "admin")
	mint.Env = migrate.Env
	var minted, mintErr bytes.Buffer
	mint.Stdout, mint.Stderr = &minted, &mintErr
	if err := mint.Run(); err != nil {
		return nil, fmt.Errorf("%s token create: %v\n%s", o.gatewayd, err, mintErr.Bytes())
	}
	e.token = strings.TrimSpace(minted.String())
	pc, err := pgxpool.ParseConfig(e.dbURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	// Named, so that pg_stat_activity tells gwload's own connections from
	// gatewayd's (which set no application_name).
	pc.ConnConfig.RuntimeParams["application_name"] = gwloadAppName
	if e.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, err
	}
	e.org, e.factory = uuid.New(), uuid.New()
	if _, err := e.pool.Exec(ctx, `INSERT INTO organizations (id, name) VALUES ($1, 'Load')`, e.org); err != nil {
		return nil, err
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO factories (id, organization_id, name) VALUES ($1, $2, 'Load plant')`, e.factory, e.org); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) admin(ctx context.Context, sql string) error {
	u, err := url.Parse(e.o.database)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	u = config.OneConnection(*u)
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("connect to the database server: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func (e *env) close() {
	e.stopGatewayd()
	if e.logFile != nil {
		e.logFile.Close()
		if !e.o.keep {
			os.Remove(e.logFile.Name())
		}
	}
	if e.sim != nil {
		e.sim.Close()
	}
	if e.pool != nil {
		e.pool.Close()
	}
	if e.ownDB && !e.o.keep {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.admin(ctx, "DROP DATABASE IF EXISTS "+e.dbName+" WITH (FORCE)")
	}
}

// seed adds n simulated gateways and registers them: straight into the
// database before gatewayd starts, or through the API of a target.
func (e *env) seed(ctx context.Context, n int) error {
	start := len(e.sims)
	for i := start; i < start+n; i++ {
		name := fmt.Sprintf("load-%05d", i)
		cfg := ctctest.Config{Email: "load@example.com", Password: "load-" + name}
		if e.sensors != nil {
			cfg.Sensors = e.sensors(i)
		}
		e.sims = append(e.sims, e.sim.Add(name, cfg))
	}
	if e.o.target != "" {
		for i := start; i < start+n; i++ {
			g := e.sims[i]
			var out struct{ ID uuid.UUID }
			if err := e.call("POST", "/gateways", map[string]any{"factory_id": e.factory, "gateway_id": g.Name() + "-" + e.idTag(),
				"name": g.Name(), "url": g.URL(), "email": "load@example.com", "password": "load-" + g.Name()}, 201, &out); err != nil {
				return err
			}
			e.ids = append(e.ids, out.ID)
		}
		return nil
	}
	rows := make([][]any, 0, n)
	for i := start; i < start+n; i++ {
		g := e.sims[i]
		sealed, err := e.sealer.Seal("load-" + g.Name())
		if err != nil {
			return err
		}
		id := uuid.New()
		e.ids = append(e.ids, id)
		rows = append(rows, []any{id, e.factory, g.Name(), g.Name(), g.URL(), "load@example.com", sealed})
	}
	_, err := e.pool.CopyFrom(ctx, pgx.Identifier{"gateways"},
		[]string{"id", "factory_id", "gateway_id", "name", "url", "email", "password_encrypted"}, pgx.CopyFromRows(rows))
	return err
}

func (e *env) seedParentsViaAPI() error {
	var org, f struct{ ID uuid.UUID }
	if err := e.call("POST", "/organizations", map[string]any{"name": "Load"}, 201, &org); err != nil {
		return err
	}
	if err := e.call("POST", "/factories", map[string]any{"organization_id": org.ID, "name": "Load plant"}, 201, &f); err != nil {
		return err
	}
	e.org, e.factory = org.ID, f.ID
	e.key = strings.ReplaceAll(uuid.NewString(), "-", "")
	return nil
}

// startGatewayd runs the gatewayd binary against the scenario's database
// and waits until it is ready. It returns the moment the process started.
// A port that was free a moment ago can be taken by the time gatewayd
// binds it (another process's server, or the local end of an outgoing
// connection); gatewayd then stops with "address already in use" and
// another port is tried.
func (e *env) startGatewayd(extra ...string) (time.Time, error) {
	if e.o.target != "" {
		return time.Now(), nil
	}
	for attempt := 1; ; attempt++ {
		started, inUse, err := e.startGatewaydOnce(extra)
		if !inUse || attempt == 5 {
			return started, err
		}
	}
}

func (e *env) startGatewaydOnce(extra []string) (started time.Time, inUse bool, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return time.Time{}, false, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	e.api = fmt.Sprintf("http://127.0.0.1:%d/api", port)
	cmd := exec.Command(e.o.gatewayd, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + e.dbURL, "ENCRYPTION_KEY=" + e.key,
		"API_HOST=127.0.0.1", "API_PORT=" + strconv.Itoa(port), "CHAOS_ENABLED=true",
		"AUTH_ENABLED=" + strconv.FormatBool(!e.o.noAuth)}, extra...)
	if e.o.dbMaxConns > 0 {
		cmd.Env = append(cmd.Env, "DATABASE_MAX_CONNS="+strconv.Itoa(e.o.dbMaxConns))
	}
	cmd.Env = append(cmd.Env, e.o.gatewaydEnv...)
	// gatewayd logs at its default level, as in production, to a file.
	if e.logFile == nil {
		if e.logFile, err = os.CreateTemp("", "gwload-gatewayd-*.log"); err != nil {
			return time.Time{}, false, err
		}
	}
	logStart, err := e.logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return time.Time{}, false, err
	}
	// This run's lines only: the file also holds earlier runs'.
	logged := func() string {
		b, _ := io.ReadAll(io.NewSectionReader(e.logFile, logStart, math.MaxInt64-logStart))
		return string(b)
	}
	cmd.Stdout, cmd.Stderr = e.logFile, e.logFile
	started = time.Now()
	if err := cmd.Start(); err != nil {
		return time.Time{}, false, fmt.Errorf("start %s: %w", e.o.gatewayd, err)
	}
	e.proc, e.exited = cmd, make(chan error, 1)
	go func() { e.exited <- cmd.Wait() }()
	// Only after gatewayd's own "API listening" line is the port its:
	// before, whoever else holds it would answer (another gatewayd, too).
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for own := false; time.Now().Before(deadline); {
		own = own || logging.Listening(logged(), addr)
		if own {
			if resp, err := e.client.Get(e.api + "/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return started, false, nil
				}
			}
		}
		select {
		case err := <-e.exited:
			e.proc = nil
			return time.Time{}, strings.Contains(logged(), "address already in use"),
				fmt.Errorf("gatewayd exited: %v (log: %s)", err, e.logFile.Name())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return time.Time{}, false, errors.New("gatewayd did not become ready within 60s")
}

func (e *env) stopGatewayd() {
	if e.proc == nil {
		return
	}
	_ = e.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(20 * time.Second):
		_ = e.proc.Process.Kill()
		<-e.exited
	}
	e.proc = nil
}

// rssKiB is gatewayd's resident set size.
func (e *env) rssKiB() int { return procStatus(e.pid(), "VmRSS:") }

// pid is gatewayd's process id, or gwload's own when gatewayd runs in it.
func (e *env) pid() int {
	if e.proc != nil {
		return e.proc.Process.Pid
	}
	return os.Getpid()
}

func procStatus(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	return 0
}

type health struct {
	Gateways struct{ Total, Authenticated int }
}

func (e *env) counts() (health, error) {
	var h health
	err := e.call("GET", "/health", nil, 200, &h)
	return h, err
}

// waitAuthenticated polls until at least n gateways are authenticated.
func (e *env) waitAuthenticated(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := health{}
	for time.Now().Before(deadline) {
		h, err := e.counts()
		if err == nil {
			last = h
			if h.Gateways.Authenticated >= n {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("only %d of %d gateways authenticated after %s", last.Gateways.Authenticated, n, timeout)
}

// call sends one request and decodes the answer into out (if not nil).
func (e *env) call(method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.api+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &statusError{method: method, path: path, code: resp.StatusCode, body: raw}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// statusError is an answer with another status than the one wanted:
// some callers tell a refusal the contract gives from a failure.
type statusError struct {
	method, path string
	code         int
	body         []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.code, e.body)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var (
	goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)
	heapAlloc      = regexp.MustCompile(`# HeapAlloc = (\d+)`)
)

// debugStats reads gatewayd's goroutine count and its live heap after a
// forced collection from the pprof endpoints on its DEBUG_ADDR.
func (e *env) debugStats(addr string) (goroutines int, live uint64, err error) {
	get := func(path string, re *regexp.Regexp) (string, error) {
		resp, err := e.client.Get("http://" + addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		m := re.FindSubmatch(body)
		if m == nil {
			return "", fmt.Errorf("%s: no %s in the answer", path, re)
		}
		return string(m[1]), nil
	}
	g, err := get("/debug/pprof/goroutine?debug=1", goroutineTotal)
	if err != nil {
		return 0, 0, err
	}
	h, err := get("/debug/pprof/heap?gc=1&debug=1", heapAlloc)
	if err != nil {
		return 0, 0, err
	}
	goroutines, _ = strconv.Atoi(g)
	live, _ = strconv.ParseUint(h, 10, 64)
	return goroutines, live, nil
}

// idTag is a short tag that makes this run's gateway ids unique: the
// key's first six characters, in the URL-safe base64 alphabet, because
// gateway_id allows only ASCII letters, digits and - _ . : (a standard
// base64 '+' or '/' made one run in six fail every create).
func (e *env) idTag() string {
	return strings.NewReplacer("+", "-", "/", "_").Replace(e.key[:6])
}
