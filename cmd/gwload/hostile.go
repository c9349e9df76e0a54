package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// hostile (issue #18): N healthy gateways, then flooding, hung and
// flapping peers added to the same gatewayd. A healthy gateway's crash →
// login (seen by the simulator) → AUTHENTICATED (seen by the API) and
// gatewayd's settled RSS are measured twice in one run: with the healthy
// gateways alone, then with the hostile peers active, after every hung
// peer has failed once (so it dials in the failing lane) and a warm-up
// (so the flood cutoff and the flapping peers' backoff are in play).
//
// The simulator runs in this process, so the flood burns gwload's CPU
// too; gwload's and gatewayd's CPU over each phase are printed, so the
// share of the two cores the simulator took is visible next to the
// latencies.
func hostile(ctx context.Context, e *env, r *report) error {
	o := e.o
	if o.target != "" {
		return errors.New("hostile reads gatewayd's RSS and CPU; run it without -target")
	}
	if o.gateways < 3*o.hostileCrashes {
		return fmt.Errorf("hostile crashes three sets of %d distinct healthy gateways; -gateways %d is too few", o.hostileCrashes, o.gateways)
	}
	r.progressf("seeding %d healthy gateways", o.gateways)
	if err := e.seed(ctx, o.gateways); err != nil {
		return err
	}
	var extra []string
	if o.debugAddr != "" {
		extra = append(extra, "DEBUG_ADDR="+o.debugAddr)
	}
	if o.connectTimeout > 0 {
		extra = append(extra, "GATEWAY_CONNECT_TIMEOUT="+o.connectTimeout.String())
	}
	if _, err := e.startGatewayd(extra...); err != nil {
		return err
	}
	if err := e.waitAuthenticated(len(e.ids), 5*time.Minute); err != nil {
		return err
	}

	// 1. Baseline: the healthy gateways alone.
	time.Sleep(o.settle)
	rss0 := e.rssKiB()
	r.value("hostile_healthy_gateways", float64(len(e.ids)), "count")
	r.value("hostile_baseline_rss", float64(rss0)/1024, "MiB")
	e.hostileHeap(r, "hostile_baseline")
	cpu := startCPU(e.proc.Process.Pid)
	base, err := e.crashHealthy(ctx, r, "baseline", 0)
	if err != nil {
		return err
	}
	base.report(r, "hostile_baseline")
	cpu.report(r, "hostile_baseline")

	// 2. The hostile peers join.
	cpu = startCPU(e.proc.Process.Pid)
	peers, err := e.addHostile(r)
	if err != nil {
		return err
	}
	// The flooders start as they are created, with short backoffs: the
	// simulator's share of the machine is largest here.
	cpu.report(r, "hostile_create")
	cpu = startCPU(e.proc.Process.Pid)
	stopPeak := samplePeak(e.rssKiB)
	added := time.Now()
	// Until a hung peer has failed once, its dial holds an ordinary slot
	// for the whole connect timeout: healthy gateways crashed meanwhile
	// show what that costs them.
	stopRamp := make(chan struct{})
	type rampResult struct {
		p   crashPhase
		err error
	}
	rampDone := make(chan rampResult, 1)
	go func() {
		p, err := e.crashHealthyUntil(ctx, stopRamp, 2*o.hostileCrashes)
		rampDone <- rampResult{p, err}
	}()
	err = e.waitHungFailed(ctx, r, peers, 5*time.Minute)
	close(stopRamp)
	ramp := <-rampDone
	if err == nil && ramp.err != nil {
		// A crash or status request that failed ended the ramp early:
		// its figures would be those of the crashes before it.
		err = fmt.Errorf("ramp crashes: %w", ramp.err)
	}
	if err != nil {
		stopPeak()
		return err
	}
	r.value("hostile_hung_all_failed_once", time.Since(added).Seconds(), "s")
	ramp.p.report(r, "hostile_ramp")
	cpu.report(r, "hostile_ramp")
	r.progressf("hostile peers active; warm-up %s", o.hostileWarmup)
	select {
	case <-time.After(o.hostileWarmup):
	case <-ctx.Done():
		stopPeak()
		return ctx.Err()
	}
	// The window in which the hostile peers are counted: from here to
	// the end of the crashes.
	before := peers.stats()
	windowStart := time.Now()
	cpu = startCPU(e.proc.Process.Pid)
	rss1 := e.rssKiB()
	hot, err := e.crashHealthy(ctx, r, "hostile", o.hostileCrashes)
	if err != nil {
		stopPeak()
		return err
	}
	time.Sleep(o.settle)
	rss2 := e.rssKiB()
	window := time.Since(windowStart)
	after := peers.stats()
	peak := stopPeak()
	hot.report(r, "hostile_active")
	cpu.report(r, "hostile_active")
	// Settled RSS with hostile peers: they keep reconnecting, so take the
	// larger of the readings before and after the crashes.
	r.value("hostile_active_rss", float64(max(rss1, rss2))/1024, "MiB")
	e.hostileHeap(r, "hostile_active")
	r.value("hostile_active_rss_peak", float64(peak)/1024, "MiB")
	r.value("hostile_rss_over_baseline", float64(max(rss1, rss2)-rss0)/1024, "MiB")
	if base.p99() > 0 {
		r.value("hostile_p99_ratio", float64(hot.p99())/float64(base.p99()), "x")
	}

	// What the hostile peers experienced, over the window.
	r.value("hostile_window", window.Seconds(), "s")
	r.value("hostile_flood_peers", float64(len(peers.flood)), "count")
	r.value("hostile_flood_frames_sent", float64(after.floodSent-before.floodSent), "count")
	r.value("hostile_flood_frames_per_s", float64(after.floodSent-before.floodSent)/window.Seconds(), "frames/s")
	r.value("hostile_flood_connections", float64(after.floodAccepted-before.floodAccepted), "count")
	r.value("hostile_flood_frames_sent_since_added", float64(after.floodSent), "count")
	r.value("hostile_since_added", time.Since(added).Seconds(), "s")
	r.value("hostile_flap_peers", float64(len(peers.flap)), "count")
	r.value("hostile_flap_logins", float64(after.flapLogins-before.flapLogins), "count")
	if n := len(peers.flap); n > 0 {
		r.value("hostile_flap_logins_per_peer", float64(after.flapLogins-before.flapLogins)/float64(n), "count")
		r.value("hostile_flap_logins_per_peer_since_added", float64(after.flapLogins)/float64(n), "count")
	}
	r.value("hostile_hung_peers", float64(len(peers.hung)), "count")
	return e.hostileStates(r, peers)
}

