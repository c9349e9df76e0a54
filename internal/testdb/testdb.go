// Package testdb gives test packages throwaway PostgreSQL databases: one
// migrated template, and a clean copy of it per test, so packages and
// tests run in parallel without seeing each other's rows.
//
// Databases outlive the test processes. The template is named for the
// migrations it was built from (gwt_<hash>_t) and built once per server;
// its copies (gwt_<hash>_<n>) are claimed by one process at a time with an
// advisory lock, emptied back to the template's rows when claimed and
// again when a test is done with one, and kept for the next test and the
// next run. Creating and dropping them per run was most of what the suite
// cost PostgreSQL: a CREATE DATABASE writes the whole template through the
// WAL (~0.4 CPU-s), and PostgreSQL 15 runs an immediate checkpoint on
// every DROP DATABASE, which flushed every other test's writes to disk
// while they waited (44 of each per `make test`; requests of running tests
// timed out behind them on a loaded machine). When the migrations change,
// the first run builds a new template and drops the databases of older
// ones that nobody holds. `go run ./cmd/ensuredb -drop-test-databases`
// removes them all.
package testdb

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/migrations"
	"github.com/ctcgw/gatewayd/store"
)

// format is part of the databases' names: change it when what a copy holds
// or how it is reset changes without a migration changing.
const format = "3" // 3: the reset restores tern's version table too

// maxCopyBytes bounds a kept copy: one that grew past it (dead rows pile up
// on a server without autovacuum) is dropped and made anew when claimed.
const maxCopyBytes = 256 << 20

// Prefix starts the name of every database this package keeps.
const Prefix = "gwt_"

// Template is a migrated database that tests clone.
type Template struct {
	base   *url.URL
	name   string // the template database
	prefix string // its copies are prefix + "_" + n, n ≥ 1
	class  int32  // advisory lock class of this template's databases
	// reset empties a used copy and puts the template's own rows (what
	// the migrations seed) back, in one statement batch.
	reset string

	lockMu sync.Mutex
	locks  *pgx.Conn // holds this process's claims: closing it frees them all

	mu   sync.Mutex
	free []string // copies reset and ready for the next test
	next int      // the next copy number to try to claim
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

// Run opens the template (building it if this server has none for these
// migrations), runs the tests and frees this process's copies for the
// next. Use it from TestMain: os.Exit(testdb.Run(m, &tmpl)).
func Run(m *testing.M, tmpl **Template) int {
	t, err := Open(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		return 1
	}
	*tmpl = t
	code := m.Run()
	t.close()
	return code
}

// key is the hash that names the template: the migrations' files and the
// format.
func key() (hash string, class int32, err error) {
	h := sha256.New()
	h.Write([]byte(format))
	err = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		fmt.Fprintf(h, "\x00%s\x00%d\x00", path, len(b))
		h.Write(b)
		return err
	})
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:6]), classOf(sum[:4]), err
}

func classOf(b []byte) int32 { return int32(binary.BigEndian.Uint32(b)) }

// Open connects to the server at BaseURL and opens the template for these
// migrations, building it if the server has none. Most tests use Run.
func Open(ctx context.Context) (*Template, error) {
	raw, err := url.Parse(BaseURL())
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	hash, class, err := key()
	if err != nil {
		return nil, fmt.Errorf("hash the migrations: %w", err)
	}
	base := config.OneConnection(*raw) // its copies' URLs serve single connections too
	t := &Template{base: base, name: Prefix + hash + "_t", prefix: Prefix + hash, class: class, next: 1}
	if t.locks, err = pgx.Connect(ctx, t.url("postgres")); err != nil {
		return nil, fmt.Errorf("connect to maintenance database: %w", err)
	}
	// Held shared while the process lives, from before it looks for the
	// template: the template is in use, and a checkout with other
	// migrations must not drop it (dropStale).
	if _, err := t.locks.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2)`, t.class, inUse); err != nil {
		t.close()
		return nil, fmt.Errorf("mark the template in use: %w", err)
	}
	if err := t.open(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// Advisory lock numbers of a template's class besides its copies' (≥ 1):
// building is held exclusively while one process builds or reads the
// template, inUse shared by every process that uses it.
const (
	building = 0
	inUse    = -1
)

// open reads the template's reset script, or builds the template, under
// its class's building lock (one process builds it, the others wait and
// read).
func (t *Template) open(ctx context.Context) error {
	if _, err := t.locks.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, t.class, building); err != nil {
		return fmt.Errorf("lock the template: %w", err)
	}
	defer t.unlock(t.class, building)
	// The reset script is kept as the template's comment, so that no
	// process connects to the template once it is built: CREATE DATABASE
	// refuses a template with sessions on it.
	err := t.locks.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE datname = $1`, t.name).Scan(&t.reset)
	if err == nil && t.reset != "" {
		return nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look for the template: %w", err)
	}
	t.dropStale(ctx, t.drop)
	// A template without its script is one whose build was cut short.
	if err := t.drop(t.name); err != nil {
		return err
	}
	if err := t.admin(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE template0`, t.name)); err != nil {
		return err
	}
	pool, err := store.Connect(ctx, t.url(t.name), 10*time.Second, 0)
	if err != nil {
		return err
	}
	defer pool.Close() // before the building lock is let go: no session stays on the template
	if _, err := store.Migrate(ctx, pool); err != nil {
		return err
	}
	if t.reset, err = resetScript(ctx, pool); err != nil {
		return err
	}
	return t.admin(fmt.Sprintf(`COMMENT ON DATABASE %s IS %s`, t.name, literal(t.reset)))
}

var keptName = regexp.MustCompile(`^` + Prefix + `([0-9a-f]{12})_(t|\d+)$`)

// dropStale drops the databases of templates built from other migrations
// that no process holds: a database under a lock is in use by a test
// process of another checkout, and is left alone. drop does the dropping
// (the test watches instead: a DROP DATABASE costs every running test a
// checkpoint).
func (t *Template) dropStale(ctx context.Context, drop func(name string) error) {
	like := func(prefix string) string { return strings.ReplaceAll(prefix, "_", `\_`) + "%" }
	rows, err := t.locks.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE $2`,
		like(Prefix), like(t.prefix+"_"))
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		m := keptName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		b, _ := hex.DecodeString(m[1])
		class, n := classOf(b[:4]), inUse // a template: unused when no process holds inUse
		if m[2] != "t" {
			n, _ = strconv.Atoi(m[2])
		}
		if ok, _ := t.tryLock(ctx, class, n); ok {
			_ = drop(name)
			t.unlock(class, n)
		}
	}
}

