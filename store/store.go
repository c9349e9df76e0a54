// Package store owns gatewayd's SQL: organizations, factories and gateways
// in PostgreSQL (pgx), soft deletes and their cascades, and the sealing of
// gateway passwords. It knows nothing of HTTP or actors; the domain's
// sentinel errors (gatewayd.ErrNotFound, …) are the only errors callers
// need to tell apart.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	neturl "net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/jackc/tern/v2/migrate"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/migrations"
)

// A note on `rows, _ := pool.Query(…)` throughout this package: pgx
// reports a failed Query again from rows.Err(), which pgx.CollectRows and
// CollectExactlyOneRow return, so the first error value adds nothing.

// VersionTable is tern's version table, shared with the tern CLI.
const VersionTable = "public.schema_version"

// Store is the data layer. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	sealer *Sealer
	// factories and gateways share statements among concurrent GETs by
	// id, totals among concurrent lists (coalescer).
	factories *coalescer[uuid.UUID, gatewayd.Factory]
	gateways  *coalescer[uuid.UUID, gatewayd.Gateway]
	totals    map[string]*coalescer[listFilter, int] // by table
}

// New wraps an open pool. The sealer encrypts and decrypts passwords.
func New(pool *pgxpool.Pool, sealer *Sealer) *Store {
	s := &Store{pool: pool, sealer: sealer}
	s.factories = byID(pool, "factories", factoryColumns, scanFactory, func(f *gatewayd.Factory) uuid.UUID { return f.ID })
	s.gateways = byID(pool, "gateways", gatewayColumns, scanGateway, func(g *gatewayd.Gateway) uuid.UUID { return g.ID })
	s.totals = map[string]*coalescer[listFilter, int]{}
	for _, table := range []string{"organizations", "factories", "equipment", "gateways"} {
		s.totals[table] = &coalescer[listFilter, int]{one: s.total, many: s.totalsOf}
	}
	return s
}

// Connect opens a pool and checks that the database answers. The pool
// fails fast: a dial that hangs is cut off after connectTimeout. maxConns
// (DATABASE_MAX_CONNS) sizes the pool when it is above zero and the URL
// has no pool_max_conns; a pool_max_conns in the URL wins.
func Connect(ctx context.Context, url string, connectTimeout time.Duration, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL; say only what is wrong.
		return nil, errors.New("connect: DATABASE_URL cannot be parsed")
	}
	if maxConns > 0 && !hasPoolMaxConns(url) {
		cfg.MaxConns = int32(min(maxConns, math.MaxInt32))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerUUID(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", classify(err))
	}
	return pool, nil
}

// hasPoolMaxConns reports whether a connection URL sets pool_max_conns.
func hasPoolMaxConns(raw string) bool {
	u, err := neturl.Parse(raw)
	return err == nil && u.Query().Has("pool_max_conns")
}

// Migrate applies every pending migration and returns the version reached.
// Concurrent migrators serialise on tern's advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (int32, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", classify(err))
	}
	defer conn.Release()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), VersionTable)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return 0, fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	v, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: version: %w", err)
	}
	return v, nil
}

// MigrationCount is the number of migrations embedded in the binary.
func MigrationCount() (int, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	return len(names), err
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return classify(err)
	}
	return nil
}

// Page selects a window of a list ordered by name, then id.
type Page struct {
	Limit  int
	Offset int
}

// classify turns a driver error into one of the domain's sentinels,
// keeping the driver's text for logs only. It decides by error type and
// SQLSTATE code, never by message text.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{gatewayd.ErrNotFound, gatewayd.ErrConflict, gatewayd.ErrInvalidReference,
		gatewayd.ErrInvalidInput, gatewayd.ErrUnavailable, ErrSeal} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return gatewayd.ErrNotFound
	}
	// A server error met while establishing a connection (the database is
	// closed to connections, starting up, out of slots, the login is
	// refused) is unavailability whatever its SQLSTATE: the ConnectError
	// wraps the PgError, so it is checked first.
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return fmt.Errorf("%w: %v", gatewayd.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch class := pgErr.Code[:min(2, len(pgErr.Code))]; {
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %s", gatewayd.ErrConflict, pgErr.ConstraintName)
		case pgErr.Code == "23503":
			return fmt.Errorf("%w: %s", gatewayd.ErrInvalidReference, pgErr.ConstraintName)
		case class == "22":
			return fmt.Errorf("%w: %s", gatewayd.ErrInvalidInput, pgErr.Message)
		case unavailableClasses[class], unavailableCodes[pgErr.Code]:
			return fmt.Errorf("%w: %s (SQLSTATE %s)", gatewayd.ErrUnavailable, pgErr.Message, pgErr.Code)
		}
		return fmt.Errorf("database: %s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &netErr) ||
		errors.Is(err, puddle.ErrClosedPool) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %v", gatewayd.ErrUnavailable, err)
	}
	return fmt.Errorf("database: %w", err)
}

