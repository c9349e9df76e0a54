package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// SensorFilter narrows a sensor list; nil fields do not filter.
type SensorFilter struct {
	GatewayID   *uuid.UUID
	EquipmentID *uuid.UUID
	FactoryID   *uuid.UUID
}

// SensorPatch changes the set fields. A set nil EquipmentID unassigns the
// sensor; a set nil ReadingInterval turns its schedule off.
type SensorPatch struct {
	Name            Opt[string]
	EquipmentID     Opt[*uuid.UUID]
	ReadingInterval Opt[*time.Duration]
	Metadata        Opt[json.RawMessage]
}

const sensorColumns = `id, gateway_id, serial, name, part_number, read_rate_hz, samples, connected, equipment_id,
	reading_interval, last_temperature_c, last_temperature_at, first_seen_at, last_seen_at, metadata, created_at, updated_at`

func scanSensor(row pgx.CollectableRow) (gatewayd.Sensor, error) {
	return scanSensorAnd(row)
}

// scanSensorAnd scans sensorColumns and then extra.
func scanSensorAnd(row pgx.CollectableRow, extra ...any) (gatewayd.Sensor, error) {
	var s gatewayd.Sensor
	dest := append([]any{&s.ID, &s.GatewayID, &s.Serial, &s.Name, &s.PartNumber, &s.ReadRateHz, &s.Samples, &s.Connected,
		&s.EquipmentID, &s.ReadingInterval, &s.LastTemperatureC, &s.LastTemperatureAt, &s.FirstSeenAt, &s.LastSeenAt,
		&s.Metadata, &s.CreatedAt, &s.UpdatedAt}, extra...)
	err := row.Scan(dest...)
	return s, err
}

// SensorUpdate is a sensor after an update, and whether the update changed
// it (a PUT of what it already had changes nothing, and announces nothing).
type SensorUpdate struct {
	gatewayd.Sensor
	Changed bool
}

// GetSensor returns a non-deleted sensor or ErrNotFound.
func (s *Store) GetSensor(ctx context.Context, id uuid.UUID) (gatewayd.Sensor, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE id = $1 AND deleted_at IS NULL`, id)
	out, err := pgx.CollectExactlyOneRow(rows, scanSensor)
	if err != nil {
		return gatewayd.Sensor{}, fmt.Errorf("get sensor: %w", classify(err))
	}
	return out, nil
}

// ListSensors returns a page ordered by gateway, then serial, and the total.
func (s *Store) ListSensors(ctx context.Context, f SensorFilter, page Page) ([]gatewayd.Sensor, int, error) {
	where := []string{"deleted_at IS NULL"}
	var args []any
	add := func(cond string, v uuid.UUID) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.GatewayID != nil {
		add("gateway_id = $?", *f.GatewayID)
	}
	if f.EquipmentID != nil {
		add("equipment_id = $?", *f.EquipmentID)
	}
	if f.FactoryID != nil {
		add("gateway_id IN (SELECT id FROM gateways WHERE factory_id = $? AND deleted_at IS NULL)", *f.FactoryID)
	}
	cond := strings.Join(where, " AND ")
	n := len(args)
	qualified := "t." + strings.ReplaceAll(strings.Join(strings.Fields(sensorColumns), " "), ", ", ", t.")
	b := &pgx.Batch{}
	var total int
	b.Queue(`SELECT count(*) FROM sensors WHERE `+cond, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&total) })
	var items []gatewayd.Sensor
	b.Queue(fmt.Sprintf(`SELECT %s FROM (SELECT id, gateway_id, serial FROM sensors WHERE %s
		ORDER BY gateway_id, serial LIMIT $%d OFFSET $%d) p JOIN sensors t ON t.id = p.id ORDER BY p.gateway_id, p.serial`,
		qualified, cond, n+1, n+2), append(args, page.Limit, page.Offset)...).Query(func(rows pgx.Rows) error {
		var err error
		items, err = pgx.CollectRows(rows, scanSensor)
		return err
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, fmt.Errorf("list sensors: %w", classify(err))
	}
	if items == nil {
		items = []gatewayd.Sensor{}
	}
	return items, total, nil
}

// GatewaySensors returns every non-deleted sensor of a gateway, ordered by
// serial.
func (s *Store) GatewaySensors(ctx context.Context, gatewayID uuid.UUID) ([]gatewayd.Sensor, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE gateway_id = $1 AND deleted_at IS NULL
		ORDER BY serial`, gatewayID)
	out, err := pgx.CollectRows(rows, scanSensor)
	if err != nil {
		return nil, fmt.Errorf("gateway sensors: %w", classify(err))
	}
	if out == nil {
		out = []gatewayd.Sensor{}
	}
	return out, nil
}

