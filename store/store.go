// Package store owns gatewayd's SQL: organizations, factories and gateways
// in PostgreSQL (pgx), soft deletes and their cascades, and the sealing of
// gateway passwords. It knows nothing of HTTP or actors; the domain's
// sentinel errors (gatewayd.ErrNotFound, …) are the only errors callers
// need to tell apart.
package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	// id, the listers among concurrent lists (coalescer).
	factories *coalescer[uuid.UUID, gatewayd.Factory]
	gateways  *coalescer[uuid.UUID, gatewayd.Gateway]
	// recentFactories and recentGateways keep what those GETs read, when
	// New was given ReadsKeptFor (recent.go); nil keeps nothing.
	recentFactories *recent[gatewayd.Factory]
	recentGateways  *recent[gatewayd.Gateway]
	orgList         *lister[gatewayd.Organization]
	factoryList     *lister[gatewayd.Factory]
	equipmentList   *lister[gatewayd.Equipment]
	gatewayList     *lister[gatewayd.Gateway]
	// Concurrent writes of a kind share statements too (writes.go).
	factoryUpdates *coalescer[*factoryUpdate, gatewayd.Factory]
	factoryCreates *coalescer[*factoryCreate, gatewayd.Factory]
	gatewayCreates *coalescer[*gatewayCreate, gatewayd.Gateway]
}

// Option changes how New makes a Store.
type Option func(*Store)

// ReadsKeptFor keeps the factories and gateways read by id for ttl
// (READ_CACHE_TTL; recent.go says why it is safe), so that GETs of the
// same rows are answered without a round trip. Zero keeps nothing, the
// default: a store shared with code that writes behind it (tests, tools)
// must not keep reads.
func ReadsKeptFor(ttl time.Duration) Option {
	return func(s *Store) {
		s.recentFactories = newRecent(ttl, factorySize)
		s.recentGateways = newRecent(ttl, gatewaySize)
	}
}

// New wraps an open pool. The sealer encrypts and decrypts passwords.
func New(pool *pgxpool.Pool, sealer *Sealer, opts ...Option) *Store {
	s := &Store{pool: pool, sealer: sealer}
	for _, o := range opts {
		o(s)
	}
	s.factories = byID(pool, "factories", factoryColumns, scanFactory, func(f *gatewayd.Factory) uuid.UUID { return f.ID })
	s.gateways = byID(pool, "gateways", gatewayColumns, scanGateway, func(g *gatewayd.Gateway) uuid.UUID { return g.ID })
	s.orgList = newLister(pool, "organizations", "", orgColumns, scanOrganization)
	s.factoryList = newLister(pool, "factories", "organization_id", factoryColumns, scanFactory)
	s.equipmentList = newLister(pool, "equipment", "factory_id", equipmentColumns, scanEquipment)
	s.gatewayList = newLister(pool, "gateways", "factory_id", gatewayColumns, scanGateway)
	s.factoryUpdates = factoryUpdates(pool)
	s.factoryCreates = factoryCreates(pool)
	s.gatewayCreates = gatewayCreates(pool)
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

// Schema errors: the database's migrations are not this binary's.
var (
	ErrSchemaBehind = errors.New("the database is not migrated to this gatewayd's schema")
	ErrSchemaAhead  = errors.New("the database was migrated by a newer gatewayd")
)

// Prepare readies the schema for a command: a database migrated further
// than this binary knows is refused (tern's own words for it were "current
// version 7 is outside the valid versions of 0 to 6", and without
// MIGRATE_ON_START nothing was said at all); pending migrations are
// applied when migrate is set, and refused otherwise (they failed later
// as 'relation "readings" does not exist').
func Prepare(ctx context.Context, pool *pgxpool.Pool, migrate bool) (version int32, err error) {
	at, err := schemaVersion(ctx, pool)
	if err != nil {
		return 0, err
	}
	known, err := MigrationCount()
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	switch {
	case at > known:
		return 0, fmt.Errorf("%w: it is at migration %d, this binary knows %d", ErrSchemaAhead, at, known)
	case migrate:
		return Migrate(ctx, pool)
	case at < known:
		return 0, fmt.Errorf("%w: it is at migration %d of %d", ErrSchemaBehind, at, known)
	}
	return int32(at), nil
}

// schemaVersion is the migration the database is at; 0 when it was never
// migrated.
func schemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var v int32
	err := pool.QueryRow(ctx, `SELECT version FROM `+VersionTable).Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01", errors.Is(err, pgx.ErrNoRows): // undefined_table
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("schema version: %w", classify(err))
	}
	return int(v), nil
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
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
			return fmt.Errorf("%w: %w: %v", gatewayd.ErrUnavailable, ErrNoDatabase, err)
		}
		if why := ConnectRefusal(err); why != nil {
			return fmt.Errorf("%w: %w: %v", gatewayd.ErrUnavailable, why, err)
		}
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
		case pgErr.Code == "25006": // read_only_sql_transaction
			return fmt.Errorf("%w: %w: %s (SQLSTATE %s)", gatewayd.ErrUnavailable, ErrReadOnly, pgErr.Message, pgErr.Code)
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

// ErrNoDatabase: the server answers but the database named in the URL does
// not exist. It comes wrapped with gatewayd.ErrUnavailable (the request
// cannot be served now); a command's hint tells the two apart by it.
var ErrNoDatabase = errors.New("the database does not exist")

// ErrLoginRefused and ErrTLS: a server answered and refused the
// connection, for its login (SQLSTATE class 28: no such role, a wrong
// password, pg_hba.conf) or over TLS (a certificate sslmode does not
// accept, or no TLS where sslmode requires it). Wrapped with
// gatewayd.ErrUnavailable; a command's hint tells them from a server that
// does not answer, which starting PostgreSQL would fix (found by an audit,
// helper 4).
var (
	ErrLoginRefused = errors.New("the login was refused")
	ErrTLS          = errors.New("the TLS connection failed")
)

// ConnectRefusal is ErrLoginRefused or ErrTLS when err, of a connection
// attempt, is a server's refusal of that kind, else nil.
func ConnectRefusal(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
		return ErrLoginRefused
	}
	var verify *tls.CertificateVerificationError
	var host x509.HostnameError
	var authority x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	if errors.As(err, &verify) || errors.As(err, &host) || errors.As(err, &authority) || errors.As(err, &invalid) ||
		errors.As(err, &record) || strings.Contains(err.Error(), "server refused TLS connection") {
		return ErrTLS
	}
	return nil
}

// ErrReadOnly: the database refused a write as read-only (a standby, or
// default_transaction_read_only). Wrapped with gatewayd.ErrUnavailable.
var ErrReadOnly = errors.New("the database is read-only")

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

// qualify prefixes each of a comma-separated column list with alias, for
// a statement that joins the table.
func qualify(alias, columns string) string {
	return alias + "." + strings.ReplaceAll(columns, ", ", ", "+alias+".")
}

// collectIDs collects the uuid column of rows.
func collectIDs(rows pgx.Rows) ([]uuid.UUID, error) {
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}
