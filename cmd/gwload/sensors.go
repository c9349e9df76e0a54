package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// sensorSerialBase is where the sensors scenario's serials start. Each
// simulated gateway gets serials of its own (gateway i, sensor j:
// base + i·k + j), as real sensors have, so a row stored under the wrong
// gateway shows up in the check instead of matching by accident.
const sensorSerialBase = 1_000_000

// sensorHalf is what one cold start of the sensors scenario measured.
// cpuUse is CPU time of gatewayd, of its PostgreSQL backends and of gwload
// itself (the simulator's side of every login and discovery, and the
// polling, which is the same in both halves).
type cpuUse struct{ gatewayd, pg, gwload time.Duration }

type sensorHalf struct {
	authenticated time.Duration // process start → all AUTHENTICATED
	rows          time.Duration // process start → every sensor row stored
	conns, busy   int           // peak connections of gatewayd; of them, not idle
	// CPU used by gatewayd and by its PostgreSQL backends from the
	// process start until all are AUTHENTICATED, and until all rows are
	// stored: work, which the noise of a shared box does not stretch as
	// much as it stretches time.
	authCPU, rowsCPU cpuUse
	rss              int // KiB, settled
}

// sensors (issue #13): a cold start of o.gateways gateways with
// o.sensorsPerGateway sensors each, against the same cold start with none,
// each on a fresh database, simulator and gatewayd, in one run so that the
// ratios compare like with like on a noisy machine. -sensors-first runs
// the half with sensors first (alternate it between runs).
func sensors(ctx context.Context, o *options, r *report) error {
	if o.sensorsPerGateway < 1 {
		return fmt.Errorf("-sensors-per-gateway must be at least 1, not %d", o.sensorsPerGateway)
	}
	order := []int{0, o.sensorsPerGateway}
	if o.sensorsFirst {
		slices.Reverse(order)
	}
	halves := map[int]sensorHalf{}
	for _, k := range order {
		// The box is shared: the load average says how noisy each half was.
		r.progressf("cold start of %d gateways with %d sensors each (load average %s)", o.gateways, k, loadAvg())
		var h sensorHalf
		if err := isolated(ctx, o, func(e *env) (err error) {
			h, err = sensorColdStart(ctx, e, r, k)
			return err
		}); err != nil {
			return fmt.Errorf("%d sensors per gateway: %w", k, err)
		}
		halves[k] = h
	}
	without, with := halves[0], halves[o.sensorsPerGateway]
	r.value("sensors_gateways", float64(o.gateways), "count")
	r.value("sensors_per_gateway", float64(o.sensorsPerGateway), "count")
	r.value("sensors_rows", float64(o.gateways*o.sensorsPerGateway), "count")
	r.value("sensors_without_all_authenticated", without.authenticated.Seconds(), "s")
	r.value("sensors_with_all_authenticated", with.authenticated.Seconds(), "s")
	r.value("sensors_with_all_rows", with.rows.Seconds(), "s")
	r.value("sensors_authenticated_ratio", with.authenticated.Seconds()/without.authenticated.Seconds(), "ratio")
	r.value("sensors_rows_ratio", with.rows.Seconds()/without.authenticated.Seconds(), "ratio")
	r.value("sensors_without_db_conns_peak", float64(without.conns), "count")
	r.value("sensors_with_db_conns_peak", float64(with.conns), "count")
	r.value("sensors_without_db_busy_peak", float64(without.busy), "count")
	r.value("sensors_with_db_busy_peak", float64(with.busy), "count")
	r.value("sensors_without_gatewayd_cpu_to_authenticated", without.authCPU.gatewayd.Seconds(), "s")
	r.value("sensors_with_gatewayd_cpu_to_authenticated", with.authCPU.gatewayd.Seconds(), "s")
	r.value("sensors_with_gatewayd_cpu_to_rows", with.rowsCPU.gatewayd.Seconds(), "s")
	r.value("sensors_without_pg_cpu_to_authenticated", without.authCPU.pg.Seconds(), "s")
	r.value("sensors_with_pg_cpu_to_authenticated", with.authCPU.pg.Seconds(), "s")
	r.value("sensors_with_pg_cpu_to_rows", with.rowsCPU.pg.Seconds(), "s")
	r.value("sensors_without_gwload_cpu_to_authenticated", without.authCPU.gwload.Seconds(), "s")
	r.value("sensors_with_gwload_cpu_to_authenticated", with.authCPU.gwload.Seconds(), "s")
	r.value("sensors_without_rss", float64(without.rss)/1024, "MiB")
	r.value("sensors_with_rss", float64(with.rss)/1024, "MiB")
	if n := o.gateways * o.sensorsPerGateway; n > 0 {
		r.value("sensors_rss_per_sensor", float64(with.rss-without.rss)/float64(n), "KiB")
	}
	return nil
}

