// Package testdb gives test packages throwaway PostgreSQL databases: one
// migrated template per test package, and a clean copy of it per test, so
// packages and tests run in parallel without seeing each other's rows.
//
// Copies are reused: when a test ends its database is emptied back to the
// template's rows and handed to the next test of the package, and only
// Run drops them. Dropping a database per test was the suite's largest
// stall: PostgreSQL 15 runs an immediate checkpoint on every DROP
// DATABASE, which flushed every other test's writes to disk while they
// waited.
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
	"sync"
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
	// reset empties a used copy and puts the template's own rows (what
	// the migrations seed) back, in one statement batch.
	reset string

	mu     sync.Mutex
	free   []string // copies reset and ready for the next test
	copies []string // every copy made, dropped by Run
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
	t.mu.Lock()
	names := append([]string{t.name}, t.copies...)
	t.mu.Unlock()
	for _, name := range names {
		if err := t.drop(name); err != nil {
			fmt.Fprintln(os.Stderr, "testdb:", err)
		}
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
	if t.reset, err = resetScript(ctx, pool); err != nil {
		_ = t.drop(t.name)
		return nil, err
	}
	return t, nil
}

// resetScript builds the statements that bring a used copy back to the
// template: every table but tern's version table emptied, every sequence
// restarted, then the template's rows of each table that has any,
// inserted from JSON captured now (tables in creation order, so a seeded
// row's references exist).
//
// Tables are emptied by DELETE, referencing tables first, not by one
// TRUNCATE: a TRUNCATE of the eight tables cost PostgreSQL ~85 ms of CPU
// even when they were empty (new files for every table and index, every
// cache invalidated), a DELETE of a test's few rows 1–4 ms, and the suite
// resets a copy a few hundred times. Foreign keys that form a cycle (none
// today) fall back to TRUNCATE.
func resetScript(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	rows, err := pool.Query(ctx, `SELECT c.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND c.relname <> 'schema_version'
		ORDER BY c.oid`)
	if err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	if len(tables) == 0 {
		return "", errors.New("the migrated template has no tables")
	}
	rows, err = pool.Query(ctx, `SELECT conrelid::int8, confrelid::int8 FROM pg_constraint
		WHERE contype = 'f' AND conrelid <> confrelid`)
	if err != nil {
		return "", fmt.Errorf("list foreign keys: %w", err)
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[reference])
	if err != nil {
		return "", fmt.Errorf("list foreign keys: %w", err)
	}
	rows, err = pool.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)
		FROM pg_sequences WHERE schemaname = 'public'`)
	if err != nil {
		return "", fmt.Errorf("list sequences: %w", err)
	}
	sequences, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("list sequences: %w", err)
	}

	var b strings.Builder
	if order, ok := deleteOrder(tables, refs); ok {
		// The lock waits out any transaction of a session the reset has
		// just told to end (pg_terminate_backend does not wait), so no
		// row it commits lands after the DELETEs have looked: what
		// TRUNCATE's own lock did.
		fmt.Fprintf(&b, "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE;\n", strings.Join(order, ", "))
		for _, tbl := range order {
			fmt.Fprintf(&b, "DELETE FROM %s;\n", tbl)
		}
		for _, seq := range sequences {
			fmt.Fprintf(&b, "ALTER SEQUENCE %s RESTART;\n", seq)
		}
	} else {
		names := make([]string, len(tables))
		for i, tbl := range tables {
			names[i] = tbl.Name
		}
		b.WriteString("TRUNCATE " + strings.Join(names, ", ") + " RESTART IDENTITY CASCADE;\n")
	}
	for _, tbl := range tables {
		var seed *string
		if err := pool.QueryRow(ctx, `SELECT json_agg(t)::text FROM `+tbl.Name+` t`).Scan(&seed); err != nil {
			return "", fmt.Errorf("read seed rows of %s: %w", tbl.Name, err)
		}
		if seed != nil {
			lit := "'" + strings.ReplaceAll(*seed, "'", "''") + "'"
			fmt.Fprintf(&b, "INSERT INTO %s SELECT * FROM json_populate_recordset(NULL::%s, %s);\n", tbl.Name, tbl.Name, lit)
		}
	}
	return b.String(), nil
}

// table is one of the template's tables: its oid and quoted name.
type table struct {
	OID  int64
	Name string
}

// reference is a foreign key of table From to table To.
type reference struct{ From, To int64 }

// deleteOrder orders tables so that every table comes before the tables
// it references: deleting in that order never trips a foreign key. It
// reports false when the references form a cycle.
func deleteOrder(tables []table, refs []reference) ([]string, bool) {
	known := map[int64]bool{}
	for _, tbl := range tables {
		known[tbl.OID] = true
	}
	referencedBy := map[int64]int{} // how many tables not yet emptied point at each
	for _, r := range refs {
		if known[r.From] && known[r.To] {
			referencedBy[r.To]++
		}
	}
	done := map[int64]bool{}
	var order []string
	for len(order) < len(tables) {
		progress := false
		for i := len(tables) - 1; i >= 0; i-- { // newest first: usually already in order
			tbl := tables[i]
			if done[tbl.OID] || referencedBy[tbl.OID] > 0 {
				continue
			}
			done[tbl.OID] = true
			order = append(order, tbl.Name)
			for _, r := range refs {
				if r.From == tbl.OID && known[r.To] {
					referencedBy[r.To]--
				}
			}
			progress = true
		}
		if !progress {
			return nil, false
		}
	}
	return order, true
}

// New returns the URL of a clean migrated database (a reused copy, reset,
// or a new one), handed back for reuse when the test ends.
func (t *Template) New(tb testing.TB) string {
	tb.Helper()
	t.mu.Lock()
	var name string
	if n := len(t.free); n > 0 {
		name, t.free = t.free[n-1], t.free[:n-1]
	}
	t.mu.Unlock()
	if name == "" {
		name = t.name + "_" + randHex()
		if err := t.admin(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, t.name)); err != nil {
			tb.Fatalf("testdb: %v", err)
		}
		t.mu.Lock()
		t.copies = append(t.copies, name)
		t.mu.Unlock()
	}
	tb.Cleanup(func() { t.release(tb, name) })
	return t.url(name)
}

// release resets a copy a test has finished with and makes it free; a copy
// that cannot be reset is dropped instead, so no test ever sees another's
// rows.
func (t *Template) release(tb testing.TB, name string) {
	err := t.clean(name)
	if err == nil {
		t.mu.Lock()
		t.free = append(t.free, name)
		t.mu.Unlock()
		return
	}
	tb.Logf("testdb: %v; dropping %s", err, name)
	if err := t.drop(name); err != nil {
		tb.Errorf("testdb: %v", err)
	}
}

// clean ends every session the test left on the copy (a process it
// killed, a pool it leaked) and resets it.
func (t *Template) clean(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, t.url(name))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		return fmt.Errorf("end sessions on %s: %w", name, err)
	}
	// Simple protocol: the script is several statements, run as one
	// implicit transaction.
	if _, err := conn.Exec(ctx, t.reset, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("reset %s: %w", name, err)
	}
	return nil
}

// Pool returns a pool on a clean database (New), closed at cleanup before
// the database is handed back.
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
