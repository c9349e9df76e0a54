// Package testdb gives test packages throwaway PostgreSQL databases: one
// migrated template per test package, and a fresh copy of it per test, so
// packages and tests run in parallel without seeing each other's rows.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/store"
)

// Template is a migrated database that tests clone.
type Template struct {
	base *url.URL
	name string
}

// BaseURL is the server the tests use.
func BaseURL() string {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return config.DefaultDatabaseURL
}

// Run creates the package's template, runs the tests and drops it. Use it
// from TestMain: os.Exit(testdb.Run(m, &tmpl)).
func Run(m *testing.M, tmpl **Template) int {
	t, err := newTemplate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		return 1
	}
	*tmpl = t
	code := m.Run()
	if err := t.drop(t.name); err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
	}
	return code
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]`)

func newTemplate() (*Template, error) {
	base, err := url.Parse(BaseURL())
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	t := &Template{base: base, name: "gwtest_" + unsafeChars.ReplaceAllString(strings.ToLower(pkg), "_") + "_" + randHex()}
	if err := t.admin(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE template0`, t.name)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := store.Connect(ctx, t.url(t.name), 10*time.Second, 0)
	if err != nil {
		_ = t.drop(t.name)
		return nil, err
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		_ = t.drop(t.name)
		return nil, err
	}
	return t, nil
}

// New returns the URL of a fresh migrated database, dropped when the test
// ends.
func (t *Template) New(tb testing.TB) string {
	tb.Helper()
	name := t.name + "_" + randHex()
	if err := t.admin(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, t.name)); err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	tb.Cleanup(func() {
		if err := t.drop(name); err != nil {
			tb.Errorf("testdb: %v", err)
		}
	})
	return t.url(name)
}

// Pool returns a pool on a fresh database, closed and dropped at cleanup.
func (t *Template) Pool(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	u := t.New(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Connect(ctx, u, 10*time.Second, 0)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	tb.Cleanup(pool.Close) // registered after the drop, so it runs first
	return pool, u
}

func (t *Template) url(db string) string {
	u := *t.base
	u.Path = "/" + db
	return u.String()
}

func (t *Template) drop(name string) error {
	return t.admin(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name))
}

// admin runs one statement on the server's maintenance database.
func (t *Template) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, t.url("postgres"))
	if err != nil {
		return fmt.Errorf("connect to maintenance database: %w", err)
	}
	defer conn.Close(ctx)
	// CREATE DATABASE ... TEMPLATE fails with object_in_use (55006) while
	// another clone of the same template is in progress; parallel tests
	// retry briefly.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || attempt >= 100 || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			break
		}
		time.Sleep(time.Duration(20+attempt*5) * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Fields(sql)[0]+" "+strings.Fields(sql)[1], err)
	}
	return nil
}

func randHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Exit is os.Exit, named here so TestMain reads as one line.
func Exit(code int) { os.Exit(code) }

// Close makes the database at url refuse new connections and ends every
// session on it, as an operator closing it for maintenance would; the
// returned function opens it again. Connections then fail with SQLSTATE
// 55000 ("database is not currently accepting connections").
func (t *Template) Close(tb testing.TB, dbURL string) (reopen func()) {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	lit := "'" + strings.TrimPrefix(u.Path, "/") + "'"
	if err := t.admin(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`); err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	if err := t.admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ` + lit + ` AND pid <> pg_backend_pid()`); err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	opened := false
	reopen = func() {
		if opened {
			return
		}
		opened = true
		if err := t.admin(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`); err != nil {
			tb.Errorf("testdb: %v", err)
		}
	}
	tb.Cleanup(reopen)
	return reopen
}
