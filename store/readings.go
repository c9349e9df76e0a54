package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/wavepack"
)

const readingColumns = `id, sensor_id, gateway_id, trigger, status, error, requested_at, started_at, completed_at,
	sample_rate_hz, samples, summary`

func scanReading(row pgx.CollectableRow) (gatewayd.Reading, error) {
	var r gatewayd.Reading
	err := row.Scan(&r.ID, &r.SensorID, &r.GatewayID, &r.Trigger, &r.Status, &r.Error, &r.RequestedAt, &r.StartedAt,
		&r.CompletedAt, &r.SampleRateHz, &r.Samples, &r.Summary)
	return r, err
}

// ReadingSensor is what taking a new reading needs of its sensor: the
// serial the gateway knows it by, and the rate it reported (nil when it
// reported none).
type ReadingSensor struct {
	Serial     int64
	ReadRateHz *float64
}

// CreateReading inserts a QUEUED reading with id of a non-deleted sensor
// (else ErrNotFound) and returns it with what the gateway's actor needs of
// the sensor to take it. The caller chooses the id so that it can remove
// the row when the insert's outcome is unknown (ErrUnavailable: a timeout
// after the statement was sent may still commit it).
func (s *Store) CreateReading(ctx context.Context, id, sensorID uuid.UUID, trigger gatewayd.Trigger) (gatewayd.Reading, ReadingSensor, error) {
	// One statement, not a transaction of a locking SELECT and an INSERT
	// (four round trips with BEGIN and COMMIT): the sensor row is still
	// locked FOR SHARE until the insert commits, so a concurrent delete
	// waits, and a missing sensor inserts nothing (ErrNotFound). In a
	// burst of 2,000 manual readings the POSTs' median went 50 → 38 ms
	// (BENCHMARKS.md, 2026-12-05). It also returns the sensor's serial
	// and rate, which took a SELECT of their own before each INSERT
	// (2026-12-06, fourth session).
	// The gateway's row is locked before the sensor's, in the order a
	// gateway's deletion takes them: the insert's foreign key check
	// locked the gateway after the sensor, and a reading racing its
	// gateway's deletion deadlocked (40P01, answered 503; found by an
	// audit, helper 9). A gateway deleted meanwhile leaves no row: 404.
	var sensor ReadingSensor
	rows, _ := s.pool.Query(ctx, `WITH sensor AS (
			SELECT s.id, s.gateway_id, s.serial, s.read_rate_hz FROM gateways g JOIN sensors s ON s.gateway_id = g.id
			WHERE s.id = $1 AND s.deleted_at IS NULL AND g.deleted_at IS NULL FOR KEY SHARE OF g FOR SHARE OF s)
		INSERT INTO readings (id, sensor_id, gateway_id, trigger, status)
		SELECT $3, id, gateway_id, $2, 'QUEUED' FROM sensor
		RETURNING `+readingColumns+`, (SELECT serial FROM sensor), (SELECT read_rate_hz FROM sensor)`, sensorID, string(trigger), id)
	out, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (gatewayd.Reading, error) {
		var r gatewayd.Reading
		err := row.Scan(&r.ID, &r.SensorID, &r.GatewayID, &r.Trigger, &r.Status, &r.Error, &r.RequestedAt, &r.StartedAt,
			&r.CompletedAt, &r.SampleRateHz, &r.Samples, &r.Summary, &sensor.Serial, &sensor.ReadRateHz)
		return r, err
	})
	if err != nil {
		return gatewayd.Reading{}, ReadingSensor{}, fmt.Errorf("create reading: %w", classify(err))
	}
	return out, sensor, nil
}

