package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// coldstart: N active gateways in the database; from process start to all
// AUTHENTICATED, and the RSS that costs. The env stays up for status/storm.
func coldstart(ctx context.Context, o *options, r *report) (*env, error) {
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	if _, err := e.startGatewayd(); err != nil {
		return e, err
	}
	time.Sleep(o.settle)
	idle := e.rssKiB()
	e.stopGatewayd()
	r.value("idle_rss", float64(idle)/1024, "MiB")

	r.progressf("seeding %d gateways", o.gateways)
	if err := e.seed(ctx, o.gateways); err != nil {
		return e, err
	}
	started, err := e.startGatewayd()
	if err != nil {
		return e, err
	}
	if err := e.waitAuthenticated(o.gateways, 5*time.Minute); err != nil {
		return e, err
	}
	took := time.Since(started)
	r.value("coldstart_gateways", float64(o.gateways), "count")
	r.value("coldstart_all_authenticated", took.Seconds(), "s")
	time.Sleep(o.settle)
	rss := e.rssKiB()
	r.value("connected_rss", float64(rss)/1024, "MiB")
	r.value("rss_per_gateway", float64(rss-idle)/float64(o.gateways), "KiB")
	return e, nil
}

// status: single-gateway status at o.concurrency clients, and the full list.
func status(ctx context.Context, e *env, r *report) error {
	ids := e.ids
	res := e.load(ctx, e.o.duration, func(w, i int) error {
		return e.call("GET", "/gateways/"+ids[rand.IntN(len(ids))].String()+"/status", nil, 200, nil)
	})
	if err := res.err(); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	r.value("status_rate", res.rate(), "req/s")
	r.value("status_p50", ms(percentile(res.latencies, 50)), "ms")
	r.value("status_p99", ms(percentile(res.latencies, 99)), "ms")
	if bin, err := exec.LookPath("wrk"); err == nil {
		w, err := runWrk(ctx, e.wrk(bin, "GET", "/api/gateways/{id}/status", "", idStrings(ids), 0))
		if err != nil {
			return err
		}
		if w.non2xx > 0 {
			return fmt.Errorf("wrk: %d status requests failed", w.non2xx)
		}
		r.value("status_wrk_rate", w.rate, "req/s")
		r.value("status_wrk_p50", w.p50, "ms")
		r.value("status_wrk_p99", w.p99, "ms")
	}
	var list []time.Duration
	for range 21 {
		t0 := time.Now()
		var body struct{ Data []struct{ State string } }
		if err := e.call("GET", "/gateways/status", nil, 200, &body); err != nil {
			return err
		}
		list = append(list, time.Since(t0))
		if len(body.Data) != len(ids) {
			return fmt.Errorf("status list has %d entries, want %d", len(body.Data), len(ids))
		}
	}
	slices.Sort(list)
	r.value("status_list_gateways", float64(len(ids)), "count")
	r.value("status_list_p50", ms(percentile(list, 50)), "ms")
	r.value("status_list_max", ms(list[len(list)-1]), "ms")
	return nil
}

// storm: the simulator drops every connection at once.
func storm(e *env, r *report) error {
	e.sim.ResetHandshakePeak()
	took, err := dropAll(e)
	if err != nil {
		return err
	}
	r.value("storm_gateways", float64(len(e.sims)), "count")
	r.value("storm_all_reauthenticated", took.Seconds(), "s")
	r.value("storm_peak_handshakes_in_flight", float64(e.sim.HandshakePeak()), "count")
	return nil
}

type statusBody struct {
	State    string
	Restarts int
}

