package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	res := runLoad(ctx, e.o.concurrency, e.o.duration, e.rssKiB, func(w, i int) error {
		return e.call("GET", "/gateways/"+ids[rand.IntN(len(ids))].String()+"/status", nil, 200, nil)
	})
	if res.errors > 0 {
		return fmt.Errorf("%d status requests failed", res.errors)
	}
	r.value("status_rate", res.rate(), "req/s")
	r.value("status_p50", ms(percentile(res.latencies, 50)), "ms")
	r.value("status_p99", ms(percentile(res.latencies, 99)), "ms")
	if bin, err := exec.LookPath("wrk"); err == nil {
		w, err := runWrk(ctx, bin, strings.TrimSuffix(e.api, "/api"), e.o.concurrency, e.o.duration, "GET", "/api/gateways/{id}/status", "", idStrings(ids), 0, e.rssKiB)
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
	n := len(e.sims)
	before := e.sim.Logins()
	e.sim.ResetHandshakePeak()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				e.sims[i].Drop(websocket.CloseGoingAway)
			}
		}()
	}
	wg.Wait()
	r.progressf("dropped %d connections in %s", n, time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(2 * time.Minute)
	for e.sim.Logins() < before+n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d gateways logged in again", e.sim.Logins()-before, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.waitAuthenticated(n, time.Minute); err != nil {
		return err
	}
	r.value("storm_gateways", float64(n), "count")
	r.value("storm_all_reauthenticated", time.Since(start).Seconds(), "s")
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