// crashOutcome is one crashed gateway's timeline.
type crashOutcome struct {
	total, login time.Duration // crash → AUTHENTICATED, crash → login seen by the simulator
	timedOut     bool
	// history is every state the polls saw, with when and last_error.
	history []string
}

type crashPhase struct {
	outcomes []crashOutcome
	elapsed  time.Duration
	budget   bool // the phase ran out of its time budget
}

func (p crashPhase) sorted(f func(crashOutcome) time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(p.outcomes))
	for _, c := range p.outcomes {
		out = append(out, f(c))
	}
	slices.Sort(out)
	return out
}

func (p crashPhase) p99() time.Duration {
	return percentile(p.sorted(func(c crashOutcome) time.Duration { return c.total }), 99)
}

func (p crashPhase) report(r *report, name string) {
	reportLatencies(r, name+"_crash_to_authenticated", p.sorted(func(c crashOutcome) time.Duration { return c.total }))
	login := p.sorted(func(c crashOutcome) time.Duration { return c.login })
	r.value(name+"_crash_to_login_p50", ms(percentile(login, 50)), "ms")
	r.value(name+"_crash_to_login_p99", ms(percentile(login, 99)), "ms")
	timeouts := 0
	for _, c := range p.outcomes {
		if c.timedOut {
			timeouts++
		}
	}
	r.value(name+"_crash_timeouts", float64(timeouts), "count")
	// Evidence on the slowest crashes: what the polls saw.
	slow := slices.Clone(p.outcomes)
	slices.SortFunc(slow, func(a, b crashOutcome) int { return int(b.total - a.total) })
	for _, c := range slow[:min(5, len(slow))] {
		r.progressf("%s slow crash: %s to AUTHENTICATED (login seen at %s): %s", name,
			c.total.Round(time.Millisecond), c.login.Round(time.Millisecond), strings.Join(c.history, " → "))
	}
}