func (t *Template) tryLock(ctx context.Context, class int32, n int) (bool, error) {
	t.lockMu.Lock()
	defer t.lockMu.Unlock()
	var ok bool
	err := t.locks.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, class, n).Scan(&ok)
	return ok, err
}

func (t *Template) unlock(class int32, n int) {
	t.lockMu.Lock()
	defer t.lockMu.Unlock()
	_, _ = t.locks.Exec(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, class, n)
}

// close ends the session that holds this process's claims.
func (t *Template) close() {
	t.lockMu.Lock()
	defer t.lockMu.Unlock()
	if t.locks != nil {
		_ = t.locks.Close(context.Background())
		t.locks = nil
	}
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// resetScript builds the statements that bring a used copy back to the
// template: every table emptied (tern's version table too: a test of
// schema checks moves its version), every sequence restarted, then the
// template's rows of each table that has any,
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
	rows, err := pool.Query(ctx, `SELECT c.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relname::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'
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
	// Tables a test made (gwload's pgbench tables, say) go first: a copy
	// outlives its test, and the next one must find the template's shape.
	known := make([]string, len(tables))
	for i, tbl := range tables {
		known[i] = literal(tbl.Relname)
	}
	fmt.Fprintf(&b, `DO $$DECLARE r record; BEGIN
FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public' AND c.relname NOT IN ('schema_version', %s)
LOOP EXECUTE format('DROP TABLE IF EXISTS public.%%I CASCADE', r.relname); END LOOP; END$$;
`, strings.Join(known, ", "))
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
	OID     int64
	Name    string
	Relname string // unquoted
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

// New returns the URL of a clean migrated database (a copy this process
// already holds, or one it claims), handed back for reuse when the test
// ends.
func (t *Template) New(tb testing.TB) string {
	tb.Helper()
	t.mu.Lock()
	var name string
	if n := len(t.free); n > 0 {
		name, t.free = t.free[n-1], t.free[:n-1]
	}
	t.mu.Unlock()
	if name == "" {
		var err error
		if name, err = t.claim(context.Background()); err != nil {
			tb.Fatalf("testdb: %v", err)
		}
	}
	tb.Cleanup(func() { t.release(tb, name) })
	return t.url(name)
}

// claim takes the first copy number no process holds.
func (t *Template) claim(ctx context.Context) (string, error) {
	for {
		t.mu.Lock()
		n := t.next
		t.next++
		t.mu.Unlock()
		name, ok, err := t.take(ctx, n)
		if ok || err != nil {
			return name, err
		}
	}
}

// take claims copy n unless another process holds it: an existing copy is
// reset (a process that died may have left anything in it), a missing or
// swollen one is made from the template.
func (t *Template) take(ctx context.Context, n int) (name string, ok bool, err error) {
	if ok, err := t.tryLock(ctx, t.class, n); err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("claim copy %d: %w", n, err)
		}
		return "", false, err
	}
	name = t.prefix + "_" + strconv.Itoa(n)
	var size int64
	t.lockMu.Lock()
	err = t.locks.QueryRow(ctx, `SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1`, name).Scan(&size)
	t.lockMu.Unlock()
	switch {
	case err == nil && size <= maxCopyBytes && t.clean(name) == nil:
		return name, true, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		t.unlock(t.class, n)
		return "", false, fmt.Errorf("look for copy %s: %w", name, err)
	}
	if err == nil { // too large, or it would not reset
		if err := t.drop(name); err != nil {
			t.unlock(t.class, n)
			return "", false, err
		}
	}
	if err := t.admin(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, t.name)); err != nil {
		t.unlock(t.class, n)
		return "", false, err
	}
	return name, true, nil
}

// release resets a copy a test has finished with and makes it free; a copy
// that cannot be reset is dropped instead (and its number freed), so no
// test ever sees another's rows.
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
	if n, err := strconv.Atoi(strings.TrimPrefix(name, t.prefix+"_")); err == nil {
		t.unlock(t.class, n)
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