// UpdateSensor changes the set fields. A name set here is kept by later
// discoveries. Equipment must belong to the factory of the sensor's
// gateway, else ErrInvalidReference (equipment_id).
func (s *Store) UpdateSensor(ctx context.Context, id uuid.UUID, p SensorPatch) (SensorUpdate, error) {
	var meta json.RawMessage
	if p.Metadata.Set {
		meta = metadataOrEmpty(p.Metadata.Value)
	}
	var out SensorUpdate
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if p.EquipmentID.Set && p.EquipmentID.Value != nil {
			// The equipment row is share-locked so a concurrent delete
			// cannot leave the sensor assigned to deleted equipment.
			var ok bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (
				SELECT 1 FROM sensors s JOIN gateways g ON g.id = s.gateway_id
				JOIN equipment e ON e.factory_id = g.factory_id
				WHERE s.id = $1 AND s.deleted_at IS NULL AND e.id = $2 AND e.deleted_at IS NULL FOR SHARE OF e)`,
				id, *p.EquipmentID.Value).Scan(&ok)
			if err != nil {
				return err
			}
			if !ok {
				if _, err := s.getSensorTx(ctx, tx, id); err != nil {
					return err // the sensor itself is missing: 404
				}
				return fmt.Errorf("%w: equipment_id", gatewayd.ErrInvalidReference)
			}
		}
		rows, _ := tx.Query(ctx, `
			UPDATE sensors SET
				name             = CASE WHEN $2 THEN $3 ELSE name END,
				name_set         = name_set OR $2,
				equipment_id     = CASE WHEN $4 THEN $5 ELSE equipment_id END,
				reading_interval = CASE WHEN $6 THEN $7::interval ELSE reading_interval END,
				metadata         = CASE WHEN $8 THEN $9::jsonb ELSE metadata END
			WHERE id = $1 AND deleted_at IS NULL
			-- The trigger moves updated_at only when a column changed.
			RETURNING `+sensorColumns+`, updated_at = now()`,
			id, p.Name.Set, p.Name.Value, p.EquipmentID.Set, p.EquipmentID.Value, p.ReadingInterval.Set, p.ReadingInterval.Value,
			p.Metadata.Set, meta)
		var err error
		out.Sensor, err = pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (gatewayd.Sensor, error) {
			return scanSensorAnd(row, &out.Changed)
		})
		return err
	})
	if err != nil {
		return SensorUpdate{}, fmt.Errorf("update sensor: %w", classify(err))
	}
	return out, nil
}

func (s *Store) getSensorTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (gatewayd.Sensor, error) {
	rows, _ := tx.Query(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE id = $1 AND deleted_at IS NULL`, id)
	return pgx.CollectExactlyOneRow(rows, scanSensor)
}

// MergeDiscoveries applies gateways' discovery answers in one
// transaction: new serials are inserted, known ones updated (the name
// only if no operator set one), and serials a gateway no longer lists
// are marked disconnected. Nothing is deleted. Discoveries of gateways
// deleted meanwhile are skipped. Each gateway appears at most once. It
// returns the sensors that changed (inserted, or any reported field or
// their connected flag changed).
func (s *Store) MergeDiscoveries(ctx context.Context, ds []gatewayd.Discovery) ([]gatewayd.SensorRef, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	var gws, sensorGW []uuid.UUID
	var ats, sensorAt []time.Time
	var serials []int64
	var names, parts []string
	var rates []*float64
	var samples []*int32 // NULL (unknown) for a count no int4 holds
	var connected []bool
	for _, d := range ds {
		gws, ats = append(gws, d.GatewayID), append(ats, d.At)
		seen := make(map[int64]bool, len(d.Sensors))
		for i := len(d.Sensors) - 1; i >= 0; i-- { // a serial listed twice: the last entry wins
			r := d.Sensors[i]
			if seen[r.Serial] {
				continue
			}
			seen[r.Serial] = true
			sensorGW, sensorAt = append(sensorGW, d.GatewayID), append(sensorAt, d.At)
			serials, names, parts = append(serials, r.Serial), append(names, r.Name), append(parts, r.PartNumber)
			rates, samples, connected = append(rates, r.ReadRateHz), append(samples, sampleCount(r.Samples)), append(connected, r.Connected)
		}
	}
	var changed []sensorRef
	collect := func(rows pgx.Rows) error {
		refs, err := pgx.CollectRows(rows, scanSensorRef)
		changed = append(changed, refs...)
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		changed = changed[:0]
		return tx.SendBatch(ctx, mergeBatch(sensorGW, serials, names, parts, rates, samples, connected, sensorAt, gws, ats, collect)).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("merge discoveries: %w", classify(err))
	}
	return changedOnly(changed)
}

