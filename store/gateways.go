package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// NewGateway is what CreateGateway needs; Password is plaintext and is
// sealed before it reaches the database.
type NewGateway struct {
	// ID is the new gateway's id; a new one when zero. (The API chooses
	// it, to hold the gateway's order lock from before the insert.)
	ID              uuid.UUID
	FactoryID       uuid.UUID
	GatewayID       string
	Name            string
	URL             string
	Email           string
	Password        string
	Model           *string
	FirmwareVersion *string
	// DesiredState is CONNECTED when empty.
	DesiredState gatewayd.DesiredState
	Metadata     json.RawMessage
}

// GatewayPatch changes the set fields; a set nil Model or FirmwareVersion
// clears it.
type GatewayPatch struct {
	GatewayID       Opt[string]
	Name            Opt[string]
	URL             Opt[string]
	Email           Opt[string]
	Password        Opt[string]
	Model           Opt[*string]
	FirmwareVersion Opt[*string]
	DesiredState    Opt[gatewayd.DesiredState]
	Metadata        Opt[json.RawMessage]
}

// GatewayUpdate is the result of UpdateGateway.
type GatewayUpdate struct {
	Gateway gatewayd.Gateway
	// Target is the gateway as the runtime should now keep it.
	Target gatewayd.Target
	// Reconnect is true when url, email or password changed.
	Reconnect bool
	// Changed is false when the update changed nothing a client sees
	// (its updated_at did not move): nothing to announce.
	Changed bool
}

const gatewayColumns = `id, factory_id, gateway_id, name, url, email, model, firmware_version, last_seen_at, desired_state, metadata, created_at, updated_at`

// gatewaySize is what a gateway's variable fields hold, for recent.
func gatewaySize(g *gatewayd.Gateway) int {
	n := len(g.GatewayID) + len(g.Name) + len(g.URL) + len(g.Email) + len(g.DesiredState) + len(g.Metadata)
	for _, p := range []*string{g.Model, g.FirmwareVersion} {
		if p != nil {
			n += len(*p)
		}
	}
	return n
}

func scanGateway(row pgx.CollectableRow) (gatewayd.Gateway, error) {
	var g gatewayd.Gateway
	err := row.Scan(&g.ID, &g.FactoryID, &g.GatewayID, &g.Name, &g.URL, &g.Email, &g.Model, &g.FirmwareVersion,
		&g.LastSeenAt, &g.DesiredState, &g.Metadata, &g.CreatedAt, &g.UpdatedAt)
	return g, err
}

// CreateGateway seals the password and inserts the gateway under a
// non-deleted factory (else ErrInvalidReference). A gateway_id already used
// by a non-deleted gateway gives ErrConflict. Concurrent calls share
// statements (writes.go).
func (s *Store) CreateGateway(ctx context.Context, g NewGateway) (gatewayd.Gateway, error) {
	sealed, err := s.sealer.Seal(g.Password)
	if err != nil {
		return gatewayd.Gateway{}, fmt.Errorf("create gateway: %w", err)
	}
	id := g.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	out, err := s.gatewayCreates.get(ctx, &gatewayCreate{id: id, g: g, sealed: sealed})
	if err != nil {
		err = classify(err)
		if errors.Is(err, gatewayd.ErrNotFound) {
			err = fmt.Errorf("%w: factory_id", gatewayd.ErrInvalidReference)
		}
		return gatewayd.Gateway{}, fmt.Errorf("create gateway: %w", err)
	}
	return out, nil
}

// GetGateway returns a non-deleted gateway or ErrNotFound.
// Concurrent calls share statements (byID).
func (s *Store) GetGateway(ctx context.Context, id uuid.UUID) (gatewayd.Gateway, error) {
	g, err := s.recentGateways.get(ctx, id, s.gateways.get)
	if err != nil {
		return gatewayd.Gateway{}, fmt.Errorf("get gateway: %w", classify(err))
	}
	return g, nil
}

