package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// events (issue #15): with o.gateways connected, the cost of a /metrics
// scrape, then two reconnect storms in one run, one watched by no SSE
// subscriber and one by o.subscribers (in the order -subscribers-first
// says; -storm-pairs runs more such pairs, alternating the order, for a
// median ratio), each subscriber a real HTTP client that parses the stream and
// checks it got every event, in order. Between the storms the run waits
// until every gateway's failure count is reset (a connection must stay
// healthy a ping interval first, actors/gateway.go timerHealthy):
// otherwise the second storm backs off longer for a reason that has
// nothing to do with subscribers.
func eventsScenario(ctx context.Context, e *env, r *report) error {
	if err := e.seed(ctx, e.o.gateways); err != nil {
		return err
	}
	var extra []string
	if e.o.pingInterval > 0 {
		extra = append(extra, "GATEWAY_PING_INTERVAL="+e.o.pingInterval.String())
	}
	if e.o.debugAddr != "" {
		extra = append(extra, "DEBUG_ADDR="+e.o.debugAddr)
	}
	if e.o.eventsClientBuffer > 0 {
		extra = append(extra, "EVENTS_CLIENT_BUFFER="+strconv.Itoa(e.o.eventsClientBuffer))
	}
	if _, err := e.startGatewayd(extra...); err != nil {
		return err
	}
	if err := e.waitAuthenticated(len(e.ids), 5*time.Minute); err != nil {
		return err
	}
	// The cold start's sensor rows land after the logins; in the first
	// storm they would be work that the second does not have.
	if err := e.waitSensorRows(ctx, e.simSensors(), 2*time.Minute); err != nil {
		return err
	}
	if err := scrapeMetrics(ctx, e, r); err != nil {
		return err
	}
	// Each pair is a storm without subscribers and one with them; pairs
	// alternate which goes first, and the ratio is the median of the
	// pairs' (on a shared 2-core machine one pair's ratio ranged from
	// 0.75 to 1.58 in one run: BENCHMARKS.md, 2026-12-06).
	var bare, watched, ratios []float64
	first := e.o.subscribersFirst
	// A gateway's backoff forgets its failures once it has stayed
	// authenticated for a ping interval; a second for the timers' spread.
	healthy := e.o.pingInterval
	if healthy <= 0 {
		healthy = 30 * time.Second // gatewayd's default
	}
	healthy += time.Second
	var lastStorm time.Time
	for p := range max(e.o.stormPairs, 1) {
		order := []int{0, e.o.subscribers}
		if first != (p%2 == 1) {
			slices.Reverse(order)
		}
		took := map[int]time.Duration{}
		for i, k := range order {
			if p > 0 || i > 0 {
				t0 := time.Now()
				if err := e.waitBackoffReset(5 * time.Minute); err != nil {
					return err
				}
				// The status clears at login; the backoff's own count of
				// failures in a row only after a healthy ping interval
				// (API.md §4). Without this wait each storm started one
				// step further up the backoff: 3, 5, 7, 12, 24, 32 s.
				if wait := time.Until(lastStorm.Add(healthy)); wait > 0 {
					time.Sleep(wait)
				}
				r.progressf("every gateway's failure count reset after %s", time.Since(t0).Round(time.Second))
			}
			d, err := stormWatched(ctx, e, r, k)
			if err != nil {
				return err
			}
			lastStorm = time.Now()
			took[k] = d
		}
		bare = append(bare, took[0].Seconds())
		watched = append(watched, took[e.o.subscribers].Seconds())
		ratios = append(ratios, took[e.o.subscribers].Seconds()/took[0].Seconds())
		r.value("events_storm_pair_ratio", ratios[p], "ratio")
	}
	r.value("events_storm_gateways", float64(len(e.ids)), "count")
	r.value("events_storm_pairs", float64(len(ratios)), "count")
	r.value("events_storm_no_subscribers", median(bare), "s")
	r.value("events_storm_with_subscribers", median(watched), "s")
	r.value("events_storm_ratio", median(ratios), "ratio")
	return nil
}

// metricsURL is gatewayd's /metrics (beside /api, not under it).
func (e *env) metricsURL() string { return strings.TrimSuffix(e.api, "/api") + "/metrics" }

