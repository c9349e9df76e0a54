package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// The simulated sensor's timing in the readings scenario: fixed, not
// CaptureRealtime (320 ms), so what gatewayd adds can be told from what
// the sensor takes.
const (
	readingStartDelay   = 20 * time.Millisecond
	readingCaptureDelay = 200 * time.Millisecond
	readingSensorTime   = readingStartDelay + readingCaptureDelay
)

// Status pollers during the readings scenario: a few clients, each
// paced, so the figure is the latency an operator's dashboard sees under
// the reading load, not the pollers competing with themselves for the
// two cores (closed-loop pollers would saturate them at idle already).
const (
	readingPollers   = 4
	readingPollEvery = 10 * time.Millisecond
)

// readingRequest is one manual reading: when it was asked for, its id.
type readingRequest struct {
	at   time.Time
	id   uuid.UUID
	took time.Duration // the POST's own latency
}

// readingSensor is one sensor row as discovered by gatewayd.
type readingSensor struct {
	id, gateway uuid.UUID
}

// readings: o.readingGateways gateways with two simulated sensors each
// (3 × 8,192 samples, a capture of readingSensorTime). (a) burst: one
// manual reading per sensor, all requested at once by o.concurrency
// clients; (b) schedule (o.readingSchedule > 0, in a fresh gatewayd):
// every sensor on a 1-minute reading_interval for that long. Both compare
// single-gateway status latency and RSS with idle in the same process.
func readings(ctx context.Context, o *options, r *report) error {
	if o.target != "" {
		return fmt.Errorf("readings reads gatewayd's RSS and its database; run it without -target")
	}
	if o.readingBurst {
		if err := isolated(ctx, o, func(e *env) error { return readingBurst(ctx, e, r) }); err != nil {
			return fmt.Errorf("burst: %w", err)
		}
	}
	if o.readingSchedule > 0 {
		if err := isolated(ctx, o, func(e *env) error { return readingSchedule(ctx, e, r) }); err != nil {
			return fmt.Errorf("schedule: %w", err)
		}
	}
	return nil
}