// SQLSTATE classes and codes that mean "not now" rather than "never": the
// request may succeed once the database is back.
var (
	unavailableClasses = map[string]bool{
		"08": true, // connection exception
		"53": true, // insufficient resources (too many connections, disk full)
		"57": true, // operator intervention (shutdown, cannot connect now, statement cancelled)
		"58": true, // system error (I/O)
		"28": true, // invalid authorization (login refused)
		"3D": true, // the database does not exist (dropped or not yet created)
	}
	unavailableCodes = map[string]bool{
		"55000": true, // object not in prerequisite state (database closed to connections)
		"55006": true, // object in use
		"25006": true, // read-only transaction (a standby in recovery)
		"40001": true, // serialization failure
		"40P01": true, // deadlock detected
	}
)

// metadataOrEmpty stores an absent metadata as an empty object.
func metadataOrEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage(`{}`)
	}
	return m
}

// Opt is a patch field: Set says the caller gave it. For a nullable column,
// a set nil pointer clears the value.
type Opt[T any] struct {
	Set   bool
	Value T
}

// Some returns a set Opt.
func Some[T any](v T) Opt[T] { return Opt[T]{Set: true, Value: v} }

// listFilter is what a list counts: the live rows of table, or of them
// those whose parent column is id.
type listFilter struct {
	table  string
	parent string // "" for every live row
	id     uuid.UUID
}

// of narrows a list to one parent when id is set.
func (f listFilter) of(parent string, id *uuid.UUID) listFilter {
	if id != nil {
		f.parent, f.id = parent, *id
	}
	return f
}

func (f listFilter) where() (string, []any) {
	if f.parent == "" {
		return `deleted_at IS NULL`, nil
	}
	return `deleted_at IS NULL AND ` + f.parent + ` = $1`, []any{f.id}
}

func (f listFilter) countSQL() (string, []any) {
	where, args := f.where()
	return `SELECT count(*) FROM ` + f.table + ` WHERE ` + where, args
}

// total counts one list's rows.
func (s *Store) total(ctx context.Context, f listFilter) (int, error) {
	sql, args := f.countSQL()
	var n int
	err := s.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// totalsOf counts several lists' rows in one round trip: one statement per
// distinct list, pipelined.
func (s *Store) totalsOf(ctx context.Context, fs []listFilter) (func(listFilter) (int, error), error) {
	totals := make(map[listFilter]int, 1)
	b := &pgx.Batch{}
	for _, f := range fs {
		if _, ok := totals[f]; ok {
			continue
		}
		totals[f] = 0
		sql, args := f.countSQL()
		b.Queue(sql, args...).QueryRow(func(r pgx.Row) error {
			var n int
			err := r.Scan(&n)
			totals[f] = n
			return err
		})
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return func(f listFilter) (int, error) { return totals[f], nil }, nil
}

// listPage returns a page of a list and the list's total. The page is a
// deferred join: the window of ids is found on the (name, id) index
// (index-only once the table is vacuumed) and only the rows of the page
// are fetched, instead of offset+limit rows. The total is the costlier
// part (every row of the list is counted), so concurrent lists of the same
// rows share it (coalescer); a list alone sends its count and its page in
// one round trip.
func listPage[T any](ctx context.Context, s *Store, f listFilter, columns string, page Page,
	scan pgx.RowToFunc[T]) ([]T, int, error) {
	where, args := f.where()
	qualified := "t." + strings.ReplaceAll(columns, ", ", ", t.")
	n := len(args)
	pageSQL := fmt.Sprintf(`SELECT %s FROM (SELECT id, name FROM %s WHERE %s ORDER BY name, id LIMIT $%d OFFSET $%d) p
		JOIN %s t ON t.id = p.id ORDER BY p.name, p.id`, qualified, f.table, where, n+1, n+2, f.table)
	pageArgs := append(append([]any{}, args...), page.Limit, page.Offset)
	var items []T
	totals := s.totals[f.table]
	if w := totals.enter(ctx, f); w != nil {
		// Counts of this table are in flight: the page goes alone, and
		// the total comes from the next count, shared with the lists that
		// came meanwhile.
		rows, _ := s.pool.Query(ctx, pageSQL, pageArgs...)
		var err error
		items, err = pgx.CollectRows(rows, scan)
		// Waited for even after an error: this list may have to run the
		// count for the others.
		total, terr := totals.wait(w)
		if err = cmp.Or(err, terr); err != nil {
			return nil, 0, classify(err)
		}
		if items == nil {
			items = []T{}
		}
		return items, total, nil
	}
	defer totals.next()
	var total int
	b := &pgx.Batch{}
	countSQL, _ := f.countSQL()
	b.Queue(countSQL, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&total) })
	b.Queue(pageSQL, pageArgs...).Query(func(rows pgx.Rows) error {
		var err error
		items, err = pgx.CollectRows(rows, scan)
		return err
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, classify(err)
	}
	if items == nil {
		items = []T{}
	}
	return items, total, nil
}

// ids collects the uuid column of rows.
func collectIDs(rows pgx.Rows) ([]uuid.UUID, error) {
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}