// DiscardReading removes a reading that never ran (the runtime refused it
// at once), so a refused request leaves nothing behind.
func (s *Store) DiscardReading(ctx context.Context, id uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM readings WHERE id = $1 AND status = 'QUEUED'`, id); err != nil {
		return fmt.Errorf("discard reading: %w", classify(err))
	}
	return nil
}

// GetReading returns a reading or ErrNotFound.
func (s *Store) GetReading(ctx context.Context, id uuid.UUID) (gatewayd.Reading, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+readingColumns+` FROM readings WHERE id = $1`, id)
	r, err := pgx.CollectExactlyOneRow(rows, scanReading)
	if err != nil {
		return gatewayd.Reading{}, fmt.Errorf("get reading: %w", classify(err))
	}
	return r, nil
}

// ReadingFilter narrows a sensor's readings; zero fields do not filter.
type ReadingFilter struct {
	Status gatewayd.ReadingStatus
	Since  *time.Time // requested at or after
	Until  *time.Time // requested before
}

// ListReadings returns a page of a sensor's readings, newest first, and
// the total. A sensor that does not exist, or is deleted, has none (its
// readings stay, for GET /api/readings/:id, but its list is gone with it).
func (s *Store) ListReadings(ctx context.Context, sensorID uuid.UUID, f ReadingFilter, page Page) ([]gatewayd.Reading, int, error) {
	where := []string{"sensor_id = $1", "EXISTS (SELECT 1 FROM sensors WHERE id = $1 AND deleted_at IS NULL)"}
	args := []any{sensorID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.Status != "" {
		add("status = $?", string(f.Status))
	}
	// PostgreSQL keeps microseconds and pgx truncates a bound to them, so
	// a reading at T was left out by until=T+500ns (before which it was
	// requested) and listed by since=T+500ns (found by an audit, helper
	// 9): both bounds go up to the next whole microsecond, which selects
	// exactly the readings of whole microseconds the finer bound does.
	if f.Since != nil {
		add("requested_at >= $?", ceilMicrosecond(*f.Since))
	}
	if f.Until != nil {
		add("requested_at < $?", ceilMicrosecond(*f.Until))
	}
	cond := strings.Join(where, " AND ")
	n := len(args)
	p, err := countAndPage(ctx, s.pool, `SELECT count(*) FROM readings WHERE `+cond,
		fmt.Sprintf(`SELECT %s FROM readings WHERE %s ORDER BY requested_at DESC, id DESC LIMIT $%d OFFSET $%d`,
			readingColumns, cond, n+1, n+2), args, page, scanReading)
	if err != nil {
		return nil, 0, fmt.Errorf("list readings: %w", classify(err))
	}
	if p.items == nil {
		p.items = []gatewayd.Reading{}
	}
	return p.items, p.total, nil
}

// SaveReadings writes readings' states in one transaction: each row is
// inserted if missing (scheduled and gateway-pushed readings are born in
// the runtime) or moved forward, never back (QUEUED → RUNNING → COMPLETE
// or FAILED; a final state never changes), and the samples of complete
// readings are stored once. Readings of sensors deleted meanwhile are
// still kept: their rows reference the soft-deleted sensor. It returns
// the readings this call brought to a final state.
func (s *Store) SaveReadings(ctx context.Context, us []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	if len(us) == 0 {
		return nil, nil
	}
	var done []gatewayd.ReadingRef
	n := len(us)
	ids, sensors, gateways := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	serials := make([]int64, n)
	triggers, statuses := make([]string, n), make([]string, n)
	errs := make([]*string, n)
	requested := make([]time.Time, n)
	started, completed := make([]*time.Time, n), make([]*time.Time, n)
	rates := make([]*float64, n)
	counts := make([]*int32, n)
	summaries := make([]*string, n)
	var waveIDs []uuid.UUID
	var waves [][]byte
	var formats []int16
	for i, u := range us {
		r := u.Reading
		ids[i], sensors[i], gateways[i], serials[i] = r.ID, r.SensorID, r.GatewayID, u.Serial
		triggers[i], statuses[i], errs[i] = string(r.Trigger), string(r.Status), r.Error
		requested[i], started[i], completed[i], rates[i] = r.RequestedAt, r.StartedAt, r.CompletedAt, r.SampleRateHz
		if r.Samples != nil {
			c := int32(*r.Samples)
			counts[i] = &c
		}
		if r.Summary != nil {
			sum := string(r.Summary)
			summaries[i] = &sum
		}
		if u.Packed != nil {
			waveIDs, waves, formats = append(waveIDs, r.ID), append(waves, u.Packed.Data), append(formats, u.Packed.Format)
		}
	}
	collectDone := func(rows pgx.Rows) error {
		var ref gatewayd.ReadingRef
		var completedAt *time.Time
		_, err := pgx.ForEachRow(rows, []any{&ref.ID, &ref.SensorID, &ref.GatewayID, &ref.FactoryID, &ref.Trigger,
			&ref.Status, &ref.RequestedAt, &completedAt}, func() error {
			if ref.Status.Done() && completedAt != nil {
				ref.CompletedAt = *completedAt
				done = append(done, ref)
			}
			return nil
		})
		return err
	}
	var over []sensorRef // new serials past their gateway's bound: their readings have no sensor
	b := &pgx.Batch{}
	var bySerialGW []uuid.UUID // the readings whose sensor is named by serial: it may be new
	var bySerial []int64
	for i := range us {
		if sensors[i] == uuid.Nil {
			bySerialGW, bySerial = append(bySerialGW, gateways[i]), append(bySerial, serials[i])
		}
	}
	if len(bySerial) > 0 {
		lockForNewSensors(b, bySerialGW, bySerial)
	}
	b.Queue(`
		WITH i AS (
			SELECT DISTINCT i.gw, i.serial FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS i(sensor, gw, serial)
			WHERE i.sensor = '00000000-0000-0000-0000-000000000000'),
		`+sensorRoom+`,
		written AS (
		INSERT INTO sensors AS s (gateway_id, serial, name)
		SELECT i.gw, i.serial, 'Sensor ' || i.serial
		FROM i JOIN gateways g ON g.id = i.gw AND g.deleted_at IS NULL
		WHERE (i.gw, i.serial) NOT IN (SELECT o.gw, o.serial FROM over o)
		ON CONFLICT (gateway_id, serial) WHERE deleted_at IS NULL DO NOTHING
		RETURNING s.id, s.gateway_id, '00000000-0000-0000-0000-000000000000'::uuid AS factory_id, false AS changed)
		`+sensorsWrittenOrOver, sensors, gateways, serials).Query(func(rows pgx.Rows) (err error) {
		over, err = pgx.CollectRows(rows, scanSensorRef)
		return err
	})
	b.Queue(`
		INSERT INTO readings AS r (id, sensor_id, gateway_id, trigger, status, error, requested_at, started_at, completed_at,
			sample_rate_hz, samples, summary)
		SELECT * FROM (
			SELECT i.id, COALESCE(NULLIF(i.sensor, '00000000-0000-0000-0000-000000000000'),
					(SELECT s.id FROM sensors s WHERE s.gateway_id = i.gw AND s.serial = i.serial AND s.deleted_at IS NULL)) AS sensor,
				i.gw, i.trigger, i.status, i.error, i.requested, i.started, i.completed, i.rate, i.samples, i.summary
			FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
				$8::timestamptz[], $9::timestamptz[], $10::float8[], $11::int4[], $12::jsonb[], $13::bigint[])
				AS i(id, sensor, gw, trigger, status, error, requested, started, completed, rate, samples, summary, serial)
		) x WHERE x.sensor IS NOT NULL -- a pushed reading of a gateway deleted meanwhile has no sensor to belong to
			-- A manual reading's row is the API's, updated below, never
			-- inserted here: one the API removed (its request failed after
			-- the actor had queued it) stays removed. (A check here that
			-- the row exists saw it while the removal was uncommitted.)
			AND x.trigger <> 'MANUAL'
		ON CONFLICT (id) DO UPDATE SET `+readingSet("EXCLUDED")+`
		WHERE `+readingMovesOn("EXCLUDED")+`
		RETURNING r.id, r.sensor_id, r.gateway_id, (SELECT factory_id FROM gateways WHERE id = r.gateway_id),
			r.trigger, r.status, r.requested_at, r.completed_at`,
		ids, sensors, gateways, triggers, statuses, errs, requested, started, completed, rates, counts, summaries, serials).
		Query(collectDone)
	b.Queue(`
		UPDATE readings AS r SET `+readingSet("i")+`
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::float8[],
			$8::int4[], $9::jsonb[]) AS i(id, trigger, status, error, started_at, completed_at, sample_rate_hz, samples, summary)
		WHERE r.id = i.id AND i.trigger = 'MANUAL' AND `+readingMovesOn("i")+`
		RETURNING r.id, r.sensor_id, r.gateway_id, (SELECT factory_id FROM gateways WHERE id = r.gateway_id),
			r.trigger, r.status, r.requested_at, r.completed_at`,
		ids, triggers, statuses, errs, started, completed, rates, counts, summaries).Query(collectDone)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return copySamples(ctx, tx, done, waveIDs, waves, formats)
	})
	if err != nil {
		return nil, fmt.Errorf("save readings: %w", classify(err))
	}
	if _, err := changedOnly(over); err != nil {
		return done, fmt.Errorf("save readings: %w", err)
	}
	return done, nil
}

// copySamples stores the samples of the readings this transaction made
// COMPLETE (done), with COPY: a reading becomes COMPLETE once, so its
// samples are stored once, and none are stored for a reading that was
// not stored or was already final. COPY streams the rows through the
// connection's buffer in 64 KB messages, where a bytea[] parameter of 32
// readings was encoded into new buffers of several MB, twice (~250 KB of
// garbage per reading in a burst; BENCHMARKS.md, issue #14).
func copySamples(ctx context.Context, tx pgx.Tx, done []gatewayd.ReadingRef, ids []uuid.UUID, waves [][]byte, formats []int16) error {
	if len(ids) == 0 {
		return nil
	}
	complete := make(map[uuid.UUID]bool, len(done))
	for _, ref := range done {
		if ref.Status == gatewayd.ReadingComplete {
			complete[ref.ID] = true
		}
	}
	rows := make([][]any, 0, len(ids))
	for i, id := range ids {
		if complete[id] {
			rows = append(rows, []any{id, waves[i], formats[i]})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"reading_samples"}, []string{"reading_id", "data", "format"}, pgx.CopyFromRows(rows))
	return err
}

// FailAbandonedReadings marks readings still QUEUED or RUNNING that were
// asked for before cutoff as FAILED (ReadingErrAbandoned). A gateway's
// actor finishes every reading it holds within its timeouts, so one that
// old is held by nobody: its request failed after the insert committed
// (and its removal failed too), or its actor's last update was lost. Only
// a restart failed such a row; API.md §8: no reading stays unfinished
// forever.
//
// It returns the readings it failed, for their reading.failed events.
func (s *Store) FailAbandonedReadings(ctx context.Context, cutoff time.Time) ([]gatewayd.ReadingRef, error) {
	refs, err := s.failUnfinished(ctx, gatewayd.ReadingErrAbandoned, &cutoff)
	if err != nil {
		return nil, fmt.Errorf("fail abandoned readings: %w", err)
	}
	return refs, nil
}

// FailInterruptedReadings marks every reading a previous process left
// QUEUED or RUNNING as FAILED ("interrupted"); it runs before the runtime
// starts, so none of them can still be in progress. It returns them, to
// be counted and announced as the sweep's are.
func (s *Store) FailInterruptedReadings(ctx context.Context) ([]gatewayd.ReadingRef, error) {
	refs, err := s.failUnfinished(ctx, gatewayd.ReadingErrInterrupted, nil)
	if err != nil {
		return nil, fmt.Errorf("fail interrupted readings: %w", err)
	}
	return refs, nil
}

// failUnfinished marks the readings not finished FAILED with reason: all
// of them, or those requested before cutoff (nil: every one, whatever
// the clock that stamped it said: found by an audit, helper 12).
func (s *Store) failUnfinished(ctx context.Context, reason string, cutoff *time.Time) ([]gatewayd.ReadingRef, error) {
	// The database's clock, but never before the reading's own times
	// (gatewayd's clock stamped started_at, and requested_at unless the
	// API did): a reading never ends before it started, nor is a negative
	// time observed (found by an audit, helper 2).
	rows, _ := s.pool.Query(ctx, `UPDATE readings r SET status = 'FAILED', error = $1,
			completed_at = GREATEST(now(), r.requested_at, r.started_at)
		WHERE status IN ('QUEUED', 'RUNNING') AND ($2::timestamptz IS NULL OR requested_at < $2)
		RETURNING r.id, r.sensor_id, r.gateway_id, (SELECT factory_id FROM gateways WHERE id = r.gateway_id),
			r.trigger, r.status, r.requested_at, r.completed_at`, reason, cutoff)
	refs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gatewayd.ReadingRef, error) {
		var ref gatewayd.ReadingRef
		err := row.Scan(&ref.ID, &ref.SensorID, &ref.GatewayID, &ref.FactoryID, &ref.Trigger, &ref.Status,
			&ref.RequestedAt, &ref.CompletedAt)
		return ref, err
	})
	return refs, classify(err)
}

// GetWaveform returns a reading's samples, or ErrNotFound when it has none
// (not complete, or removed by retention).
func (s *Store) GetWaveform(ctx context.Context, id uuid.UUID) (gatewayd.Waveform, error) {
	var data []byte
	var format int16
	var rate *float64
	err := s.pool.QueryRow(ctx, `SELECT d.data, d.format, r.sample_rate_hz FROM reading_samples d JOIN readings r ON r.id = d.reading_id
		WHERE d.reading_id = $1`, id).Scan(&data, &format, &rate)
	if err != nil {
		return gatewayd.Waveform{}, fmt.Errorf("get waveform: %w", classify(err))
	}
	w, err := UnpackWaveform(format, data)
	if err != nil {
		return gatewayd.Waveform{}, fmt.Errorf("get waveform: %w", err)
	}
	if rate != nil {
		w.SampleRateHz = *rate
	}
	return w, nil
}

// DeleteSamplesBefore removes the samples of readings stored before
// cutoff, at most batch rows per statement, and returns how many it
// removed; the readings and their summaries stay.
func (s *Store) DeleteSamplesBefore(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM reading_samples WHERE reading_id IN (
			SELECT reading_id FROM reading_samples WHERE created_at < $1 LIMIT $2)`, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("delete samples: %w", classify(err))
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < int64(batch) || ctx.Err() != nil {
			return total, nil
		}
	}
}