// crashBudget bounds one crash and a whole phase of them, so a starved
// run ends with evidence instead of hanging.
const (
	crashBudget      = 15 * time.Second
	crashPhaseBudget = 3 * time.Minute
)

// crashHealthy crashes o.hostileCrashes healthy gateways from index
// first on, one after the other, each once.
func (e *env) crashHealthy(ctx context.Context, r *report, phase string, first int) (crashPhase, error) {
	var p crashPhase
	start := time.Now()
	for i := first; i < first+e.o.hostileCrashes; i++ {
		if ctx.Err() != nil {
			return p, ctx.Err()
		}
		if time.Since(start) > crashPhaseBudget {
			r.progressf("%s: crash budget of %s spent after %d crashes", phase, crashPhaseBudget, len(p.outcomes))
			p.budget = true
			break
		}
		c, err := e.crashOne(e.ids[i].String(), e.sims[i])
		if err != nil {
			return p, err
		}
		p.outcomes = append(p.outcomes, c)
	}
	p.elapsed = time.Since(start)
	r.progressf("%s: %d crashes in %s", phase, len(p.outcomes), p.elapsed.Round(time.Millisecond))
	return p, nil
}

// crashHealthyUntil crashes healthy gateways from index first on, one
// after the other, until stop closes or o.hostileCrashes are done.
func (e *env) crashHealthyUntil(ctx context.Context, stop <-chan struct{}, first int) (crashPhase, error) {
	var p crashPhase
	for i := first; i < first+e.o.hostileCrashes; i++ {
		select {
		case <-stop:
			return p, nil
		case <-ctx.Done():
			return p, ctx.Err()
		default:
		}
		c, err := e.crashOne(e.ids[i].String(), e.sims[i])
		if err != nil {
			return p, err
		}
		p.outcomes = append(p.outcomes, c)
	}
	return p, nil
}

// hostileHeap prints gatewayd's live heap and goroutines, and saves a
// heap profile in o.profileDir, when it serves pprof (-debug-addr).
func (e *env) hostileHeap(r *report, name string) {
	if e.o.debugAddr == "" {
		return
	}
	g, live, err := e.debugStats(e.o.debugAddr)
	if err != nil {
		r.progressf("%s: pprof: %v", name, err)
		return
	}
	r.value(name+"_live_heap", float64(live)/(1<<20), "MiB")
	r.value(name+"_goroutines", float64(g), "count")
	e.heapProfile(e.o.debugAddr, name)
	// What the allocator keeps beyond the live heap explains RSS.
	e.memStats(r, e.o.debugAddr, name)
}

type hostileStatus struct {
	ID                string  `json:"id"`
	State             string  `json:"state"`
	LastError         *string `json:"last_error"`
	ReconnectAttempts int     `json:"reconnect_attempts"`
	Restarts          int     `json:"restarts"`
}