// mergeBatch is MergeDiscoveries' statements, made anew for each attempt.
func mergeBatch(sensorGW []uuid.UUID, serials []int64, names, parts []string, rates []*float64, samples []*int32,
	connected []bool, sensorAt []time.Time, gws []uuid.UUID, ats []time.Time, collect func(pgx.Rows) error) *pgx.Batch {
	b := &pgx.Batch{}
	lockForNewSensors(b, sensorGW, serials)
	// Two statements: the entries that name their sensor take that name
	// (unless an operator set one), and those that name none keep the
	// stored one (a new sensor gets "Sensor <serial>"). One statement
	// told them apart by the placeholder text, and a gateway's rename to
	// exactly that text was taken for no name and lost (found by an
	// audit, helper 8).
	for _, named := range []bool{true, false} {
		rule := "CASE WHEN s.name_set THEN s.name ELSE EXCLUDED.name END"
		if !named {
			rule = "s.name"
		}
		b.Queue(`
		WITH i AS (
			SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::float8[], $6::int4[], $7::bool[], $8::timestamptz[])
				AS i(gw, serial, name, part, rate, samples, connected, at)
			WHERE (i.name <> '') = $9),
		`+sensorRoom+`,
		written AS (
		INSERT INTO sensors AS s (gateway_id, serial, name, part_number, read_rate_hz, samples, connected, first_seen_at, last_seen_at, discovered_at)
		SELECT i.gw, i.serial, CASE WHEN i.name = '' THEN 'Sensor ' || i.serial ELSE i.name END, NULLIF(i.part, ''),
			i.rate, i.samples, i.connected, i.at, i.at, i.at
		FROM i JOIN gateways g ON g.id = i.gw AND g.deleted_at IS NULL
		WHERE (i.gw, i.serial) NOT IN (SELECT o.gw, o.serial FROM over o)
		ORDER BY i.gw, i.serial
		ON CONFLICT (gateway_id, serial) WHERE deleted_at IS NULL DO UPDATE SET
			name         = `+unlessOlder("name", rule)+`,
			part_number  = `+unlessOlder("part_number", "COALESCE(EXCLUDED.part_number, s.part_number)")+`,
			-- A rate or count the gateway did not report (or that no
			-- column holds) leaves the stored one.
			read_rate_hz = `+unlessOlder("read_rate_hz", "COALESCE(EXCLUDED.read_rate_hz, s.read_rate_hz)")+`,
			samples      = `+unlessOlder("samples", "COALESCE(EXCLUDED.samples, s.samples)")+`,
			connected    = `+unlessOlder("connected", "EXCLUDED.connected")+`,
			last_seen_at = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
			discovered_at = GREATEST(s.discovered_at, EXCLUDED.discovered_at)
		RETURNING s.id, s.gateway_id, (SELECT factory_id FROM gateways WHERE id = s.gateway_id) AS factory_id,
			s.xmax = 0 OR s.updated_at = now() AS changed)
		`+sensorsWrittenOrOver,
			sensorGW, serials, names, parts, rates, samples, connected, sensorAt, named).Query(collect)
	}
	// A sensor the gateway's newest merged answer left out, and not heard
	// from since, is disconnected: this answer's, or a newer one merged
	// before it (the API's discover, ahead of the writer's older answer;
	// sensor_lists keeps its time). Measured from this answer alone, an
	// older answer merged last connected again what the newer one had
	// left out, and stored a serial only it listed as connected (found by
	// audits, helpers 1 and 10). What it disconnects is stamped with the
	// answer's time, so that an older answer leaves it so (unlessOlder).
	b.Queue(`
		UPDATE sensors s SET connected = false, discovered_at = GREATEST(s.discovered_at, d.at)
		FROM (SELECT d.gw, GREATEST(d.at, l.listed_at) AS at
			FROM unnest($1::uuid[], $2::timestamptz[]) AS d(gw, at)
			LEFT JOIN sensor_lists l ON l.gateway_id = d.gw) d
		WHERE s.gateway_id = d.gw AND s.deleted_at IS NULL AND s.connected AND s.last_seen_at < d.at
			AND (s.discovered_at IS NULL OR s.discovered_at <= d.at)
		RETURNING s.id, s.gateway_id, (SELECT factory_id FROM gateways WHERE id = s.gateway_id), true, false`,
		gws, ats).Query(collect)
	b.Queue(orphanSweep, gws)
	// In gateway order, as every merge: two merges of one gateway (the
	// writer's and the API's) wait for each other, never in a cycle.
	b.Queue(`
		INSERT INTO sensor_lists AS l (gateway_id, listed_at)
		SELECT d.gw, d.at FROM unnest($1::uuid[], $2::timestamptz[]) AS d(gw, at)
		JOIN gateways g ON g.id = d.gw AND g.deleted_at IS NULL
		ORDER BY d.gw
		ON CONFLICT (gateway_id) DO UPDATE SET listed_at = GREATEST(l.listed_at, EXCLUDED.listed_at)`, gws, ats)
	return b
}