// readingSetup seeds the gateways with the fixed capture delay, starts
// gatewayd and waits until every sensor row exists.
func readingSetup(ctx context.Context, e *env, r *report) ([]readingSensor, error) {
	n := e.o.readingGateways
	if err := e.seed(ctx, n); err != nil {
		return nil, err
	}
	for _, g := range e.sims {
		g.SetFaults(ctctest.Faults{StartDelay: readingStartDelay, CaptureDelay: readingCaptureDelay})
	}
	var extra []string
	if e.o.debugAddr != "" {
		extra = append(extra, "DEBUG_ADDR="+e.o.debugAddr)
	}
	if _, err := e.startGatewayd(extra...); err != nil {
		return nil, err
	}
	if err := e.waitAuthenticated(n, 5*time.Minute); err != nil {
		return nil, err
	}
	// gatewayd discovers the sensors after the logins and writes them in
	// batches; the scenario starts when all rows are there.
	if err := e.waitSensorRows(ctx, e.simSensors(), 2*time.Minute); err != nil {
		return nil, err
	}
	rows, err := e.pool.Query(ctx, `SELECT id, gateway_id FROM sensors WHERE deleted_at IS NULL ORDER BY serial, gateway_id`)
	if err != nil {
		return nil, fmt.Errorf("list sensors: %w", err)
	}
	defer rows.Close()
	var out []readingSensor
	for rows.Next() {
		var s readingSensor
		if err := rows.Scan(&s.id, &s.gateway); err != nil {
			return nil, fmt.Errorf("list sensors: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sensors: %w", err)
	}
	r.progressf("readings: %d gateways authenticated, %d sensors discovered", n, len(out))
	return out, nil
}

// statusPollers polls single-gateway status from readingPollers clients,
// each every readingPollEvery, until the returned stop is called, which
// returns the sorted latencies and the number of failed requests. The
// pollers run in a process of their own (see probeEnv), unless
// -probe-in-process asks for the old in-process ones to compare.
func statusPollers(e *env) (stop func() ([]time.Duration, int, error), err error) {
	spec := probeSpec{API: e.api, Token: e.token, IDs: e.ids, Pollers: readingPollers, Every: readingPollEvery, Path: e.o.probePath}
	if !e.o.probeInProcess {
		return startProbe(spec)
	}
	quit := make(chan struct{})
	type result struct {
		lat    []time.Duration
		failed int
	}
	done := make(chan result, 1)
	go func() {
		lat, failed := poll(quit, spec.Pollers, spec.Every, func() error { return spec.once(e.client) })
		done <- result{lat, failed}
	}()
	return func() ([]time.Duration, int, error) {
		close(quit)
		r := <-done
		return r.lat, r.failed, nil
	}, nil
}

// readingIdle measures status latency and RSS with every gateway
// connected and no reading running, for o.duration; it returns the status
// p99 and the peak RSS (KiB).
func readingIdle(e *env, r *report, prefix string) (time.Duration, int, error) {
	time.Sleep(e.o.settle)
	stopPeak := samplePeak(e.rssKiB)
	stopPoll, err := statusPollers(e)
	if err != nil {
		stopPeak()
		return 0, 0, err
	}
	time.Sleep(e.o.duration)
	lat, failed, err := stopPoll()
	peak := stopPeak()
	if err != nil {
		return 0, 0, err
	}
	if failed > 0 {
		return 0, 0, fmt.Errorf("%d idle status requests failed", failed)
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("no idle status request finished in %s", e.o.duration)
	}
	p99 := percentile(lat, 99)
	r.value(prefix+"_idle_status_p50", ms(percentile(lat, 50)), "ms")
	r.value(prefix+"_idle_status_p99", ms(p99), "ms")
	r.value(prefix+"_idle_rss", float64(peak)/1024, "MiB")
	return p99, peak, nil
}

// readingLoadFigures prints status latency and peak RSS under load beside
// the idle ones.
func readingLoadFigures(r *report, prefix string, lat []time.Duration, failed int, idleP99 time.Duration, peak, idlePeak int) error {
	if failed > 0 {
		return fmt.Errorf("%d status requests failed under load", failed)
	}
	p99 := percentile(lat, 99)
	r.value(prefix+"_status_count", float64(len(lat)), "count")
	r.value(prefix+"_status_p50", ms(percentile(lat, 50)), "ms")
	r.value(prefix+"_status_p99", ms(p99), "ms")
	if idleP99 > 0 {
		r.value(prefix+"_status_p99_over_idle", float64(p99)/float64(idleP99), "ratio")
	}
	r.value(prefix+"_peak_rss", float64(peak)/1024, "MiB")
	r.value(prefix+"_peak_rss_over_idle", float64(peak-idlePeak)/1024, "MiB")
	return nil
}

// readingBurst: one manual reading per sensor, requested concurrently;
// figures from the first request to the last reading stored.
func readingBurst(ctx context.Context, e *env, r *report) error {
	sensors, err := readingSetup(ctx, e, r)
	if err != nil {
		return err
	}
	idleP99, idlePeak, err := readingIdle(e, r, "burst")
	if err != nil {
		return err
	}
	// Interleave the gateways (every first sensor, then every second one)
	// so the two readings of one gateway are requested apart, as a user
	// clicking through a list would.
	r.progressf("readings: burst of %d starts (load average %s)", len(sensors), loadAverage())
	// Where the CPU went: gatewayd, its database's backends, and this
	// process (the simulator sends the frames).
	gw0, pg0, self0 := e.procTicks(), e.pgTicks(), cpuTicks(os.Getpid())
	stopPeak := samplePeak(e.rssKiB)
	stopPoll, err := statusPollers(e)
	if err != nil {
		stopPeak()
		return err
	}
	requested := make([]readingRequest, len(sensors))
	start := time.Now()
	failedPosts, firstErr := eachConcurrently(len(sensors), e.o.concurrency, func(i int) error {
		var out struct{ ID uuid.UUID }
		t0 := time.Now()
		if err := e.call("POST", "/sensors/"+sensors[i].id.String()+"/readings", nil, 202, &out); err != nil {
			return err
		}
		requested[i] = readingRequest{at: t0, id: out.ID, took: time.Since(t0)}
		return nil
	})
	postsTook := time.Since(start)
	if failedPosts > 0 {
		_, _, _ = stopPoll()
		stopPeak()
		return fmt.Errorf("%d of %d reading requests failed, the first: %v", failedPosts, len(sensors), firstErr)
	}
	// Done when every reading is COMPLETE or FAILED in the database.
	var complete, failed int
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'COMPLETE'), count(*) FILTER (WHERE status = 'FAILED')
			FROM readings WHERE trigger = 'MANUAL'`).Scan(&complete, &failed); err != nil {
			_, _, _ = stopPoll()
			stopPeak()
			return fmt.Errorf("count readings: %w", err)
		}
		if complete+failed >= len(sensors) {
			break
		}
		if time.Now().After(deadline) {
			_, _, _ = stopPoll()
			stopPeak()
			return fmt.Errorf("only %d complete and %d failed of %d readings after 5m", complete, failed, len(sensors))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	gwCPU, pgCPU, selfCPU := e.procTicks()-gw0, e.pgTicksSince(pg0), cpuTicks(os.Getpid())-self0
	lat, pollFailed, err := stopPoll()
	peak := stopPeak()
	if err != nil {
		return err
	}
	r.progressf("readings: %d requested in %s, all finished after %s (load average %s)", len(sensors),
		postsTook.Round(time.Millisecond), took.Round(time.Millisecond), loadAverage())

	r.value("burst_readings", float64(len(sensors)), "count")
	r.value("burst_complete", float64(complete), "count")
	r.value("burst_failed", float64(failed), "count")
	r.value("burst_requests_took", postsTook.Seconds(), "s")
	r.value("burst_took", took.Seconds(), "s")
	r.value("burst_stored_rate", float64(complete)/took.Seconds(), "readings/s")
	r.value("burst_gatewayd_cores", float64(gwCPU)/clockTicks/took.Seconds(), "cores")
	r.value("burst_gatewayd_cpu_per_reading", float64(gwCPU)/clockTicks*1000/float64(len(sensors)), "ms")
	r.value("burst_pg_cores", float64(pgCPU)/clockTicks/took.Seconds(), "cores")
	r.value("burst_gwload_cores", float64(selfCPU)/clockTicks/took.Seconds(), "cores")
	if err := readingBurstLatencies(ctx, e, r, requested); err != nil {
		return err
	}
	if err := readingLoadFigures(r, "burst", lat, pollFailed, idleP99, peak, idlePeak); err != nil {
		return err
	}
	if err := readingStorage(ctx, e, r, complete); err != nil {
		return err
	}
	if failed > 0 {
		var reasons []string
		rows, err := e.pool.Query(ctx, `SELECT coalesce(error, '') || ' (' || count(*) || ')' FROM readings WHERE status = 'FAILED' GROUP BY error`)
		if err == nil {
			for rows.Next() {
				var s string
				if rows.Scan(&s) == nil {
					reasons = append(reasons, s)
				}
			}
			rows.Close()
		}
		r.progressf("readings: FAILED: %v", reasons)
	}
	return nil
}

// loadAverage is the machine's 1-minute load average, for the progress
// output: the box is shared, and a figure means little without it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// readingBurstLatencies prints request → completed_at beyond the sensor:
// minus the capture (start + capture delay) and minus the time the
// gateway was still capturing the reading of its other sensor (the
// physical queue: one acquisition at a time per gateway), so what is left
// is what gatewayd added.
func readingBurstLatencies(ctx context.Context, e *env, r *report, requested []readingRequest) error {
	sentAt := make(map[uuid.UUID]time.Time, len(requested))
	posts := make([]time.Duration, 0, len(requested))
	for _, s := range requested {
		sentAt[s.id] = s.at
		posts = append(posts, s.took)
	}
	slices.Sort(posts)
	r.value("burst_post_p50", ms(percentile(posts, 50)), "ms")
	r.value("burst_post_p99", ms(percentile(posts, 99)), "ms")
	rows, err := e.pool.Query(ctx, `SELECT id, gateway_id, started_at, completed_at FROM readings
		WHERE trigger = 'MANUAL' AND status = 'COMPLETE' ORDER BY gateway_id, started_at`)
	if err != nil {
		return fmt.Errorf("read readings: %w", err)
	}
	defer rows.Close()
	var raw, beyond []time.Duration
	var prevGateway uuid.UUID
	var prevCaptureEnd time.Time
	for rows.Next() {
		var id, gw uuid.UUID
		var started, completed time.Time
		if err := rows.Scan(&id, &gw, &started, &completed); err != nil {
			return fmt.Errorf("read readings: %w", err)
		}
		t0, ok := sentAt[id]
		if !ok {
			return fmt.Errorf("reading %s was not requested by this run", id)
		}
		from := t0
		if gw == prevGateway && prevCaptureEnd.After(from) {
			from = prevCaptureEnd
		}
		raw = append(raw, completed.Sub(t0))
		beyond = append(beyond, completed.Sub(from)-readingSensorTime)
		prevGateway, prevCaptureEnd = gw, started.Add(readingCaptureDelay)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read readings: %w", err)
	}
	slices.Sort(raw)
	slices.Sort(beyond)
	if len(raw) == 0 {
		return nil
	}
	r.value("burst_request_to_complete_p50", ms(percentile(raw, 50)), "ms")
	r.value("burst_request_to_complete_p99", ms(percentile(raw, 99)), "ms")
	r.value("burst_beyond_capture_p50", ms(percentile(beyond, 50)), "ms")
	r.value("burst_beyond_capture_p99", ms(percentile(beyond, 99)), "ms")
	r.value("burst_beyond_capture_max", ms(beyond[len(beyond)-1]), "ms")
	return nil
}

// readingStorage prints the readings' and samples' tables (with TOAST and
// indexes) over the readings stored.
func readingStorage(ctx context.Context, e *env, r *report, complete int) error {
	if complete == 0 {
		return nil
	}
	var samples, rows int64
	if err := e.pool.QueryRow(ctx, `SELECT pg_total_relation_size('reading_samples'), pg_total_relation_size('readings')`).Scan(&samples, &rows); err != nil {
		return fmt.Errorf("table sizes: %w", err)
	}
	r.value("burst_storage_samples_per_reading", float64(samples)/float64(complete)/1024, "KiB")
	r.value("burst_storage_rows_per_reading", float64(rows)/float64(complete)/1024, "KiB")
	r.value("burst_storage_per_reading", float64(samples+rows)/float64(complete)/1024, "KiB")
	return nil
}

// readingSchedule: every sensor on a reading_interval of one minute (the
// least the API allows) for o.readingSchedule. Each sensor's k-th
// scheduled reading is due at its first one + k minutes (the first comes
// at an offset of the sensor's own, by design), and whole minutes between
// the window's start and the first reading are due times lost
// (tallySchedule); lateness is requested_at minus the due time.
func readingSchedule(ctx context.Context, e *env, r *report) error {
	interval := e.o.readingInterval
	if interval <= 0 {
		interval = time.Minute
	}
	sensors, err := readingSetup(ctx, e, r)
	if err != nil {
		return err
	}
	idleP99, idlePeak, err := readingIdle(e, r, "schedule")
	if err != nil {
		return err
	}
	failedPuts, firstErr := eachConcurrently(len(sensors), e.o.concurrency, func(i int) error {
		return e.call("PUT", "/sensors/"+sensors[i].id.String(), map[string]any{"reading_interval": interval.String()}, 200, nil)
	})
	if failedPuts > 0 {
		return fmt.Errorf("%d of %d schedule updates failed, the first: %v", failedPuts, len(sensors), firstErr)
	}
	// The window starts when the last schedule is set: a PUT re-arms its
	// gateway's schedules, so earlier readings may be re-armed ones.
	t0 := time.Now()
	end := t0.Add(e.o.readingSchedule)
	r.progressf("readings: %d sensors scheduled every %s; watching until %s", len(sensors), interval, end.Format("15:04:05"))
	stopPeak := samplePeak(e.rssKiB)
	stopPoll, err := statusPollers(e)
	if err != nil {
		stopPeak()
		return err
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		time.Sleep(min(time.Until(end), 30*time.Second))
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE trigger = 'SCHEDULED'`).Scan(&n)
		r.progressf("readings: %d scheduled readings so far, rss %d KiB", n, e.rssKiB())
	}
	lat, pollFailed, err := stopPoll()
	peak := stopPeak()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	// A reading due just before the end may be requested a little after
	// it; give those time to be requested, then to finish.
	grace := min(5*time.Second, e.o.readingSchedule/3)
	time.Sleep(grace)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var unfinished int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE trigger = 'SCHEDULED' AND requested_at <= $1
			AND status IN ('QUEUED', 'RUNNING')`, end.Add(grace)).Scan(&unfinished); err != nil {
			return fmt.Errorf("count readings: %w", err)
		}
		if unfinished == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d scheduled readings still unfinished 2m after the end", unfinished)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := e.pool.Query(ctx, `SELECT sensor_id, status, requested_at, coalesce(completed_at, requested_at) FROM readings
		WHERE trigger = 'SCHEDULED' AND requested_at >= $1 AND requested_at <= $2 ORDER BY sensor_id, requested_at`, t0, end.Add(grace))
	if err != nil {
		return fmt.Errorf("read readings: %w", err)
	}
	bySensor := map[uuid.UUID][]scheduledReading{}
	for rows.Next() {
		var sensor uuid.UUID
		var x scheduledReading
		if err := rows.Scan(&sensor, &x.status, &x.requested, &x.completed); err != nil {
			rows.Close()
			return fmt.Errorf("read readings: %w", err)
		}
		bySensor[sensor] = append(bySensor[sensor], x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read readings: %w", err)
	}
	var before int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE trigger = 'SCHEDULED' AND requested_at < $1`, t0).Scan(&before); err != nil {
		return fmt.Errorf("count readings: %w", err)
	}

	tl := tallySchedule(t0, end, interval, sensors, bySensor)
	r.value("schedule_sensors", float64(len(sensors)), "count")
	r.value("schedule_length", e.o.readingSchedule.Seconds(), "s")
	r.value("schedule_expected", float64(tl.expected), "count")
	r.value("schedule_complete", float64(tl.complete), "count")
	r.value("schedule_failed", float64(tl.failed), "count")
	r.value("schedule_missing", float64(tl.missing), "count")
	r.value("schedule_sensors_never_read", float64(tl.silent), "count")
	r.value("schedule_duplicates", float64(tl.extra), "count")
	r.value("schedule_before_window", float64(before), "count")
	if len(tl.late) > 0 {
		r.value("schedule_lateness_p50", ms(percentile(tl.late, 50)), "ms")
		r.value("schedule_lateness_p99", ms(percentile(tl.late, 99)), "ms")
		r.value("schedule_lateness_max", ms(tl.late[len(tl.late)-1]), "ms")
		r.value("schedule_lateness_last_max", ms(tl.lastLate), "ms")
	}
	if len(tl.took) > 0 {
		r.value("schedule_request_to_complete_p99", ms(percentile(tl.took, 99)), "ms")
	}
	if err := readingLoadFigures(r, "schedule", lat, pollFailed, idleP99, peak, idlePeak); err != nil {
		return err
	}
	if tl.missing > 0 || tl.failed > 0 {
		return fmt.Errorf("%d scheduled readings missing and %d failed of %d expected", tl.missing, tl.failed, tl.expected)
	}
	return nil
}