// crud: CRUD throughput at o.concurrency clients against pgbench running
// the same statements at the same concurrency, in the same run.
func crud(ctx context.Context, e *env, r *report) error {
	if e.o.target != "" {
		return errors.New("crud compares with pgbench on the same database; it needs its own gatewayd")
	}
	n := e.o.crudRows
	factories := make([]uuid.UUID, 0, n)
	for i := range n {
		id := uuid.New()
		factories = append(factories, id)
		if _, err := e.pool.Exec(ctx, `INSERT INTO factories (id, organization_id, name) VALUES ($1, $2, $3)`,
			id, e.org, fmt.Sprintf("factory-%05d", i)); err != nil {
			return err
		}
	}
	if _, err := e.pool.Exec(ctx, `CREATE TABLE bench_factories AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM factories`); err != nil {
		return err
	}
	if err := e.seed(ctx, n); err != nil {
		return err
	}
	if _, err := e.pool.Exec(ctx, `CREATE TABLE bench_gateways AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM gateways`); err != nil {
		return err
	}
	// A live database is autovacuumed; freshly copied rows are not, and
	// without a visibility map no scan can be index-only.
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	// Reconciliation stays out of the measurement; pgbench's gateways are
	// soft-deleted before gatewayd would ever read them.
	if _, err := e.startGatewayd("RECONCILE_INTERVAL=1h"); err != nil {
		return err
	}
	if err := e.waitAuthenticated(n, 2*time.Minute); err != nil {
		return err
	}
	pgb, err := exec.LookPath("pgbench")
	if err != nil {
		r.progressf("pgbench not found; gatewayd figures only")
	}
	tmp, err2 := os.MkdirTemp("", "gwload")
	if err2 != nil {
		return err2
	}
	defer os.RemoveAll(tmp)
	if pgb != "" {
		r.progressf("pgbench -i")
		if out, err := exec.Command(pgb, "-i", "-s", "10", "-q", "-n", e.dbURL).CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench -i: %v: %s", err, out)
		}
	}
	type phase struct {
		name   string
		op     func(w, i int) error
		script string // pgbench script of the same single statement; "" for the builtin -S
		// same is, for reads, a pgbench script of the exact SQL gatewayd
		// runs, to tell the database's share from gatewayd's.
		same string
		// The same request for wrk: method, path and body templates.
		method, path, body string
		ids                []string
	}
	wrkBin, _ := exec.LookPath("wrk")
	factoryIDs := idStrings(factories)
	phases := []phase{
		{"get_gateway", func(w, i int) error {
			return e.call("GET", "/gateways/"+e.ids[rand.IntN(len(e.ids))].String(), nil, 200, nil)
		}, "", fmt.Sprintf("\\set n random(1, %d)\nSELECT id, factory_id, gateway_id, name, url, email, model, firmware_version, last_seen_at, metadata, created_at, updated_at FROM gateways WHERE id = (SELECT id FROM bench_gateways WHERE n = :n) AND deleted_at IS NULL;\n", n),
			"GET", "/api/gateways/{id}", "", idStrings(e.ids)},
		{"list_factories", func(w, i int) error {
			return e.call("GET", "/factories?limit=20&offset="+strconv.Itoa(rand.IntN(n-20)), nil, 200, nil)
		}, "", fmt.Sprintf("\\set off random(0, %d)\nSELECT count(*) FROM factories WHERE deleted_at IS NULL;\nSELECT t.id, t.organization_id, t.name, t.location, t.timezone, t.metadata, t.created_at, t.updated_at FROM (SELECT id, name FROM factories WHERE deleted_at IS NULL ORDER BY name, id LIMIT 20 OFFSET :off) p JOIN factories t ON t.id = p.id ORDER BY p.name, p.id;\n", n-20),
			"GET", "/api/factories?limit=20&offset={offset}", "", factoryIDs},
		{"post_factory", func(w, i int) error {
			return e.call("POST", "/factories", map[string]any{"organization_id": e.org, "name": fmt.Sprintf("new-%d-%d", w, i)}, 201, nil)
		}, fmt.Sprintf("INSERT INTO factories (organization_id, name) VALUES ('%s', 'pg-factory');\n", e.org),
			fmt.Sprintf("INSERT INTO factories (organization_id, name, location, timezone, metadata) SELECT '%s', 'pg-same', NULL, 'UTC', '{}' WHERE EXISTS (SELECT 1 FROM organizations WHERE id = '%s' AND deleted_at IS NULL FOR SHARE) RETURNING id, organization_id, name, location, timezone, metadata, created_at, updated_at;\n", e.org, e.org),
			"POST", "/api/factories", fmt.Sprintf(`{"organization_id":"%s","name":"wrk-{n}"}`, e.org), factoryIDs},
		{"put_factory", func(w, i int) error {
			return e.call("PUT", "/factories/"+factories[rand.IntN(n)].String(), map[string]any{"name": fmt.Sprintf("renamed-%d-%d", w, i)}, 200, nil)
		}, fmt.Sprintf("\\set n random(1, %d)\nUPDATE factories SET name = 'pg-' || :n WHERE id = (SELECT id FROM bench_factories WHERE n = :n);\n", n),
			fmt.Sprintf("\\set n random(1, %d)\nUPDATE factories SET name = CASE WHEN true THEN 'pg-' || :n ELSE name END, location = CASE WHEN false THEN NULL ELSE location END, timezone = CASE WHEN false THEN 'UTC' ELSE timezone END, metadata = CASE WHEN false THEN '{}'::jsonb ELSE metadata END WHERE id = (SELECT id FROM bench_factories WHERE n = :n) AND deleted_at IS NULL RETURNING id, organization_id, name, location, timezone, metadata, created_at, updated_at;\n", n),
			"PUT", "/api/factories/{id}", `{"name":"wrk-{n}"}`, factoryIDs},
		{"post_gateway", func(w, i int) error {
			// A refused port: each new gateway's actor retries in BACKOFF
			// without holding a socket, as a real unreachable gateway would.
			return e.call("POST", "/gateways", map[string]any{"factory_id": e.factory, "gateway_id": fmt.Sprintf("post-%d-%d-%s", w, i, e.idTag()),
				"name": "posted", "url": "ws://127.0.0.1:9/gw", "email": "p@example.com", "password": "pw"}, 201, nil)
		}, fmt.Sprintf("INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted) VALUES ('%s', gen_random_uuid()::text, 'pg', 'ws://127.0.0.1:9/gw', 'p@example.com', 'sealed-AAAA');\n", e.factory),
			fmt.Sprintf("INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted, model, firmware_version, metadata) SELECT '%s', gen_random_uuid()::text, 'pg', 'ws://127.0.0.1:9/gw', 'p@example.com', 'sealed-AAAA', NULL, NULL, '{}' WHERE EXISTS (SELECT 1 FROM factories WHERE id = '%s' AND deleted_at IS NULL FOR SHARE) RETURNING id, factory_id, gateway_id, name, url, email, model, firmware_version, last_seen_at, metadata, created_at, updated_at;\n", e.factory, e.factory),
			"POST", "/api/gateways", fmt.Sprintf(`{"factory_id":"%s","gateway_id":"wrk-%s-{n}","name":"posted","url":"ws://127.0.0.1:9/gw","email":"p@example.com","password":"pw"}`, e.factory, e.idTag()), factoryIDs},
	}
	for _, p := range phases {
		r.progressf("crud %s", p.name)
		var rate, p99 float64
		var peak int
		if wrkBin != "" {
			w, err := runWrk(ctx, wrkBin, strings.TrimSuffix(e.api, "/api"), e.o.concurrency, e.o.duration, p.method, p.path, p.body, p.ids, n-20, e.rssKiB)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if w.non2xx > 0 {
				return fmt.Errorf("%s: %d requests failed", p.name, w.non2xx)
			}
			rate, p99, peak = w.rate, w.p99, w.peakRSS
		} else {
			res := runLoad(ctx, e.o.concurrency, e.o.duration, e.rssKiB, p.op)
			if res.errors > 0 {
				return fmt.Errorf("%s: %d requests failed", p.name, res.errors)
			}
			rate, p99, peak = res.rate(), ms(percentile(res.latencies, 99)), res.peakRSS
		}
		r.value("crud_"+p.name+"_rate", rate, "req/s")
		r.value("crud_"+p.name+"_p99", p99, "ms")
		r.value("crud_"+p.name+"_peak_rss", float64(peak)/1024, "MiB")
		if pgb == "" {
			continue
		}
		base := []string{"-n", "-c", strconv.Itoa(e.o.concurrency), "-j", "2", "-T", strconv.Itoa(max(1, int(e.o.duration.Seconds())))}
		script := func(name, sql string) ([]string, error) {
			f := filepath.Join(tmp, name+".sql")
			return append(slices.Clone(base), "-f", f, e.dbURL), os.WriteFile(f, []byte(sql), 0o600)
		}
		args := append(slices.Clone(base), "-S", e.dbURL)
		if p.script != "" {
			if args, err = script(p.name, p.script); err != nil {
				return err
			}
		}
		tps, err := pgbench(pgb, args)
		if err != nil {
			return err
		}
		r.value("crud_"+p.name+"_pgbench_rate", tps, "tx/s")
		r.value("crud_"+p.name+"_ratio", rate/tps, "ratio")
		if p.same != "" {
			sameArgs, err := script(p.name+"-same", p.same)
			if err != nil {
				return err
			}
			// gatewayd's statements are prepared (pgx caches them); the
			// reference gets the same advantage.
			sameArgs = append([]string{"-M", "prepared"}, sameArgs...)
			same, err := pgbench(pgb, sameArgs)
			if err != nil {
				return err
			}
			r.value("crud_"+p.name+"_pgbench_same_sql_rate", same, "tx/s")
		}
	}
	_, err = e.pool.Exec(ctx, `UPDATE gateways SET deleted_at = now() WHERE name IN ('pg', 'pg-same')`)
	return err
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
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench %v: %v: %s", args, err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
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
	crashes, drops := 0, 0
	next := time.Now()
	for time.Now().Before(end) && ctx.Err() == nil {
		id := e.ids[rand.IntN(len(e.ids))]
		if err := e.call("POST", "/debug/gateways/"+id.String()+"/crash", nil, 202, nil); err == nil {
			crashes++
		}
		e.sims[rand.IntN(len(e.sims))].Drop(websocket.CloseGoingAway)
		drops++
		if time.Now().After(next) {
			g, live, err := e.debugStats(debugAddr)
			if err != nil {
				return err
			}
			r.progressf("soak: %d crashes, %d drops, rss %d KiB, live heap %.1f MiB, %d goroutines",
				crashes, drops, e.rssKiB(), float64(live)/(1<<20), g)
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
	r.value("soak_crashes", float64(crashes), "count")
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
	return nil
}