// crashOne crashes one gateway and follows it: the simulator's login
// count (crash → login) and the API's status (→ AUTHENTICATED with one
// more restart), recording every state it passes through.
func (e *env) crashOne(id string, g *ctctest.Gateway) (crashOutcome, error) {
	var c crashOutcome
	var st hostileStatus
	if err := e.call("GET", "/gateways/"+id+"/status", nil, 200, &st); err != nil {
		return c, err
	}
	restarts, logins := st.Restarts, g.Stats().Logins
	t0 := time.Now()
	if err := e.call("POST", "/debug/gateways/"+id+"/crash", nil, 202, nil); err != nil {
		return c, err
	}
	last := ""
	for {
		since := time.Since(t0)
		if c.login == 0 && g.Stats().Logins > logins {
			c.login = since
		}
		var st hostileStatus
		if err := e.call("GET", "/gateways/"+id+"/status", nil, 200, &st); err == nil {
			if seen := st.State + lastErrorText(st.LastError); seen != last {
				last = seen
				c.history = append(c.history, fmt.Sprintf("%s@%s%s", st.State, since.Round(time.Millisecond), lastErrorText(st.LastError)))
			}
			if st.Restarts > restarts && st.State == "AUTHENTICATED" {
				c.total = time.Since(t0)
				if c.login == 0 { // logged in between the two looks
					c.login = c.total
				}
				return c, nil
			}
		}
		if since > crashBudget {
			c.total, c.timedOut = since, true
			if c.login == 0 {
				c.login = since
			}
			return c, nil
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func lastErrorText(s *string) string {
	if s == nil {
		return ""
	}
	t := *s
	if len(t) > 80 {
		t = t[:80] + "…"
	}
	return " (" + t + ")"
}

// hostilePeers are the simulated hostile gateways and their ids.
type hostilePeers struct {
	flood, hung, flap          []*ctctest.Gateway
	floodIDs, hungIDs, flapIDs []uuid.UUID
}

type hostileCounts struct {
	floodSent, floodAccepted, flapLogins int
}

func (p *hostilePeers) stats() hostileCounts {
	var c hostileCounts
	for _, g := range p.flood {
		s := g.Stats()
		c.floodSent += s.FloodSent
		c.floodAccepted += s.Accepted
	}
	for _, g := range p.flap {
		c.flapLogins += g.Stats().Logins
	}
	return c
}

// oversize is past gatewayd's 4 MiB read limit, so every connection of
// a flapping peer breaks right after its login.
const oversize = 4<<20 + 64<<10

// addHostile adds the hostile peers to the simulator and creates them
// through the API, which dials them at once.
func (e *env) addHostile(r *report) (*hostilePeers, error) {
	o := e.o
	p := &hostilePeers{}
	type job struct {
		g   *ctctest.Gateway
		ids *[]uuid.UUID
		i   int
	}
	var jobs []job
	add := func(kind string, n int, f ctctest.Faults, list *[]*ctctest.Gateway, ids *[]uuid.UUID) {
		*ids = make([]uuid.UUID, n)
		for i := range n {
			name := fmt.Sprintf("%s-%04d", kind, i)
			g := e.sim.Add(name, ctctest.Config{Email: "load@example.com", Password: "load-" + name})
			g.SetFaults(f)
			*list = append(*list, g)
			jobs = append(jobs, job{g, ids, i})
		}
	}
	add("flood", o.hostileFlood, ctctest.Faults{Flood: true}, &p.flood, &p.floodIDs)
	add("hung", o.hostileHung, ctctest.Faults{StallHandshake: true}, &p.hung, &p.hungIDs)
	add("flap", o.hostileFlap, ctctest.Faults{OversizeAfterLogin: oversize}, &p.flap, &p.flapIDs)
	r.progressf("creating %d flooding, %d hung and %d flapping peers", o.hostileFlood, o.hostileHung, o.hostileFlap)
	var wg sync.WaitGroup
	var unavailable atomic.Int64
	started := time.Now()
	errs := make(chan error, 8)
	next := make(chan job)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				var out struct{ ID uuid.UUID }
				body := map[string]any{"factory_id": e.factory, "gateway_id": j.g.Name(),
					"name": j.g.Name(), "url": j.g.URL(), "email": "load@example.com", "password": "load-" + j.g.Name()}
				err := e.call("POST", "/gateways", body, 201, &out)
				// Under the flood a create may time out on the database
				// (503); try again, and count it: that is a finding.
				for try := 0; err != nil && strings.Contains(err.Error(), ": 503 ") && try < 5; try++ {
					unavailable.Add(1)
					time.Sleep(time.Second)
					err = e.call("POST", "/gateways", body, 201, &out)
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("create %s: %w", j.g.Name(), err):
					default:
					}
					continue
				}
				(*j.ids)[j.i] = out.ID
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	r.value("hostile_create_seconds", time.Since(started).Seconds(), "s")
	r.value("hostile_create_503", float64(unavailable.Load()), "count")
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return p, nil
}

// waitHungFailed waits until every hung peer has failed at least once:
// only then does it dial in the lane for failing gateways. Until then
// each first dial holds an ordinary slot for the whole connect timeout.
func (e *env) waitHungFailed(ctx context.Context, r *report, p *hostilePeers, budget time.Duration) error {
	want := make(map[string]bool, len(p.hungIDs))
	for _, id := range p.hungIDs {
		want[id.String()] = true
	}
	deadline := time.Now().Add(budget)
	next := time.Now()
	for {
		var list struct{ Data []hostileStatus }
		if err := e.call("GET", "/gateways/status", nil, 200, &list); err != nil {
			return err
		}
		failed := 0
		for _, s := range list.Data {
			if want[s.ID] && s.ReconnectAttempts > 0 {
				failed++
			}
		}
		if failed == len(want) {
			return nil
		}
		if time.Now().After(next) {
			r.progressf("%d of %d hung peers failed once", failed, len(want))
			next = time.Now().Add(10 * time.Second)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d hung peers failed once within %s", failed, len(want), budget)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		// A list of every gateway costs gatewayd ~0.1 s of CPU at
		// 10,000: not so often that it slows the ramp's crashes.
		case <-time.After(2 * time.Second):
		}
	}
}

// hostileStates prints the states gatewayd gives the hostile peers, and
// how many healthy gateways are not AUTHENTICATED (should be none).
func (e *env) hostileStates(r *report, p *hostilePeers) error {
	var list struct{ Data []hostileStatus }
	if err := e.call("GET", "/gateways/status", nil, 200, &list); err != nil {
		return err
	}
	kind := map[string]string{}
	for k, ids := range map[string][]uuid.UUID{"flood": p.floodIDs, "hung": p.hungIDs, "flap": p.flapIDs} {
		for _, id := range ids {
			kind[id.String()] = k
		}
	}
	states := map[string]map[string]int{}
	attempts := map[string][]int{}
	sample := map[string]string{}
	healthyDown := 0
	for _, s := range list.Data {
		k, ok := kind[s.ID]
		if !ok {
			if s.State != "AUTHENTICATED" {
				healthyDown++
			}
			continue
		}
		if states[k] == nil {
			states[k] = map[string]int{}
		}
		states[k][s.State]++
		attempts[k] = append(attempts[k], s.ReconnectAttempts)
		if s.LastError != nil && sample[k] == "" {
			sample[k] = lastErrorText(s.LastError)
		}
	}
	for _, k := range []string{"flood", "hung", "flap"} {
		names := make([]string, 0, len(states[k]))
		for st := range states[k] {
			names = append(names, st)
		}
		slices.Sort(names)
		var parts []string
		for _, st := range names {
			r.value("hostile_"+k+"_state_"+strings.ToLower(st), float64(states[k][st]), "count")
			parts = append(parts, st+"="+strconv.Itoa(states[k][st]))
		}
		slices.Sort(attempts[k])
		if a := attempts[k]; len(a) > 0 {
			r.value("hostile_"+k+"_reconnect_attempts_median", float64(a[len(a)/2]), "count")
		}
		r.progressf("%s peers: %s; last_error e.g.%s", k, strings.Join(parts, " "), sample[k])
	}
	r.value("hostile_healthy_not_authenticated", float64(healthyDown), "count")
	return nil
}

// cpuMeter measures the CPU time of gwload itself (the simulator, the
// HTTP clients) and of gatewayd over a phase.
type cpuMeter struct {
	pid         int
	start       time.Time
	self, other time.Duration
}

func startCPU(pid int) cpuMeter {
	return cpuMeter{pid: pid, start: time.Now(), self: procCPU(os.Getpid()), other: procCPU(pid)}
}

// report prints the CPU each process used over the phase, in cores (2
// is the whole machine here), and gwload's share of the machine.
func (c cpuMeter) report(r *report, name string) {
	wall := time.Since(c.start).Seconds()
	self := (procCPU(os.Getpid()) - c.self).Seconds() / wall
	other := (procCPU(c.pid) - c.other).Seconds() / wall
	r.value(name+"_gwload_cpu", self, "cores")
	r.value(name+"_gatewayd_cpu", other, "cores")
	r.value(name+"_gwload_machine_share", 100*self/float64(runtime.NumCPU()), "%")
}

// procCPU is a process's user + system time (cpuTicks are 10 ms: USER_HZ
// is 100 on Linux).
func procCPU(pid int) time.Duration {
	return time.Duration(cpuTicks(pid)) * 10 * time.Millisecond
}