// KeptGateway answers a gateway from the rows GetGateway read lately
// (ReadsKeptFor), without the database; false when it has none in time.
func (s *Store) KeptGateway(id uuid.UUID) (gatewayd.Gateway, bool) {
	return s.recentGateways.peek(id)
}

// ListGateways returns a page, optionally of one factory.
func (s *Store) ListGateways(ctx context.Context, factoryID *uuid.UUID, page Page) ([]gatewayd.Gateway, int, error) {
	items, total, err := s.gatewayList.list(ctx, factoryID, page)
	if err != nil {
		return nil, 0, fmt.Errorf("list gateways: %w", err)
	}
	return items, total, nil
}

// ErrPasswordRequired: an update moves a gateway to another url or email
// without a password (API.md §4: the stored secret never follows a
// gateway to a new host or account).
var ErrPasswordRequired = errors.New("a password is required when url or email changes")

// UpdateGateway changes the set fields and says whether the connection
// settings (url, email, password) changed. A password equal to the current
// one is not sealed again and does not count as a change. A url or email
// other than the stored one needs a password (ErrPasswordRequired),
// checked against the row it writes over.
func (s *Store) UpdateGateway(ctx context.Context, id uuid.UUID, p GatewayPatch) (GatewayUpdate, error) {
	var out GatewayUpdate
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var cur gatewayd.Credentials
		var sealed, desired string
		var updated time.Time
		// FOR NO KEY UPDATE, the lock the UPDATE takes anyway: FOR UPDATE
		// also waits for every sensor write whose key check holds the
		// gateway (a discovery merge in the writer's batch).
		err := tx.QueryRow(ctx, `SELECT url, email, password_encrypted, desired_state, updated_at FROM gateways
			WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE`, id).Scan(&cur.URL, &cur.Email, &sealed, &desired, &updated)
		if err != nil {
			return err
		}
		password, openErr := s.sealer.Open(sealed)
		cur.Password, cur.Unreadable = password, openErr != nil
		next := cur
		if p.URL.Set {
			next.URL = p.URL.Value
		}
		if p.Email.Set {
			next.Email = p.Email.Value
		}
		// The API checks this against its own read first (to list it with
		// the body's other problems); here it holds against the locked
		// row. Checked only there, a PUT repeating the url it had read
		// could land after a concurrent one that moved the gateway with a
		// new host's password, and leave that password at the old host
		// (found by an audit, helper 4).
		if !p.Password.Set && (next.URL != cur.URL || next.Email != cur.Email) {
			return ErrPasswordRequired
		}
		// A password equal to the current one is not sealed again.
		if p.Password.Set && (cur.Unreadable || p.Password.Value != cur.Password) {
			if sealed, err = s.sealer.Seal(p.Password.Value); err != nil {
				return err
			}
			next.Password, next.Unreadable = p.Password.Value, false
		}
		out.Reconnect = next.Differs(cur)
		var meta json.RawMessage
		if p.Metadata.Set {
			meta = metadataOrEmpty(p.Metadata.Value)
		}
		rows, _ := tx.Query(ctx, `
			UPDATE gateways SET
				gateway_id         = CASE WHEN $2 THEN $3 ELSE gateway_id END,
				name               = CASE WHEN $4 THEN $5 ELSE name END,
				url                = $6,
				email              = $7,
				password_encrypted = $8,
				model              = CASE WHEN $9 THEN $10 ELSE model END,
				firmware_version   = CASE WHEN $11 THEN $12 ELSE firmware_version END,
				metadata           = CASE WHEN $13 THEN $14::jsonb ELSE metadata END,
				desired_state      = CASE WHEN $15 THEN $16 ELSE desired_state END,
				-- New credentials have been refused by nobody yet, and
				-- asking for the connection is a connect request; a
				-- desired_state as stored is none (API.md §4), and the
				-- runtime keeps the refusal then (found by an audit,
				-- helper 5).
				auth_failed_at     = CASE WHEN $17 THEN NULL ELSE auth_failed_at END,
				auth_failed_error  = CASE WHEN $17 THEN NULL ELSE auth_failed_error END
			WHERE id = $1
			RETURNING `+gatewayColumns,
			id, p.GatewayID.Set, p.GatewayID.Value, p.Name.Set, p.Name.Value, next.URL, next.Email, sealed,
			p.Model.Set, p.Model.Value, p.FirmwareVersion.Set, p.FirmwareVersion.Value, p.Metadata.Set, meta,
			p.DesiredState.Set, string(p.DesiredState.Value),
			out.Reconnect || (p.DesiredState.Set && p.DesiredState.Value == gatewayd.DesiredConnected &&
				desired != string(gatewayd.DesiredConnected)))
		out.Gateway, err = pgx.CollectExactlyOneRow(rows, scanGateway)
		if err != nil {
			return err
		}
		// The trigger keeps updated_at when no column a client sees
		// changed.
		out.Changed = !out.Gateway.UpdatedAt.Equal(updated)
		out.Target = out.Gateway.Target(next.Password)
		out.Target.Unreadable = next.Unreadable
		// The whole description, schedules too: without them the
		// runtime took a renamed gateway for one whose sensors had no
		// reading_interval and stopped every schedule until the next
		// reconciliation.
		ts := []gatewayd.Target{out.Target}
		if err := attachSchedules(ctx, tx, ts, &id); err != nil {
			return err
		}
		out.Target = ts[0]
		return nil
	})
	s.recentGateways.written(err, id)
	if err != nil {
		return GatewayUpdate{}, fmt.Errorf("update gateway: %w", classify(err))
	}
	return out, nil
}