// unlessOlder is a merge's new value of a reported column: set, unless the
// answer is older than the one the stored fields came from (the writer's,
// landing after the API's newer one), which leaves col as it is.
func unlessOlder(col, set string) string {
	return "CASE WHEN s.discovered_at > EXCLUDED.discovered_at THEN s." + col + " ELSE " + set + " END"
}

// sampleCount is a reported sample count as stored: unknown (NULL) when
// it was not reported, or is negative or beyond int4, never wrapped to
// another number.
func sampleCount(n *int64) *int32 {
	if n == nil || *n < 0 || *n > math.MaxInt32 {
		return nil
	}
	v := int32(*n)
	return &v
}

// lockForNewSensors queues, first in b, a statement that takes the
// transaction's lock on sensor inserts when any of (gws[i], serials[i])
// is not a live sensor yet. sensorRoom counts a gateway's sensors on its
// statement's snapshot, so two writes of new serials at once (the API's
// discover beside the writer, or the writer's parallel readings) each saw
// the room the other was filling, and together passed the bound (found
// by an audit, helper 5). Held, the lock makes the next statement's
// snapshot see what the writer before it committed. One lock for all
// gateways: a lock per gateway filled PostgreSQL's lock table at a cold
// start (a thousand gateways a statement), and writes of known serials,
// nearly all of them, take none. It is the transaction's first lock, so
// it cannot close a cycle with the row locks the inserts take.
//
// A second statement then takes the key-share locks the inserts' foreign
// key checks take on their gateways, in id order, before any sensor row
// is written. Taken by the checks at the end of the insert, they came
// after the row locks of the known sensors the statement updated, while
// a deletion locks its gateways first and their sensors after: the two
// deadlocked, and PostgreSQL noticed only after deadlock_timeout (1 s),
// every time, before one of them ran again (found by an audit, helper 3).
func lockForNewSensors(b *pgx.Batch, gws []uuid.UUID, serials []int64) {
	b.Queue(`SELECT pg_advisory_xact_lock($3::int4, $4::int4)
		WHERE EXISTS (SELECT 1 FROM unnest($1::uuid[], $2::bigint[]) AS i(gw, serial) WHERE `+newSerial+`)`,
		gws, serials, instanceLockClass, newSensorsLockID)
	b.Queue(`SELECT 1 FROM gateways WHERE id IN (
			SELECT i.gw FROM unnest($1::uuid[], $2::bigint[]) AS i(gw, serial) WHERE `+newSerial+`)
		ORDER BY id FOR KEY SHARE`, gws, serials)
}

// newSerial holds for a row i (gw, serial) that is not a live sensor yet.
const newSerial = `NOT EXISTS (SELECT 1 FROM sensors k WHERE k.gateway_id = i.gw AND k.serial = i.serial AND k.deleted_at IS NULL)`