// getMetrics scrapes /metrics once with the run's token.
func (e *env) getMetrics(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", e.metricsURL(), nil)
	if err != nil {
		return nil, err
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("scrape /metrics: %d %s", resp.StatusCode, body)
	}
	return body, nil
}

// metricSum adds up every sample of one metric family in the text format
// (all label sets of a counter vector, or the one sample of a counter).
func metricSum(body []byte, name string) float64 {
	var sum float64
	for line := range bytes.Lines(body) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f := bytes.Fields(rest)
		v, err := strconv.ParseFloat(string(f[len(f)-1]), 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// scrapeMetrics: o.scrapes scrapes from one client, then as many from
// four at once; p50/p99 of each and the body's size.
func scrapeMetrics(ctx context.Context, e *env, r *report) error {
	n := max(e.o.scrapes, 1)
	one := make([]time.Duration, 0, n)
	size := 0
	for range n {
		t0 := time.Now()
		body, err := e.getMetrics(ctx)
		if err != nil {
			return err
		}
		one = append(one, time.Since(t0))
		size = len(body)
	}
	const clients = 4
	per := make([][]time.Duration, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / clients {
				t0 := time.Now()
				if _, err := e.getMetrics(ctx); err != nil {
					errs[c] = err
					return
				}
				per[c] = append(per[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var four []time.Duration
	for _, p := range per {
		four = append(four, p...)
	}
	slices.Sort(one)
	slices.Sort(four)
	r.value("metrics_scrape_gateways", float64(len(e.ids)), "count")
	r.value("metrics_body", float64(size)/1024, "KiB")
	r.value("metrics_scrape_count", float64(len(one)), "count")
	r.value("metrics_scrape_p50", ms(percentile(one, 50)), "ms")
	r.value("metrics_scrape_p99", ms(percentile(one, 99)), "ms")
	r.value("metrics_scrape_4clients_count", float64(len(four)), "count")
	r.value("metrics_scrape_4clients_p50", ms(percentile(four, 50)), "ms")
	r.value("metrics_scrape_4clients_p99", ms(percentile(four, 99)), "ms")
	return nil
}

// waitBackoffReset waits until every gateway is AUTHENTICATED with no
// failure counted and no last error: the state a cold start leaves, in
// which a storm starts every retry from the initial backoff.
func (e *env) waitBackoffReset(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var list struct {
			Data []struct {
				State             string
				ReconnectAttempts int     `json:"reconnect_attempts"`
				LastError         *string `json:"last_error"`
			}
		}
		dirty := -1
		if err := e.call("GET", "/gateways/status", nil, 200, &list); err == nil {
			dirty = 0
			for _, s := range list.Data {
				if s.State != "AUTHENTICATED" || s.ReconnectAttempts > 0 || s.LastError != nil {
					dirty++
				}
			}
			if dirty == 0 && len(list.Data) == len(e.ids) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d gateways still count failures from the last storm", timeout, dirty)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stormWatched drops every gateway's socket while k subscribers follow
// /api/events, and returns the time until all are AUTHENTICATED again.
// With subscribers it checks that each got every event published during
// the storm (the broker's counter says how many), with consecutive ids:
// an unfiltered stream sees every event, so a gap is a lost event.
func stormWatched(ctx context.Context, e *env, r *report, k int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subs, wait, err := startSubscribers(ctx, e, k)
	defer func() {
		cancel()
		wait()
	}()
	if err != nil {
		return 0, err
	}
	before, err := e.getMetrics(ctx)
	if err != nil {
		return 0, err
	}
	stopProfiles, err := e.profileStorm(ctx, k)
	if err != nil {
		return 0, err
	}
	cpuServer, cpuLoad := e.cpuSeconds(), cpuSeconds(os.Getpid())
	writes := e.writeCalls()
	took, err := dropAll(e)
	if err != nil {
		stopProfiles()
		return 0, err
	}
	stormEnd := time.Now()
	cpuServer, cpuLoad = e.cpuSeconds()-cpuServer, cpuSeconds(os.Getpid())-cpuLoad
	writes = e.writeCalls() - writes
	if err := stopProfiles(); err != nil {
		return 0, err
	}
	after, err := e.getMetrics(ctx)
	if err != nil {
		return 0, err
	}
	published := int64(metricSum(after, "gatewayd_events_published_total") - metricSum(before, "gatewayd_events_published_total"))
	changes := int64(metricSum(after, "gatewayd_gateway_state_changes_total") - metricSum(before, "gatewayd_gateway_state_changes_total"))
	overflows := metricSum(after, "gatewayd_event_overflows_total") - metricSum(before, "gatewayd_event_overflows_total")
	tag := "events_storm_" + strconv.Itoa(k) + "subs"
	r.progressf("storm with %d subscribers: %s, %d state changes, %d events published", k, took.Round(time.Millisecond), changes, published)
	r.value(tag+"_time", took.Seconds(), "s")
	r.value(tag+"_state_changes", float64(changes), "count")
	r.value(tag+"_state_changes_per_gateway", float64(changes)/float64(len(e.ids)), "count")
	r.value(tag+"_overflows", overflows, "count")
	// Who used the two cores during the storm: gatewayd, and gwload (the
	// simulator and the subscribers).
	r.value(tag+"_gatewayd_cpu", cpuServer, "s")
	r.value(tag+"_gwload_cpu", cpuLoad, "s")
	// gatewayd's write(2) calls: to the gateways, and to the subscribers
	// (one per chunk of their streams).
	r.value(tag+"_gatewayd_write_calls", float64(writes), "count")
	if k == 0 {
		return took, nil
	}
	// Every subscriber must get all of them; how long the last one took
	// after the gateways were back says how far the streams lag.
	deadline := time.Now().Add(time.Minute)
	for {
		behind := 0
		for _, s := range subs {
			if s.events.Load() < published && s.done.Load() == 0 {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d subscribers still short of %d events a minute after the storm", behind, k, published)
		}
		time.Sleep(5 * time.Millisecond)
	}
	drained := time.Since(stormEnd)
	cancel()
	wait()
	var minStates, maxStates int64 = -1, 0
	complete, broken, overflowed, resets, streamed, resumed := 0, 0, int64(0), int64(0), int64(0), int64(0)
	for _, s := range subs {
		st := s.states.Load()
		if minStates < 0 || st < minStates {
			minStates = st
		}
		maxStates = max(maxStates, st)
		overflowed += s.overflows.Load()
		resets += s.resets.Load()
		streamed += s.bytes.Load()
		resumed += s.resumes.Load()
		if s.disorder.Load() > 0 || s.gaps.Load() > 0 {
			broken++
		}
		// No gap and no step back: the ids run from first to last, one
		// by one, so the count says the stream is whole.
		if s.events.Load() == published && st == changes && s.disorder.Load() == 0 && s.gaps.Load() == 0 && s.resets.Load() == 0 {
			complete++
		}
	}
	r.value(tag+"_subscribers", float64(k), "count")
	r.value(tag+"_subscribers_complete", float64(complete), "count")
	r.value(tag+"_subscribers_out_of_order", float64(broken), "count")
	r.value(tag+"_events_per_subscriber_min", float64(minStates), "count")
	r.value(tag+"_events_per_subscriber_max", float64(maxStates), "count")
	r.value(tag+"_overflow_frames", float64(overflowed), "count")
	r.value(tag+"_reset_frames", float64(resets), "count")
	r.value(tag+"_resumes", float64(resumed), "count")
	r.value(tag+"_last_subscriber_done_after_storm", drained.Seconds(), "s")
	r.value(tag+"_streamed", float64(streamed)/(1<<20), "MiB")
	if complete != k {
		// A lost, repeated or reordered event fails the storm, whether
		// the stream was cut off, reset or ended by gatewayd without an
		// overflow (a missed write deadline, a stop): a storm whose
		// subscribers had gone is a cheaper one, and its time would
		// flatter the ratio. The figures above say what went wrong.
		return 0, fmt.Errorf("only %d of %d subscribers got all %d events (%d state changes) in order; min %d, max %d gateway.state, %d overflow, %d reset",
			complete, k, published, changes, minStates, maxStates, overflowed, resets)
	}
	return took, nil
}

// dropAll is storm's drop (scenarios.go): every simulated gateway closes
// its socket; it returns the time until all are AUTHENTICATED again.
func dropAll(e *env) (time.Duration, error) {
	n := len(e.sims)
	before := e.sim.Logins()
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
	deadline := time.Now().Add(2 * time.Minute)
	for e.sim.Logins() < before+n {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d gateways logged in again", e.sim.Logins()-before, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.waitAuthenticated(n, time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// sseSub is one /api/events client's tally. The reader goroutine writes
// it; the counters are atomic so that the scenario can watch progress.
type sseSub struct {
	events, states    atomic.Int64 // events with an id; of those, gateway.state
	firstID, lastID   atomic.Uint64
	disorder, gaps    atomic.Int64 // an id not above the last; an id skipped
	overflows, resets atomic.Int64 // event: overflow / reset frames
	done              atomic.Int32 // the stream ended
	bytes             atomic.Int64 // of the stream, framing included
	resumes           atomic.Int64 // reconnections after an overflow
}

// startSubscribers opens k streams and returns once each has sent its
// opening comment (the subscription exists from then on). wait ends the
// readers after ctx is cancelled.
func startSubscribers(ctx context.Context, e *env, k int) ([]*sseSub, func(), error) {
	// A client of its own: no overall timeout (a stream lasts), and one
	// connection per subscriber.
	tr := &http.Transport{MaxIdleConnsPerHost: k + 1, DisableCompression: true, ReadBufferSize: 64 << 10}
	client := &http.Client{Transport: tr}
	subs := make([]*sseSub, k)
	opened := make(chan error, k)
	var wg sync.WaitGroup
	for i := range subs {
		s := &sseSub{}
		subs[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.done.Store(1)
			s.read(ctx, client, e, opened)
		}()
	}
	wait := func() {
		wg.Wait()
		tr.CloseIdleConnections()
	}
	timeout := time.After(30 * time.Second)
	for range k {
		select {
		case err := <-opened:
			if err != nil {
				return subs, wait, err
			}
		case <-timeout:
			return subs, wait, errors.New("subscribers not connected within 30s")
		}
	}
	return subs, wait, nil
}

// read follows the stream until ctx ends it, tallying frames. It reports
// on opened once: nil when the first comment arrives, or the error. After
// an overflow it reconnects with Last-Event-ID, as a browser's
// EventSource does, and the ring's replay must continue exactly where
// the stream stopped (a reset, or a gap, is a lost event).
func (s *sseSub) read(ctx context.Context, client *http.Client, e *env, opened chan<- error) {
	sent := false
	open := func(err error) {
		if !sent {
			sent = true
			opened <- err // buffered for every subscriber: never blocks
		}
	}
	for {
		overflowed, err := s.follow(ctx, client, e, open)
		if err != nil {
			open(err)
			return
		}
		if !overflowed || ctx.Err() != nil {
			return
		}
		s.resumes.Add(1)
	}
}

// follow reads one connection of the stream; it reports whether the
// stream ended with event: overflow.
func (s *sseSub) follow(ctx context.Context, client *http.Client, e *env, open func(error)) (overflowed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", e.api+"/events", nil)
	if err != nil {
		return false, err
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if last := s.lastID.Load(); last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("GET /api/events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return false, fmt.Errorf("GET /api/events: %d %s", resp.StatusCode, body)
	}
	return s.tally(resp.Body, open), nil
}

// tally reads one connection's frames until it ends, counting them; it
// reports whether the stream ended with event: overflow.
//
// A hundred of these read a watched storm's 1.25 GB on the same two
// cores as gatewayd and the simulator, so the loop keeps its counts in
// locals and publishes them before each wait on the network (when the
// watcher can see a stream that has caught up), and skips a data line
// with one scan for its end: ~1.6x less CPU per event than a line split
// at ": " and atomic counters per line (BenchmarkTally).
func (s *sseSub) tally(body io.Reader, open func(error)) (overflowed bool) {
	br := bufio.NewReaderSize(body, 64<<10)
	t := s.snapshot()
	defer t.publish(s)
	var id uint64
	var typ []byte
	hasID := false
	for {
		if br.Buffered() == 0 {
			t.publish(s) // the next read may wait
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			// The end of the run (ctx) or of the stream; either way
			// the tally is what it is, and the scenario judges it.
			return overflowed
		}
		t.bytes += int64(len(line))
		line = line[:len(line)-1]
		switch {
		case len(line) == 0: // the end of a frame
			switch {
			case string(typ) == "overflow":
				t.overflows++
				overflowed = true
			case string(typ) == "reset":
				t.resets++
			case hasID:
				switch {
				case t.lastID == 0:
					t.firstID = id
				case id <= t.lastID:
					// After a reset the ring is replayed from its start:
					// what is not new is not counted again.
					if t.resets == 0 {
						t.disorder++
					}
					typ, hasID = typ[:0], false
					continue
				case id != t.lastID+1:
					t.gaps++
				}
				t.lastID = id
				if string(typ) == "gateway.state" {
					t.states++
				}
				t.events++
			}
			typ, hasID = typ[:0], false
		case line[0] == ':': // a comment: the stream is open
			t.publish(s)
			open(nil)
		case bytes.HasPrefix(line, []byte("id: ")):
			id, hasID = parseID(line[len("id: "):])
		case bytes.HasPrefix(line, []byte("event: ")):
			typ = append(typ[:0], line[len("event: "):]...)
		}
	}
}

// parseID reads an event id: decimal digits only.
func parseID(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// subTally is an sseSub's counts while its reader holds them.
type subTally struct {
	events, states, disorder, gaps, overflows, resets, bytes int64
	firstID, lastID                                          uint64
}

func (s *sseSub) snapshot() subTally {
	return subTally{events: s.events.Load(), states: s.states.Load(), disorder: s.disorder.Load(), gaps: s.gaps.Load(),
		overflows: s.overflows.Load(), resets: s.resets.Load(), bytes: s.bytes.Load(),
		firstID: s.firstID.Load(), lastID: s.lastID.Load()}
}

// publish stores the counts, events last: a watcher that sees all the
// events sees the rest of the tally that goes with them.
func (t *subTally) publish(s *sseSub) {
	s.states.Store(t.states)
	s.disorder.Store(t.disorder)
	s.gaps.Store(t.gaps)
	s.overflows.Store(t.overflows)
	s.resets.Store(t.resets)
	s.bytes.Store(t.bytes)
	s.firstID.Store(t.firstID)
	s.lastID.Store(t.lastID)
	s.events.Store(t.events)
}

// cpuSeconds is the user and system CPU time a process has used.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ, 100 on Linux
}

// writeCalls is how many write system calls gatewayd has made (syscw in
// /proc/<pid>/io), 0 when unknown.
func (e *env) writeCalls() int64 {
	if e.proc == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", e.proc.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func (e *env) cpuSeconds() float64 {
	if e.proc == nil {
		return 0
	}
	return cpuSeconds(e.proc.Process.Pid)
}

// profileStorm, with -profile-dir, takes CPU profiles of gatewayd (from
// -debug-addr) and of gwload itself for the storm's first 10 seconds,
// named after the number of subscribers. stop waits for both.
func (e *env) profileStorm(ctx context.Context, k int) (stop func() error, err error) {
	if e.o.profileDir == "" {
		return func() error { return nil }, nil
	}
	name := filepath.Join(e.o.profileDir, fmt.Sprintf("events-%dsubs", k))
	self, err := os.Create(name + "-gwload.cpu.pb.gz")
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := pprof.StartCPUProfile(self); err != nil {
		self.Close()
		return nil, fmt.Errorf("profile gwload: %w", err)
	}
	server := make(chan error, 1)
	go func() {
		if e.o.debugAddr == "" {
			server <- nil
			return
		}
		server <- e.saveProfile(ctx, "http://"+e.o.debugAddr+"/debug/pprof/profile?seconds=10", name+"-gatewayd.cpu.pb.gz")
	}()
	t0 := time.Now()
	return func() error {
		// Both profiles cover the same ten seconds, or the whole storm
		// if it was shorter than gatewayd's fixed-length one.
		if d := 10*time.Second - time.Since(t0); d > 0 {
			time.Sleep(d)
		}
		pprof.StopCPUProfile()
		return errors.Join(self.Close(), <-server)
	}, nil
}

func (e *env) saveProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile gatewayd: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile gatewayd: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile gatewayd: %w", err)
	}
	return f.Close()
}