// SetDesiredState stores what the operator wants of a gateway's
// connection and returns the gateway as the runtime should now keep it.
// It is written before the runtime acts, so a wish that cannot be stored
// changes nothing.
// It also says whether the stored desired_state changed (a client that
// shows the gateway has something to fetch again). The row is locked
// for one round trip only, the COMMIT's (storeDesired): the API
// serializes a gateway's connects, disconnects and PUTs (order.lock), and
// nothing else writes it. (Read under a row lock, in a transaction held
// across four round trips, a disconnect waited past its 5 s on a loaded
// machine.)
func (s *Store) SetDesiredState(ctx context.Context, id uuid.UUID, d gatewayd.DesiredState) (gatewayd.Target, bool, error) {
	// The gateway's reading schedules are read first: read after the
	// UPDATE, a failed read was answered 503 ("left as it was", API.md
	// §4) though the change was stored, and the runtime was never told
	// (found by an audit, helper 8). A sensor's new interval committed in
	// between is told the runtime after this, under the gateway's lock
	// (api/sensors.go).
	sched := []gatewayd.Target{{ID: id}}
	if err := attachSchedules(ctx, s.pool, sched, &id); err != nil {
		return gatewayd.Target{}, false, fmt.Errorf("set desired state: %w", classify(err))
	}
	t, was, err := s.storeDesired(ctx, id, d)
	s.recentGateways.written(err, id)
	if err != nil {
		return gatewayd.Target{}, false, fmt.Errorf("set desired state: %w", classify(err))
	}
	t.Schedules = sched[0].Schedules
	return t, was != string(d), nil
}