// sensorRoom is the common table expressions that bound a gateway's live
// sensors at gatewayd.MaxGatewaySensors, for an insert of the rows of i
// (gw, serial, …; each (gw, serial) at most once): over is the new serials
// that do not fit, the highest serials of a gateway's new ones. Counting
// happens only for gateways with a new serial, so the usual write (known
// serials) pays one index probe a row. room is MATERIALIZED: inlined, the
// planner moved its count into the join with fresh, where it ran once per
// new serial, not once per gateway: a gateway at the limit naming 4,096
// new serials cost 16.7 M index entries (2–7 s a statement on the
// writer's goroutine, at every flush; TestSensorInsertsAtTheLimitDoLinearWork).
// over is left out of the insert with NOT IN, which PostgreSQL hashes.
var sensorRoom = `
		fresh AS (
			SELECT i.gw, i.serial, row_number() OVER (PARTITION BY i.gw ORDER BY i.serial) AS nth
			FROM i WHERE ` + newSerial + `),
		room AS MATERIALIZED (
			SELECT d.gw, ` + strconv.Itoa(gatewayd.MaxGatewaySensors) + ` - (SELECT count(*) FROM sensors c WHERE c.gateway_id = d.gw AND c.deleted_at IS NULL) AS n
			FROM (SELECT DISTINCT gw FROM fresh) d),
		over AS (SELECT f.gw, f.serial FROM fresh f JOIN room r ON r.gw = f.gw WHERE f.nth > r.n)`

// sensorsWrittenOrOver ends a statement that starts with sensorRoom and a
// written insert: the rows written, then those over the bound.
const sensorsWrittenOrOver = `
		SELECT id, gateway_id, factory_id, changed, false FROM written
		UNION ALL
		SELECT '00000000-0000-0000-0000-000000000000'::uuid, gw, '00000000-0000-0000-0000-000000000000'::uuid, false, true FROM over`

// sensorRef is a returned sensor with whether the statement changed it,
// or a new serial over its gateway's bound, not written (ID zero).
type sensorRef struct {
	gatewayd.SensorRef
	changed bool
	over    bool
}

func scanSensorRef(row pgx.CollectableRow) (sensorRef, error) {
	var r sensorRef
	err := row.Scan(&r.ID, &r.GatewayID, &r.FactoryID, &r.changed, &r.over)
	return r, err
}

// changedOnly returns the sensors refs says changed, and ErrSensorLimit
// naming the gateways if any new serial was over its gateway's bound.
func changedOnly(refs []sensorRef) ([]gatewayd.SensorRef, error) {
	var out []gatewayd.SensorRef
	over := map[uuid.UUID]int{}
	for _, r := range refs {
		switch {
		case r.over:
			over[r.GatewayID]++
		case r.changed:
			out = append(out, r.SensorRef)
		}
	}
	if len(over) == 0 {
		return out, nil
	}
	n, gws := 0, make([]string, 0, len(over))
	for gw, k := range over {
		n += k
		gws = append(gws, gw.String())
	}
	slices.Sort(gws)
	return out, fmt.Errorf("%d new sensors of gateway %s not stored (%d live sensors at most): %w",
		n, strings.Join(gws, ", "), gatewayd.MaxGatewaySensors, gatewayd.ErrSensorLimit)
}

