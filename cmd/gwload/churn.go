package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// churn: o.churnBase connected gateways; then o.churn gateways created
// through the API at o.concurrency clients (within o.churnStorm), each
// with its connection started: the first o.churnConnected log in to the
// simulator and stay connected, the others are refused at login (a real
// dial, handshake and login each, then AUTH_FAILED without a socket; tens
// of thousands of open sockets per side would pass this machine's file
// descriptor limit). With -churn-unreachable they point at a refused port
// instead and retry in BACKOFF. Then they are all deleted, and gatewayd's
// RSS is sampled for o.churnWatch: does the memory come back?
func churn(ctx context.Context, e *env, r *report) error {
	o := e.o
	if err := e.seed(ctx, o.churnBase); err != nil {
		return err
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
	time.Sleep(o.settle)
	g0, heap0, err := e.debugStats(debugAddr)
	if err != nil {
		return err
	}
	rss0 := e.rssKiB()
	r.value("churn_base_gateways", float64(len(e.ids)), "count")
	r.value("churn_rss_before", float64(rss0)/1024, "MiB")
	r.value("churn_live_heap_before", float64(heap0)/(1<<20), "MiB")
	r.value("churn_goroutines_before", float64(g0), "count")
	r.progressf("churn: before: rss %d KiB, live heap %.1f MiB, %d goroutines", rss0, float64(heap0)/(1<<20), g0)
	e.heapProfile(debugAddr, "churn-0-before")
	e.memStats(r, debugAddr, "churn: before")

	var factory struct{ ID uuid.UUID }
	if err := e.call("POST", "/factories", map[string]any{"organization_id": e.org, "name": "churn"}, 201, &factory); err != nil {
		return err
	}
	// The simulator's gateways exist before the storm, so the storm
	// measures gatewayd, not the simulator's bookkeeping.
	type gw struct{ url, password string }
	gws := make([]gw, o.churn)
	for i := range gws {
		name := fmt.Sprintf("churn-%06d-%s", i, e.idTag())
		switch {
		case o.churnUnreachable:
			gws[i] = gw{url: "ws://127.0.0.1:9/gw/" + name, password: "pw"}
		case i < o.churnConnected:
			gws[i] = gw{url: e.sim.Add(name, ctctest.Config{Email: "c@example.com", Password: "pw"}).URL(), password: "pw"}
		default:
			gws[i] = gw{url: e.sim.Add(name, ctctest.Config{Email: "c@example.com", Password: "pw"}).URL(), password: "refused"}
		}
	}
	stopPeak := samplePeak(e.rssKiB)
	var next, failed atomic.Int64
	ids := make([]uuid.UUID, o.churn)
	created := make([]bool, o.churn)
	storm, cancel := context.WithTimeout(ctx, o.churnStorm)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for storm.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(gws) {
					return
				}
				var out struct{ ID uuid.UUID }
				if err := e.call("POST", "/gateways", map[string]any{"factory_id": factory.ID, "gateway_id": fmt.Sprintf("churn-%06d-%s", i, e.idTag()),
					"name": "churn", "url": gws[i].url, "email": "c@example.com", "password": gws[i].password}, 201, &out); err != nil {
					failed.Add(1)
					continue
				}
				ids[i], created[i] = out.ID, true
			}
		}()
	}
	wg.Wait()
	cancel()
	took := time.Since(start)
	n := 0
	for _, c := range created {
		if c {
			n++
		}
	}
	if failed.Load() > 0 {
		stopPeak()
		return fmt.Errorf("churn: %d creates failed", failed.Load())
	}
	r.value("churn_created", float64(n), "count")
	r.value("churn_create_rate", float64(n)/took.Seconds(), "req/s")
	r.value("churn_storm_peak_rss", float64(stopPeak())/1024, "MiB")
	r.progressf("churn: %d created in %s", n, took.Round(time.Millisecond))

	// Every created gateway's connection attempt has run its course.
	connected := min(n, o.churnConnected)
	if o.churnUnreachable {
		connected = 0
	}
	settleStart := time.Now()
	stopPeak = samplePeak(e.rssKiB)
	if err := e.waitAuthenticated(len(e.ids)+connected, 5*time.Minute); err != nil {
		stopPeak()
		return err
	}
	if !o.churnUnreachable {
		if err := e.waitStates(factory.ID, n-connected, "AUTH_FAILED", 5*time.Minute); err != nil {
			stopPeak()
			return err
		}
	}
	r.value("churn_settled", time.Since(settleStart).Seconds(), "s")
	r.value("churn_peak_rss", float64(stopPeak())/1024, "MiB")
	g1, heap1, err := e.debugStats(debugAddr)
	if err != nil {
		return err
	}
	rss1 := e.rssKiB()
	r.value("churn_rss_after_creates", float64(rss1)/1024, "MiB")
	r.value("churn_live_heap_after_creates", float64(heap1)/(1<<20), "MiB")
	r.value("churn_goroutines_after_creates", float64(g1), "count")
	e.heapProfile(debugAddr, "churn-1-created")
	e.memStats(r, debugAddr, "churn: after the creates")

	deleteStart := time.Now()
	if o.churnDelete == "each" {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range o.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(ids) {
						return
					}
					if created[i] {
						if err := e.call("DELETE", "/gateways/"+ids[i].String(), nil, 204, nil); err != nil {
							failed.Add(1)
						}
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			return fmt.Errorf("churn: %d deletes failed", failed.Load())
		}
	} else if err := e.call("DELETE", "/factories/"+factory.ID.String(), nil, 204, nil); err != nil {
		return err
	}
	r.value("churn_delete", time.Since(deleteStart).Seconds(), "s")
	// The runtime is back to the base gateways.
	deadline := time.Now().Add(time.Minute)
	for {
		h, err := e.counts()
		if err == nil && h.Gateways.Total == len(e.ids) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("churn: runtime has %d gateways a minute after the delete, want %d", h.Gateways.Total, len(e.ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// RSS after the delete, sampled every second; the curve goes to the
	// progress output, marks to the figures.
	marks := map[int]bool{0: true, 15: true, 30: true, 60: true, 90: true, 120: true}
	var curve []string
	var rssEnd int
	for s := 0; ; s++ {
		rss := e.rssKiB()
		rssEnd = rss
		curve = append(curve, fmt.Sprintf("%ds %.1f", s, float64(rss)/1024))
		if marks[s] {
			r.value(fmt.Sprintf("churn_rss_after_delete_%ds", s), float64(rss)/1024, "MiB")
		}
		if time.Duration(s)*time.Second >= o.churnWatch || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Until(deleteStart.Add(time.Duration(s+1) * time.Second)))
	}
	r.progressf("churn: RSS MiB after the delete: %v", curve)
	r.value("churn_rss_end", float64(rssEnd)/1024, "MiB")
	r.value("churn_rss_end_over_before", float64(rssEnd)/float64(rss0), "ratio")
	g2, heap2, err := e.debugStats(debugAddr)
	if err != nil {
		return err
	}
	r.value("churn_live_heap_end", float64(heap2)/(1<<20), "MiB")
	r.value("churn_goroutines_end", float64(g2), "count")
	r.value("churn_rss_after_gc", float64(e.rssKiB())/1024, "MiB")
	e.heapProfile(debugAddr, "churn-2-deleted")
	e.memStats(r, debugAddr, "churn: end")
	return nil
}

// memStats logs gatewayd's runtime.MemStats lines (from its pprof heap
// page) that tell live data from what the allocator keeps.
func (e *env) memStats(r *report, debugAddr, when string) {
	resp, err := e.client.Get("http://" + debugAddr + "/debug/pprof/heap?debug=1")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var parts []string
	for _, line := range strings.Split(string(body), "\n") {
		for _, k := range []string{"HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "Stack", "MSpan", "GCSys", "OtherSys", "Sys"} {
			if v, ok := strings.CutPrefix(line, "# "+k+" = "); ok {
				n, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 64)
				parts = append(parts, fmt.Sprintf("%s %.1f", k, float64(n)/(1<<20)))
			}
		}
	}
	// The kernel's side: anonymous memory is the heap, stacks and the
	// runtime's own; file pages are mostly the binary's text.
	parts = append(parts, fmt.Sprintf("RssAnon %.1f", float64(procStatus(e.pid(), "RssAnon:"))/1024),
		fmt.Sprintf("RssFile %.1f", float64(procStatus(e.pid(), "RssFile:"))/1024))
	r.progressf("%s: MemStats MiB: %s", when, strings.Join(parts, ", "))
}

// waitStates polls the factory's status counts until want gateways are in
// state.
func (e *env) waitStates(factory uuid.UUID, want int, state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var body struct{ Counts map[string]int }
	for time.Now().Before(deadline) {
		if err := e.call("GET", "/gateways/status?factory_id="+factory.String(), nil, 200, &body); err == nil && body.Counts[state] >= want {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("only %d of %d gateways %s after %s (%v)", body.Counts[state], want, state, timeout, body.Counts)
}

// heapProfile saves gatewayd's heap profile (after a forced GC) and its
// goroutines, grouped by stack, in o.profileDir, when set.
func (e *env) heapProfile(debugAddr, name string) {
	if e.o.profileDir == "" {
		return
	}
	e.saveDebug(debugAddr, "/debug/pprof/heap?gc=1", name+".pb.gz")
	e.saveDebug(debugAddr, "/debug/pprof/goroutine?debug=1", name+"-goroutines.txt")
}

// saveDebug copies one of gatewayd's pprof answers into o.profileDir.
func (e *env) saveDebug(debugAddr, path, file string) {
	resp, err := e.client.Get("http://" + debugAddr + path)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(e.o.profileDir, file))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