// storeDesired writes the desired state and returns the gateway as the
// runtime should keep it and the state it had. One statement: the old
// state (for "changed") read under the row lock the UPDATE takes anyway.
// A connect request also leaves AUTH_FAILED (API.md §4): the refusal kept
// for restarts goes with it.
//
// In a transaction whose COMMIT is sent only once the UPDATE has
// answered: as a statement of its own (an implicit transaction) it
// committed whenever it ran, so one cut off at the request's deadline
// while it waited for the row's lock (pgx closes its connection and
// sends a cancel request, which may never arrive) was stored after the
// 503 that said the connection was left as it was (found by an audit,
// helper 1). Now a cut connection's transaction ends uncommitted: the
// server reads its end, not a COMMIT. BEGIN goes with the UPDATE, so it
// costs one round trip more than before, the COMMIT's.
func (s *Store) storeDesired(ctx context.Context, id uuid.UUID, d gatewayd.DesiredState) (gatewayd.Target, string, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return gatewayd.Target{}, "", err
	}
	defer conn.Release() // one left in a transaction is closed, not pooled
	var b pgx.Batch
	b.Queue(`BEGIN`)
	b.Queue(`WITH old AS (
			SELECT desired_state AS was FROM gateways WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE)
		UPDATE gateways SET desired_state = $2,
			auth_failed_at = CASE WHEN $2 = 'CONNECTED' THEN NULL ELSE auth_failed_at END,
			auth_failed_error = CASE WHEN $2 = 'CONNECTED' THEN NULL ELSE auth_failed_error END
		FROM old WHERE id = $1
		RETURNING old.was, `+targetColumns, id, string(d))
	var was string
	br := conn.SendBatch(ctx, &b)
	_, err = br.Exec()
	var t gatewayd.Target
	if err == nil {
		rows, _ := br.Query()
		t, err = pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (gatewayd.Target, error) {
			return s.scanTarget(prefixed{r, &was})
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, err = conn.Exec(ctx, `COMMIT`)
		return t, was, err
	}
	if !conn.Conn().IsClosed() {
		_, _ = conn.Exec(ctx, `ROLLBACK`) // keeps the connection; if this fails too, Release closes it
	}
	return gatewayd.Target{}, "", err
}

// prefixed is a row whose first column is read into first, before the
// columns the scan function reads.
type prefixed struct {
	pgx.CollectableRow
	first any
}

func (r prefixed) Scan(dest ...any) error {
	return r.CollectableRow.Scan(append([]any{r.first}, dest...)...)
}

func desiredOrDefault(d gatewayd.DesiredState) string {
	if d == "" {
		return string(gatewayd.DesiredConnected)
	}
	return string(d)
}

// DeleteGateway soft-deletes one gateway and its sensors.
func (s *Store) DeleteGateway(ctx context.Context, id uuid.UUID) ([]gatewayd.GatewayRef, error) {
	var ref gatewayd.GatewayRef
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE: a sensor insert's key check waits for the deletion
		// (see orphanSweep).
		err := tx.QueryRow(ctx, `UPDATE gateways SET deleted_at = now() WHERE id IN (
				SELECT id FROM gateways WHERE id = $1 AND deleted_at IS NULL FOR UPDATE)
			RETURNING id, factory_id`, id).Scan(&ref.ID, &ref.FactoryID)
		if err != nil {
			return err
		}
		return deleteSensorsOf(ctx, tx, []uuid.UUID{id})
	})
	s.recentGateways.written(err, id)
	if err != nil {
		return nil, fmt.Errorf("delete gateway: %w", classify(err))
	}
	return []gatewayd.GatewayRef{ref}, nil
}

// Targets returns every non-deleted gateway as the runtime keeps it,
// passwords decrypted and reading schedules attached, for the runtime to
// converge to.
func (s *Store) Targets(ctx context.Context) ([]gatewayd.Target, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+targetColumns+` FROM gateways WHERE deleted_at IS NULL`)
	out, err := pgx.CollectRows(rows, s.scanTarget)
	if err != nil {
		return nil, fmt.Errorf("targets: %w", classify(err))
	}
	if err := attachSchedules(ctx, s.pool, out, nil); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return out, nil
}

// Target returns one non-deleted gateway as the runtime keeps it.
func (s *Store) Target(ctx context.Context, id uuid.UUID) (gatewayd.Target, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+targetColumns+` FROM gateways WHERE id = $1 AND deleted_at IS NULL`, id)
	t, err := pgx.CollectExactlyOneRow(rows, s.scanTarget)
	if err != nil {
		return gatewayd.Target{}, fmt.Errorf("target: %w", classify(err))
	}
	ts := []gatewayd.Target{t}
	if err := attachSchedules(ctx, s.pool, ts, &id); err != nil {
		return gatewayd.Target{}, fmt.Errorf("target: %w", err)
	}
	return ts[0], nil
}

