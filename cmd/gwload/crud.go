package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// benchID is the n-th (1-based) id of a kind of row seeded by crud: a
// pattern pgbench can compute from a random number, so its references
// look rows up by id exactly as gatewayd does, with no lookup table.
func benchID(kind, n int) uuid.UUID {
	return uuid.MustParse(fmt.Sprintf("%08d-0000-4000-8000-%012d", kind, n))
}

// benchIDSQL is benchID in SQL, for pgbench scripts (:n is the number).
func benchIDSQL(kind int) string {
	return fmt.Sprintf("('%08d-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid", kind)
}

const (
	kindFactory = 1
	kindGateway = 2
)

// The statements gatewayd runs (store/*.go), for the pgbench references.
// Keep them in step with the store. A request alone runs these; under
// load gatewayd shares one statement among concurrent requests of a kind
// (store/coalesce.go, store/writes.go), and the reference stays what each
// request asks for: its own statement in its own transaction.
const (
	factoryCols = `id, organization_id, name, location, timezone, metadata, created_at, updated_at`
	gatewayCols = `id, factory_id, gateway_id, name, url, email, model, firmware_version, last_seen_at, desired_state, metadata, created_at, updated_at`
)

// The statements' ids are parameters that gatewayd makes (random, as
// gen_random_uuid's), and its "which fields does the patch set" flags are
// parameters too: literal booleans would let PostgreSQL fold the CASEs
// away, a cheaper statement than gatewayd's. setFlags makes pgbench
// variables of them, sent as parameters under -M prepared.
const setFlags = "\\set yes true\n\\set no false\n"

// listFactoriesSQL is what GET /api/factories?limit=20&offset=:off runs,
// sent as one pipeline (one round trip, one implicit transaction), as pgx
// sends a batch.
func listFactoriesSQL() string {
	return `\startpipeline
SELECT count(*) FROM factories WHERE deleted_at IS NULL;
SELECT t.id, t.organization_id, t.name, t.location, t.timezone, t.metadata, t.created_at, t.updated_at FROM (SELECT id, name FROM factories WHERE deleted_at IS NULL ORDER BY name, id LIMIT 20 OFFSET :off) p JOIN factories t ON t.id = p.id ORDER BY p.name, p.id;
\endpipeline
`
}