// sensorColdStart seeds e with gateways of k sensors each, starts gatewayd
// and measures until every gateway is AUTHENTICATED and every sensor row
// is stored and checked, then reads the settled RSS. Database connections
// are sampled from before the process starts until the RSS is read.
func sensorColdStart(ctx context.Context, e *env, r *report, k int) (sensorHalf, error) {
	var h sensorHalf
	if e.o.target != "" {
		return h, errors.New("sensors needs its own gatewayd (a cold start); run it without -target")
	}
	e.sensors = func(i int) []ctc.Sensor {
		list := ctctest.DefaultSensors(k)
		for j := range list {
			list[j].Serial = sensorSerialBase + int64(i*k+j)
		}
		return list
	}
	if err := e.seed(ctx, e.o.gateways); err != nil {
		return h, fmt.Errorf("seed: %w", err)
	}
	stopSampling := sampleConns(ctx, e)
	gwload0 := cpuTicks(os.Getpid())
	var extra []string
	if e.o.debugAddr != "" {
		extra = append(extra, "DEBUG_ADDR="+e.o.debugAddr)
	}
	started, err := e.startGatewayd(extra...)
	if err != nil {
		stopSampling()
		return h, err
	}
	err = e.waitAuthenticated(len(e.ids), 5*time.Minute)
	h.authenticated = time.Since(started)
	h.authCPU = e.cpuUse(ctx, gwload0)
	if err == nil {
		r.progressf("%d sensors each: all %d authenticated after %s", k, len(e.ids), h.authenticated.Round(time.Millisecond))
		err = e.waitSensorRows(ctx, len(e.ids)*k, 5*time.Minute)
		h.rows = time.Since(started)
	}
	if err == nil {
		r.progressf("%d sensors each: all %d rows after %s (load average %s)", k, len(e.ids)*k, h.rows.Round(time.Millisecond), loadAvg())
		h.rowsCPU = e.cpuUse(ctx, gwload0)
		err = e.checkSensorRows(ctx)
	}
	if err == nil {
		time.Sleep(e.o.settle)
		h.rss = e.rssKiB()
	}
	h.conns, h.busy = stopSampling()
	return h, err
}

// waitSensorRows polls the sensors table until it holds want rows; a
// count(*) of at most a few tens of thousands of rows every 20 ms is a
// small cost next to the inserts it waits for.
func (e *env) waitSensorRows(ctx context.Context, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := 0
	for {
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM sensors WHERE deleted_at IS NULL`).Scan(&last); err != nil {
			return fmt.Errorf("count sensors: %w", err)
		}
		if last >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d sensor rows after %s", last, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSensorRows compares the stored sensors with what each simulated
// gateway lists: the same serials under the same gateway (so the count per
// gateway too), the simulator's names, and connected.
func (e *env) checkSensorRows(ctx context.Context) error {
	type row struct {
		gateway   uuid.UUID
		serial    int64
		name      string
		connected bool
	}
	rows, err := e.pool.Query(ctx, `SELECT gateway_id, serial, name, connected FROM sensors WHERE deleted_at IS NULL`)
	if err != nil {
		return fmt.Errorf("read sensors: %w", err)
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var v row
		err := r.Scan(&v.gateway, &v.serial, &v.name, &v.connected)
		return v, err
	})
	if err != nil {
		return fmt.Errorf("read sensors: %w", err)
	}
	byGateway := make(map[uuid.UUID]map[int64]row, len(e.ids))
	for _, s := range stored {
		m := byGateway[s.gateway]
		if m == nil {
			m = map[int64]row{}
			byGateway[s.gateway] = m
		}
		m[s.serial] = s
	}
	wrong := 0
	var first string
	for i, id := range e.ids {
		want := e.sims[i].Sensors()
		got := byGateway[id]
		ok := len(got) == len(want)
		for _, s := range want {
			g, found := got[s.Serial]
			ok = ok && found && g.name == s.Name && g.connected
		}
		if !ok {
			wrong++
			if first == "" {
				first = fmt.Sprintf("gateway %s (%s): %d rows stored, %d listed", id, e.sims[i].Name(), len(got), len(want))
			}
		}
	}
	if wrong > 0 {
		return fmt.Errorf("%d gateways' sensor rows do not match what they list; first: %s", wrong, first)
	}
	// Every listed sensor matched, so more rows than listed are rows under
	// some other gateway.
	listed := 0
	for _, g := range e.sims {
		listed += len(g.Sensors())
	}
	if len(stored) != listed {
		return fmt.Errorf("%d sensor rows stored, %d listed", len(stored), listed)
	}
	return nil
}

// cpuUse is the CPU time so far of gatewayd and of its backends, and
// gwload's since it had used gwload0 ticks.
func (e *env) cpuUse(ctx context.Context, gwload0 int64) cpuUse {
	d := func(ticks int64) time.Duration {
		return time.Duration(float64(ticks) / clockTicks * float64(time.Second))
	}
	return cpuUse{gatewayd: d(e.procTicks()), pg: d(e.gatewaydBackendTicks(ctx)), gwload: d(cpuTicks(os.Getpid()) - gwload0)}
}

// gatewaydBackendTicks is the CPU time so far of the PostgreSQL backends
// that serve gatewayd (found as sampleConns finds them); a backend that
// has already ended is not counted.
func (e *env) gatewaydBackendTicks(ctx context.Context) int64 {
	rows, err := e.pool.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> $2`, e.dbName, gwloadAppName)
	if err != nil {
		return 0
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0
	}
	var sum int64
	for _, pid := range pids {
		sum += cpuTicks(int(pid))
	}
	return sum
}

// loadAvg is the 1, 5 and 15 minute load averages of the box.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// sampleConns counts gatewayd's connections to the scenario's database in
// pg_stat_activity every 50 ms until the returned stop is called, which
// returns the peak of all of them and of those not idle. gwload's own
// connections are told apart by their application_name (gatewayd sets
// none); the sampler's own query is one of them.
func sampleConns(ctx context.Context, e *env) (stop func() (conns, busy int)) {
	var peak, peakBusy atomic.Int64
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			var n, busy int64
			err := e.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state <> 'idle')
				FROM pg_stat_activity
				WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> $2`,
				e.dbName, gwloadAppName).Scan(&n, &busy)
			if err == nil {
				peak.Store(max(peak.Load(), n))
				peakBusy.Store(max(peakBusy.Load(), busy))
			}
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() (int, int) {
		close(quit)
		<-finished
		return int(peak.Load()), int(peakBusy.Load())
	}
}