// readingSet is how a reading's row r takes an update from src (a row
// with the readings table's column names): the state and its times, and
// what the update leaves unknown (NULL) kept. The upsert of the runtime's
// readings and the update of the API's manual ones share it.
func readingSet(src string) string {
	return strings.NewReplacer("src", src).Replace(`
			status         = src.status,
			error          = src.error,
			started_at     = COALESCE(src.started_at, r.started_at),
			completed_at   = src.completed_at,
			sample_rate_hz = COALESCE(src.sample_rate_hz, r.sample_rate_hz),
			samples        = COALESCE(src.samples, r.samples),
			summary        = COALESCE(src.summary, r.summary)`)
}

// readingMovesOn is the condition under which r takes an update from
// src: a final state never moves, and QUEUED never overwrites a started
// reading.
func readingMovesOn(src string) string {
	return `r.status NOT IN ('COMPLETE', 'FAILED') AND (r.status = 'QUEUED' OR ` + src + `.status <> 'QUEUED')`
}

// UnpackWaveform returns the samples of data stored in format
// (reading_samples.format: wavepack.FormatRaw or FormatXORPlanes).
func UnpackWaveform(format int16, data []byte) (gatewayd.Waveform, error) {
	x, y, z, err := wavepack.Unpack(format, data)
	if err != nil {
		return gatewayd.Waveform{}, err
	}
	return gatewayd.Waveform{X: x, Y: y, Z: z}, nil
}

// ceilMicrosecond is t, or the next whole microsecond after it.
func ceilMicrosecond(t time.Time) time.Time {
	if d := t.Truncate(time.Microsecond); d.Before(t) {
		return d.Add(time.Microsecond)
	}
	return t
}