// RecordTemperatures writes NOT_DYN_TEMP notifications, and sightings of
// serials in other notifications; a serial not known yet is inserted
// (nothing a gateway reports is dropped). Each (gateway, serial) appears
// at most once; a temperature never moves backwards in time, and a
// sighting leaves it as it is. It returns the sensors written.
func (s *Store) RecordTemperatures(ctx context.Context, ts []gatewayd.Temperature) ([]gatewayd.SensorRef, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	gws := make([]uuid.UUID, len(ts))
	serials := make([]int64, len(ts))
	temps := make([]*float64, len(ts)) // NULL: a sighting
	ats := make([]time.Time, len(ts))
	for i, t := range ts {
		gws[i], serials[i], ats[i] = t.GatewayID, t.Serial, t.At
		if !t.Sighting {
			temps[i] = &ts[i].Celsius
		}
	}
	var refs []sensorRef
	var inserted []uuid.UUID // gateways that got a new sensor row
	err := againIfDeadlocked(ctx, func() error {
		inserted = inserted[:0]
		return s.pool.SendBatch(ctx, temperatureBatch(gws, serials, temps, ats, &refs, &inserted)).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("record temperatures: %w", classify(err))
	}
	// Rows inserted for a gateway deleted meanwhile are swept; updates of
	// existing rows need no sweep (see orphanSweep). Rare: new serials.
	if len(inserted) > 0 {
		if _, err := s.pool.Exec(ctx, orphanSweep, inserted); err != nil {
			return nil, fmt.Errorf("record temperatures: %w", classify(err))
		}
	}
	return changedOnly(refs)
}

// temperatureBatch is RecordTemperatures' statement, made anew for each
// attempt; it sets refs and adds to inserted.
func temperatureBatch(gws []uuid.UUID, serials []int64, temps []*float64, ats []time.Time, refs *[]sensorRef, inserted *[]uuid.UUID) *pgx.Batch {
	b := &pgx.Batch{} // one implicit transaction: the lock is held to its end
	lockForNewSensors(b, gws, serials)
	b.Queue(`
		WITH i AS (SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::float8[], $4::timestamptz[]) AS i(gw, serial, temp, at)),
		`+sensorRoom+`,
		written AS (
		INSERT INTO sensors AS s (gateway_id, serial, name, last_temperature_c, last_temperature_at, first_seen_at, last_seen_at)
		SELECT i.gw, i.serial, 'Sensor ' || i.serial, i.temp, CASE WHEN i.temp IS NOT NULL THEN i.at END, i.at, i.at
		FROM i JOIN gateways g ON g.id = i.gw AND g.deleted_at IS NULL
		WHERE (i.gw, i.serial) NOT IN (SELECT o.gw, o.serial FROM over o)
		ORDER BY i.gw, i.serial
		ON CONFLICT (gateway_id, serial) WHERE deleted_at IS NULL DO UPDATE SET
			last_temperature_c  = CASE WHEN EXCLUDED.last_temperature_at IS NOT NULL
			                            AND (s.last_temperature_at IS NULL OR s.last_temperature_at <= EXCLUDED.last_temperature_at)
			                           THEN EXCLUDED.last_temperature_c ELSE s.last_temperature_c END,
			last_temperature_at = GREATEST(s.last_temperature_at, EXCLUDED.last_temperature_at), -- NULLs ignored
			last_seen_at        = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
			-- Heard from no earlier than the gateway's newest list: what
			-- the list's merge would have left connected (it spares
			-- last_seen_at >= the list), whichever was written first
			-- (found by an audit, helper 4).
			connected           = s.connected OR COALESCE(EXCLUDED.last_seen_at >=
			                      (SELECT l.listed_at FROM sensor_lists l WHERE l.gateway_id = s.gateway_id), true)
		RETURNING s.id, s.gateway_id, (SELECT factory_id FROM gateways WHERE id = s.gateway_id) AS factory_id, s.xmax = 0 AS changed)
		`+sensorsWrittenOrOver,
		gws, serials, temps, ats).Query(func(rows pgx.Rows) (err error) {
		*refs, err = pgx.CollectRows(rows, scanSensorRef)
		for i, r := range *refs {
			if r.over {
				continue
			}
			if r.changed { // here: the row was inserted
				*inserted = append(*inserted, r.GatewayID)
			}
			(*refs)[i].changed = true // every row written is a change
		}
		return err
	})
	return b
}

// orphanSweep marks deleted the live sensors of the gateways in $1 that
// are deleted. A sensor row inserted for a gateway whose deletion was
// under way saw the gateway live: the insert's foreign key check waits
// for the deletion (which locks its gateways FOR UPDATE) and then passes,
// the gateway row being still there, soft-deleted; the deletion's own
// UPDATE of sensors did not see the row. The sweep, run after the insert
// with a newer snapshot, sees the deletion and finishes it. (An insert
// whose key check came first holds its gateway's key-share lock to the
// end of its transaction, so the deletion waits and sees its rows.)
// Without it, a discovery merged during a deletion left live sensors
// under the deleted gateway for good. Locking every gateway of a write
// instead (FOR SHARE) doubled PostgreSQL's CPU in the cold start with
// sensors: a tuple lock written per gateway per flush.
const orphanSweep = `UPDATE sensors s SET deleted_at = g.deleted_at FROM gateways g
	WHERE g.id = ANY($1) AND g.deleted_at IS NOT NULL AND s.gateway_id = g.id AND s.deleted_at IS NULL`

// SensorReadRate returns the read rate stored for a gateway's live sensor
// with serial, 0 when the sensor or its rate is not known.
func (s *Store) SensorReadRate(ctx context.Context, gatewayID uuid.UUID, serial int64) (float64, error) {
	var rate *float64
	err := s.pool.QueryRow(ctx, `SELECT read_rate_hz FROM sensors
		WHERE gateway_id = $1 AND serial = $2 AND deleted_at IS NULL`, gatewayID, serial).Scan(&rate)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && rate == nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sensor read rate: %w", classify(err))
	}
	return *rate, nil
}