// scheduledReading is one SCHEDULED reading in the schedule's window.
type scheduledReading struct {
	status               string
	requested, completed time.Time
}

// scheduleTally is the schedule's window: the readings due, what became
// of them, and how late they came.
type scheduleTally struct {
	expected, complete, failed, missing int
	extra                               int             // a due time read twice
	silent                              int             // sensors without a reading
	late, took                          []time.Duration // sorted
	lastLate                            time.Duration   // the largest lateness of a sensor's last reading: drift
}

// firstLateness is the most a sensor's first reading in the window may
// come after t0 + interval and still be taken for a late one rather than
// for the next after a lost one (its due time is not known, so its
// lateness cannot be measured): a first reading lost within this much of
// t0 goes unnoticed.
func firstLateness(interval time.Duration) time.Duration { return min(5*time.Second, interval/4) }

// tallySchedule matches each sensor's readings in the window [t0, end]
// (requested by end and a grace after it, in order) with its due times.
// A sensor's schedule is armed by t0 (a PUT re-arms its gateway's
// schedules, and t0 follows the last PUT), and its due times lie on a
// grid of the interval (README: scheduled readings keep their grid), so
// one of them falls in [t0, t0 + interval): the first reading is that
// one unless it was lost, and each whole interval between t0 (plus
// firstLateness) and the first reading is a due time without a reading.
// The later due times are counted from the first reading.
func tallySchedule(t0, end time.Time, interval time.Duration, sensors []readingSensor, bySensor map[uuid.UUID][]scheduledReading) scheduleTally {
	var tl scheduleTally
	window := end.Sub(t0)
	for _, s := range sensors {
		list := bySensor[s.id]
		if len(list) > 0 && list[0].requested.After(end) {
			list = nil // its first reading fell due after the end
		}
		if len(list) == 0 {
			// The first reading comes within one interval of t0, so a
			// window of at least one interval owes one per interval.
			if window >= interval {
				tl.expected += int(window / interval)
				tl.missing += int(window / interval)
				tl.silent++
			}
			continue
		}
		first := list[0].requested
		lost := max(0, int((first.Sub(t0)-firstLateness(interval))/interval)) // due before the first reading
		due := int(end.Sub(first)/interval) + 1                               // k = 0 … due-1 are due by the end
		tl.expected += lost + due
		seen := map[int]bool{}
		for _, x := range list {
			k := int((x.requested.Sub(first) + interval/2) / interval)
			if k >= due {
				continue // due after the end
			}
			if seen[k] {
				tl.extra++
				continue
			}
			seen[k] = true
			// The first reading defines the due times: lateness from k = 1.
			if k > 0 {
				l := x.requested.Sub(first.Add(time.Duration(k) * interval))
				tl.late = append(tl.late, l)
				if k == due-1 {
					tl.lastLate = max(tl.lastLate, l)
				}
			}
			switch x.status {
			case "COMPLETE":
				tl.complete++
				tl.took = append(tl.took, x.completed.Sub(x.requested))
			case "FAILED":
				tl.failed++
			}
		}
		tl.missing += lost + due - len(seen)
	}
	slices.Sort(tl.late)
	slices.Sort(tl.took)
	return tl
}

// simSensors is how many sensors the simulated gateways list: the rows
// gatewayd will have once it has discovered them all.
func (e *env) simSensors() int {
	n := 0
	for _, g := range e.sims {
		n += len(g.Sensors())
	}
	return n
}