// crudPhase is one request shape measured against its references.
type crudPhase struct {
	name string
	// op is the request for the Go client; method, path, body and ids the
	// same request for wrk ({id}, {offset} and {n} are filled in).
	op                 func(w, i int) error
	method, path, body string
	ids                []string
	// plain is a pgbench script of the plain single statement ("" for the
	// builtin -S, "-" for none).
	plain string
	// same is a pgbench script of the exact statements gatewayd runs for
	// this request, in the same kind of transaction, prepared as pgx
	// prepares them ("" for none: the request needs no database).
	same string
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
		id := benchID(kindFactory, i+1)
		factories = append(factories, id)
		if _, err := e.pool.Exec(ctx, `INSERT INTO factories (id, organization_id, name) VALUES ($1, $2, $3)`,
			id, e.org, fmt.Sprintf("factory-%05d", i)); err != nil {
			return err
		}
	}
	if err := e.seed(ctx, n); err != nil {
		return err
	}
	// The seeded gateways get pattern ids too (nothing refers to them yet).
	if _, err := e.pool.Exec(ctx, `UPDATE gateways g SET id = ('00000002-0000-4000-8000-' || lpad(b.n::text, 12, '0'))::uuid
		FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM gateways) b WHERE g.id = b.id`); err != nil {
		return err
	}
	for i := range e.ids {
		e.ids[i] = benchID(kindGateway, i+1)
	}
	// A live database is autovacuumed; freshly copied rows are not, and
	// without a visibility map no scan can be index-only.
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	// Reconciliation stays out of the measurement; pgbench's gateways are
	// soft-deleted before gatewayd would ever read them.
	extra := []string{"RECONCILE_INTERVAL=1h"}
	if e.o.debugAddr != "" {
		extra = append(extra, "DEBUG_ADDR="+e.o.debugAddr)
	}
	if _, err := e.startGatewayd(extra...); err != nil {
		return err
	}
	if err := e.waitAuthenticated(n, 2*time.Minute); err != nil {
		return err
	}
	pgb, err := exec.LookPath("pgbench")
	if err != nil {
		r.progressf("pgbench not found; gatewayd figures only")
	}
	if e.o.noReferences {
		pgb = ""
	}
	tmp, err := os.MkdirTemp("", "gwload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if pgb != "" {
		r.progressf("pgbench -i")
		if out, err := exec.Command(pgb, "-i", "-s", strconv.Itoa(max(e.o.pgbenchScale, 1)), "-q", "-n", e.dbURL).CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench -i: %v: %s", err, out)
		}
	}
	wrkBin, _ := exec.LookPath("wrk")
	factoryIDs := idStrings(factories)
	randN := fmt.Sprintf("\\set n random(1, %d)\n", n)
	phases := []crudPhase{
		{name: "health", op: func(w, i int) error { return e.call("GET", "/health", nil, 200, nil) },
			method: "GET", path: "/api/health", ids: factoryIDs, plain: "-"},
		{name: "get_factory", op: func(w, i int) error {
			return e.call("GET", "/factories/"+factories[rand.IntN(n)].String(), nil, 200, nil)
		}, method: "GET", path: "/api/factories/{id}", ids: factoryIDs,
			same: randN + "SELECT " + factoryCols + " FROM factories WHERE id = " + benchIDSQL(kindFactory) + " AND deleted_at IS NULL;\n"},
		{name: "get_gateway", op: func(w, i int) error {
			return e.call("GET", "/gateways/"+e.ids[rand.IntN(len(e.ids))].String(), nil, 200, nil)
		}, method: "GET", path: "/api/gateways/{id}", ids: idStrings(e.ids),
			same: randN + "SELECT " + gatewayCols + " FROM gateways WHERE id = " + benchIDSQL(kindGateway) + " AND deleted_at IS NULL;\n"},
		{name: "list_factories", op: func(w, i int) error {
			return e.call("GET", "/factories?limit=20&offset="+strconv.Itoa(rand.IntN(n-20)), nil, 200, nil)
		}, method: "GET", path: "/api/factories?limit=20&offset={offset}", ids: factoryIDs,
			same: fmt.Sprintf("\\set off random(0, %d)\n", n-20) + listFactoriesSQL()},
		{name: "post_factory", op: func(w, i int) error {
			return e.call("POST", "/factories", map[string]any{"organization_id": e.org, "name": fmt.Sprintf("new-%d-%d", w, i)}, 201, nil)
		}, method: "POST", path: "/api/factories", body: fmt.Sprintf(`{"organization_id":"%s","name":"wrk-{n}"}`, e.org), ids: factoryIDs,
			plain: fmt.Sprintf("INSERT INTO factories (organization_id, name) VALUES ('%s', 'pg-factory');\n", e.org),
			same:  fmt.Sprintf("INSERT INTO factories (id, organization_id, name, location, timezone, metadata) SELECT gen_random_uuid(), '%s', 'pg-same', NULL, 'UTC', '{}' WHERE EXISTS (SELECT 1 FROM organizations WHERE id = '%s' AND deleted_at IS NULL FOR SHARE) RETURNING %s;\n", e.org, e.org, factoryCols)},
		{name: "put_factory", op: func(w, i int) error {
			return e.call("PUT", "/factories/"+factories[rand.IntN(n)].String(), map[string]any{"name": fmt.Sprintf("renamed-%d-%d", w, i)}, 200, nil)
		}, method: "PUT", path: "/api/factories/{id}", body: `{"name":"wrk-{n}"}`, ids: factoryIDs,
			plain: randN + "UPDATE factories SET name = 'pg-' || :n WHERE id = " + benchIDSQL(kindFactory) + ";\n",
			same:  randN + setFlags + "UPDATE factories SET name = CASE WHEN :yes THEN 'pg-' || :n ELSE name END, location = CASE WHEN :no THEN NULL ELSE location END, timezone = CASE WHEN :no THEN 'UTC' ELSE timezone END, metadata = CASE WHEN :no THEN '{}'::jsonb ELSE metadata END WHERE id = " + benchIDSQL(kindFactory) + " AND deleted_at IS NULL RETURNING " + factoryCols + ";\n"},
		{name: "post_gateway", op: func(w, i int) error {
			// A refused port: each new gateway's actor retries in BACKOFF
			// without holding a socket, as a real unreachable gateway would.
			return e.call("POST", "/gateways", map[string]any{"factory_id": e.factory, "gateway_id": fmt.Sprintf("post-%d-%d-%s", w, i, e.idTag()),
				"name": "posted", "url": "ws://127.0.0.1:9/gw", "email": "p@example.com", "password": "pw"}, 201, nil)
		}, method: "POST", path: "/api/gateways", ids: factoryIDs,
			body:  fmt.Sprintf(`{"factory_id":"%s","gateway_id":"wrk-%s-{n}","name":"posted","url":"ws://127.0.0.1:9/gw","email":"p@example.com","password":"pw"}`, e.factory, e.idTag()),
			plain: fmt.Sprintf("INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted) VALUES ('%s', gen_random_uuid()::text, 'pg', 'ws://127.0.0.1:9/gw', 'p@example.com', 'sealed-AAAA');\n", e.factory),
			same:  fmt.Sprintf("INSERT INTO gateways (id, factory_id, gateway_id, name, url, email, password_encrypted, model, firmware_version, desired_state, metadata) SELECT gen_random_uuid(), '%s', gen_random_uuid()::text, 'pg', 'ws://127.0.0.1:9/gw', 'p@example.com', 'sealed-AAAA', NULL, NULL, 'CONNECTED', '{}' WHERE EXISTS (SELECT 1 FROM factories WHERE id = '%s' AND deleted_at IS NULL FOR SHARE) RETURNING %s;\n", e.factory, e.factory, gatewayCols)},
	}
	if e.o.phases != "" {
		want := strings.Split(e.o.phases, ",")
		phases = slices.DeleteFunc(phases, func(p crudPhase) bool { return !slices.Contains(want, p.name) })
	}
	for _, p := range phases {
		r.progressf("crud %s", p.name)
		var rate, p99 float64
		var peak int
		pg0, gw0, t0 := e.pgTicks(), e.procTicks(), time.Now()
		if wrkBin != "" {
			w, err := runWrk(ctx, e.wrk(wrkBin, p.method, p.path, p.body, p.ids, n-20))
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if w.non2xx > 0 {
				return fmt.Errorf("%s: %d requests failed", p.name, w.non2xx)
			}
			rate, p99, peak = w.rate, w.p99, w.peakRSS
			r.value("crud_"+p.name+"_wrk_cores", w.cores, "cores")
		} else {
			res := e.load(ctx, e.o.duration, p.op)
			if err := res.err(); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			rate, p99, peak = res.rate(), ms(percentile(res.latencies, 99)), res.peakRSS
		}
		secs := time.Since(t0).Seconds()
		r.value("crud_"+p.name+"_rate", rate, "req/s")
		r.value("crud_"+p.name+"_p99", p99, "ms")
		r.value("crud_"+p.name+"_peak_rss", float64(peak)/1024, "MiB")
		r.value("crud_"+p.name+"_pg_cores", float64(e.pgTicksSince(pg0))/clockTicks/secs, "cores")
		r.value("crud_"+p.name+"_gatewayd_cores", float64(e.procTicks()-gw0)/clockTicks/secs, "cores")
		if pgb == "" {
			continue
		}
		base := []string{"-n", "-c", strconv.Itoa(e.o.concurrency), "-j", "2"}
		if e.o.duration < time.Second {
			// pgbench's -T cannot go below a second; at CI sizes a few
			// transactions per client tell as much.
			base = append(base, "-t", "20")
		} else {
			base = append(base, "-T", strconv.Itoa(int(e.o.duration.Seconds())))
		}
		script := func(name, sql string) ([]string, error) {
			f := filepath.Join(tmp, name+".sql")
			return append(slices.Clone(base), "-f", f, e.dbURL), os.WriteFile(f, []byte(sql), 0o600)
		}
		if p.plain != "-" {
			args := append(slices.Clone(base), "-S", e.dbURL)
			if p.plain != "" {
				if args, err = script(p.name, p.plain); err != nil {
					return err
				}
			}
			tps, err := pgbench(pgb, args)
			if err != nil {
				return err
			}
			r.value("crud_"+p.name+"_pgbench_rate", tps, "tx/s")
			r.value("crud_"+p.name+"_ratio", rate/tps, "ratio")
		}
		if p.same != "" {
			sameArgs, err := script(p.name+"-same", p.same)
			if err != nil {
				return err
			}
			// gatewayd's statements are prepared (pgx caches them); the
			// reference gets the same advantage.
			sameArgs = append([]string{"-M", "prepared"}, sameArgs...)
			same, err := pgbenchRun(pgb, sameArgs, e.pgTicks)
			if err != nil {
				return err
			}
			r.value("crud_"+p.name+"_pgbench_same_sql_rate", same.tps, "tx/s")
			r.value("crud_"+p.name+"_same_sql_ratio", rate/same.tps, "ratio")
			// What the reference used of the same two cores: PostgreSQL
			// gets more of them when the client is pgbench.
			r.value("crud_"+p.name+"_pgbench_same_sql_pg_cores", same.pgCores, "cores")
			r.value("crud_"+p.name+"_pgbench_same_sql_client_cores", same.clientCores, "cores")
		}
	}
	_, err = e.pool.Exec(ctx, `UPDATE gateways SET deleted_at = now() WHERE name IN ('pg', 'pg-same')`)
	return err
}

// clockTicks is the kernel's USER_HZ (/proc times are in these units).
const clockTicks = 100.0

// procTicks is gatewayd's CPU time so far, in clock ticks.
func (e *env) procTicks() int64 {
	if e.proc == nil {
		return 0
	}
	return cpuTicks(e.proc.Process.Pid)
}

// pgTicks is the CPU time so far of each PostgreSQL backend connected to
// this run's database (other databases on the server are not counted).
func (e *env) pgTicks() map[int]int64 {
	out := map[int]int64{}
	if e.dbName == "" {
		return out
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmd), "postgres: ") || !strings.Contains(string(cmd), " "+e.dbName+" ") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		out[pid] = cpuTicks(pid)
	}
	return out
}

// pgTicksSince is the CPU time the backends used since before was taken;
// a backend that ended in between is not counted, one that started is
// counted whole.
func (e *env) pgTicksSince(before map[int]int64) int64 {
	var sum int64
	for pid, t := range e.pgTicks() {
		sum += t - before[pid]
	}
	return sum
}

// cpuTicks reads utime + stime of a process.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may contain spaces; fields start after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}