// pollState asks for a gateway's status until ok says so.
func (e *env) pollState(id string, timeout time.Duration, ok func(statusBody) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		var st statusBody
		if err := e.call("GET", "/gateways/"+id+"/status", nil, 200, &st); err == nil && ok(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %s: last state %s", id, st.State)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// create: POST a gateway, then poll until it is AUTHENTICATED.
func create(e *env, r *report) error {
	if _, err := e.startGatewayd(); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, e.o.creates)
	for i := range e.o.creates {
		name := fmt.Sprintf("create-%05d-%s", i, e.idTag())
		g := e.sim.Add(name, ctctest.Config{Email: "c@example.com", Password: "pw"})
		t0 := time.Now()
		var out struct{ ID string }
		if err := e.call("POST", "/gateways", map[string]any{"factory_id": e.factory, "gateway_id": name, "name": name,
			"url": g.URL(), "email": "c@example.com", "password": "pw"}, 201, &out); err != nil {
			return err
		}
		if err := e.pollState(out.ID, 10*time.Second, func(s statusBody) bool { return s.State == "AUTHENTICATED" }); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		if (i+1)%250 == 0 {
			r.progressf("%d creates", i+1)
		}
	}
	reportLatencies(r, "create_to_authenticated", lat)
	return nil
}

// crash: crash each of N gateways once; time until it is AUTHENTICATED
// again with one more restart.
func crash(ctx context.Context, e *env, r *report) error {
	if err := e.seed(ctx, e.o.crashes); err != nil {
		return err
	}
	if _, err := e.startGatewayd(); err != nil {
		return err
	}
	if err := e.waitAuthenticated(len(e.ids), 2*time.Minute); err != nil {
		return err
	}
	lat := make([]time.Duration, 0, len(e.ids))
	for i, id := range e.ids {
		t0 := time.Now()
		if err := e.call("POST", "/debug/gateways/"+id.String()+"/crash", nil, 202, nil); err != nil {
			return err
		}
		if err := e.pollState(id.String(), 10*time.Second, func(s statusBody) bool {
			return s.Restarts == 1 && s.State == "AUTHENTICATED"
		}); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		if (i+1)%250 == 0 {
			r.progressf("%d crashes", i+1)
		}
	}
	reportLatencies(r, "crash_to_authenticated", lat)
	return nil
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

func pgbench(bin string, args []string) (float64, error) {
	res, err := pgbenchRun(bin, args, nil)
	return res.tps, err
}

// pgbenchResult is one pgbench run: its rate, and the CPU the reference
// itself used on the shared machine (pgbench's own, and its backends').
type pgbenchResult struct {
	tps                  float64
	clientCores, pgCores float64
}

// pgbenchRun runs pgbench; with backends (the CPU ticks of this run's
// PostgreSQL backends, as env.pgTicks reads them) it also measures the
// CPU the reference used. The backends are pgbench's own and end with
// it, so they are sampled while it runs: the last 100 ms of each may be
// missed.
func pgbenchRun(bin string, args []string, backends func() map[int]int64) (pgbenchResult, error) {
	var res pgbenchResult
	var before map[int]int64
	last := map[int]int64{}
	stop, sampled := make(chan struct{}), make(chan struct{})
	if backends != nil {
		before = backends()
		go func() {
			defer close(sampled)
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				for pid, ticks := range backends() {
					last[pid] = ticks
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	} else {
		close(sampled)
	}
	start := time.Now()
	cmd := exec.Command(bin, args...)
	out, err := cmd.CombinedOutput()
	took := time.Since(start).Seconds()
	close(stop)
	<-sampled
	if err != nil {
		return res, fmt.Errorf("pgbench %v: %v: %s", args, err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return res, fmt.Errorf("pgbench printed no tps: %s", out)
	}
	if res.tps, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return res, err
	}
	if backends != nil && took > 0 {
		var ticks int64
		for pid, t := range last {
			ticks += t - before[pid]
		}
		res.pgCores = float64(ticks) / clockTicks / took
		st := cmd.ProcessState
		res.clientCores = (st.UserTime() + st.SystemTime()).Seconds() / took
	}
	return res, nil
}

// soak: the gatewayd binary with N gateways, random crashes and drops for
// o.soak; RSS, live heap and goroutines (read from its DEBUG_ADDR pprof)
// at the start and the end, and every gateway AUTHENTICATED with one
// socket.
func soak(ctx context.Context, o *options, r *report) error {
	e, err := newEnv(ctx, o)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.seed(ctx, o.soakGateways); err != nil {
		return err
	}
	if o.target != "" {
		return errors.New("soak needs its own gatewayd (its DEBUG_ADDR is read); run it without -target")
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if _, err := e.startGatewayd("DEBUG_ADDR=" + debugAddr); err != nil {
		return err
	}
	if err := e.waitAuthenticated(len(e.ids), 2*time.Minute); err != nil {
		return err
	}
	// RSS keeps freed pages for a while; the live heap after a forced GC
	// is what a leak would grow.
	settle := func() (rss, goroutines int, live uint64, err error) {
		time.Sleep(o.settle)
		goroutines, live, err = e.debugStats(debugAddr)
		return e.rssKiB(), goroutines, live, err
	}
	rss0, g0, heap0, err := settle()
	if err != nil {
		return err
	}
	r.progressf("soak start: rss %d KiB, %d goroutines", rss0, g0)
	end := time.Now().Add(o.soak)
	var crashes soakCrashes
	drops := 0
	next := time.Now()
	for time.Now().Before(end) && ctx.Err() == nil {
		id := e.ids[rand.IntN(len(e.ids))]
		crashes.add(e.call("POST", "/debug/gateways/"+id.String()+"/crash", nil, 202, nil))
		e.sims[rand.IntN(len(e.sims))].Drop(websocket.CloseGoingAway)
		drops++
		if time.Now().After(next) {
			g, live, err := e.debugStats(debugAddr)
			if err != nil {
				return err
			}
			r.progressf("soak: %d crashes, %d drops, rss %d KiB, live heap %.1f MiB, %d goroutines",
				crashes.crashed, drops, e.rssKiB(), float64(live)/(1<<20), g)
			next = time.Now().Add(30 * time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var list struct{ Data []struct{ ID, State string } }
	if err := e.call("GET", "/gateways/status", nil, 200, &list); err != nil {
		return err
	}
	for _, s := range list.Data {
		if s.State == "FAILED" {
			if err := e.call("POST", "/gateways/"+s.ID+"/connect", nil, 202, nil); err != nil {
				return err
			}
		}
	}
	if err := e.waitAuthenticated(len(e.ids), 2*time.Minute); err != nil {
		return err
	}
	rss1, g1, heap1, err := settle()
	if err != nil {
		return err
	}
	lost := 0
	for _, g := range e.sims {
		if g.Stats().Open != 1 {
			lost++
		}
	}
	r.value("soak_gateways", float64(len(e.ids)), "count")
	r.value("soak_duration", o.soak.Seconds(), "s")
	r.value("soak_crashes", float64(crashes.crashed), "count")
	r.value("soak_crashes_refused_failed", float64(crashes.refused), "count")
	r.value("soak_crash_requests_failed", float64(crashes.failed), "count")
	r.value("soak_drops", float64(drops), "count")
	r.value("soak_rss_start", float64(rss0)/1024, "MiB")
	r.value("soak_rss_end", float64(rss1)/1024, "MiB")
	r.value("soak_live_heap_start", float64(heap0)/(1<<20), "MiB")
	r.value("soak_live_heap_end", float64(heap1)/(1<<20), "MiB")
	r.value("soak_goroutines_start", float64(g0), "count")
	r.value("soak_goroutines_end", float64(g1), "count")
	r.value("soak_gateways_without_one_socket", float64(lost), "count")
	if lost > 0 {
		return fmt.Errorf("%d gateways do not have exactly one socket", lost)
	}
	if crashes.failed > 0 {
		return fmt.Errorf("%d crash requests failed, the first: %w", crashes.failed, crashes.first)
	}
	return nil
}

// soakCrashes counts the soak's crash requests by their answers.
type soakCrashes struct {
	crashed, refused, failed int
	first                    error // of the failed
}

// add counts one crash request's answer: 202; 409 for a gateway whose
// actor is not running (FAILED after too many crashes in a row, which
// random crashes may well cause: a refusal the contract gives, and the
// soak reconnects those at the end); anything else (a 5xx, a 404, a
// timeout) is a failed request, which the soak must not take for a
// quiet stretch.
func (c *soakCrashes) add(err error) {
	var st *statusError
	switch {
	case err == nil:
		c.crashed++
	case errors.As(err, &st) && st.code == http.StatusConflict:
		c.refused++
	default:
		if c.failed++; c.first == nil {
			c.first = err
		}
	}
}