// querier runs a query on a pool or in a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// attachSchedules adds the sensors with a reading_interval to their
// gateways' targets (of one gateway when only is set).
func attachSchedules(ctx context.Context, q querier, ts []gatewayd.Target, only *uuid.UUID) error {
	byID := make(map[uuid.UUID]*gatewayd.Target, len(ts))
	for i := range ts {
		byID[ts[i].ID] = &ts[i]
	}
	rows, _ := q.Query(ctx, `SELECT gateway_id, id, serial, reading_interval FROM sensors
		WHERE reading_interval IS NOT NULL AND deleted_at IS NULL AND ($1::uuid IS NULL OR gateway_id = $1)
		ORDER BY gateway_id, serial`, only)
	var gw uuid.UUID
	var sc gatewayd.Schedule
	_, err := pgx.ForEachRow(rows, []any{&gw, &sc.SensorID, &sc.Serial, &sc.Interval}, func() error {
		if t := byID[gw]; t != nil {
			t.Schedules = append(t.Schedules, sc)
		}
		return nil
	})
	return classify(err)
}

const targetColumns = `id, factory_id, gateway_id, name, desired_state, url, email, password_encrypted, last_seen_at`

func (s *Store) scanTarget(row pgx.CollectableRow) (gatewayd.Target, error) {
	var t gatewayd.Target
	var sealed string
	if err := row.Scan(&t.ID, &t.FactoryID, &t.GatewayID, &t.Name, &t.Desired, &t.URL, &t.Email, &sealed, &t.LastSeenAt); err != nil {
		return t, err
	}
	password, err := s.sealer.Open(sealed)
	t.Password, t.Unreadable = password, err != nil
	return t, nil
}

// MarkAuthFailures keeps, for many gateways in one statement, whether
// each refused gatewayd's login (the gateway's error, or "" when it gave
// none) or no longer does (nil), so that a restart of gatewayd does not
// try a refused login again. Deleted gateways are left alone.
func (s *Store) MarkAuthFailures(ctx context.Context, failures map[uuid.UUID]*string) error {
	if len(failures) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(failures))
	errs := make([]*string, 0, len(failures))
	for id, e := range failures {
		ids = append(ids, id)
		errs = append(errs, e)
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE gateways g SET auth_failed_at = CASE WHEN v.err IS NULL THEN NULL ELSE now() END, auth_failed_error = v.err
		FROM unnest($1::uuid[], $2::text[]) AS v(id, err)
		WHERE g.id = v.id AND g.deleted_at IS NULL`, ids, errs)
	if err != nil {
		return fmt.Errorf("mark auth failures: %w", classify(err))
	}
	return nil
}

// AuthFailures returns the gateways whose login was refused and not
// retried since, with the gateway's error ("" when it gave none).
func (s *Store) AuthFailures(ctx context.Context) (map[uuid.UUID]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, coalesce(auth_failed_error, '') FROM gateways
		WHERE auth_failed_at IS NOT NULL AND deleted_at IS NULL`)
	out := map[uuid.UUID]string{}
	var id uuid.UUID
	var e string
	_, err := pgx.ForEachRow(rows, []any{&id, &e}, func() error {
		out[id] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth failures: %w", classify(err))
	}
	return out, nil
}

// MarkSeen writes last_seen_at for many gateways in one statement. A time
// never moves backwards, and deleted gateways are left alone.
func (s *Store) MarkSeen(ctx context.Context, seen map[uuid.UUID]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(seen))
	times := make([]time.Time, 0, len(seen))
	for id, t := range seen {
		ids = append(ids, id)
		times = append(times, t)
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE gateways g SET last_seen_at = v.t
		FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, t)
		WHERE g.id = v.id AND g.deleted_at IS NULL AND (g.last_seen_at IS NULL OR g.last_seen_at < v.t)`, ids, times)
	s.recentGateways.written(err, ids...)
	if err != nil {
		return fmt.Errorf("mark seen: %w", classify(err))
	}
	return nil
}
