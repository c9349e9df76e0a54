package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

var (
	uiScale     = flag.Bool("ui-scale", false, "run TestUIScale: the overview against thousands of simulated gateways (heavy; see BENCHMARKS.md)")
	uiScaleN    = flag.Int("ui-scale-gateways", 10000, "gateways for TestUIScale")
	uiScaleRuns = flag.Int("ui-scale-runs", 3, "page loads and storms TestUIScale measures")
	uiScaleProf = flag.Bool("ui-scale-profile", false, "TestUIScale: print where the page's main thread spent the first storm (V8 CPU profile, self time)")
)

// TestUIScale measures the overview in the browser, with the Performance
// API, against the real gatewayd binary and 10,000 simulated gateways:
// how long the page takes to show them all, and how it keeps up with a
// reconnect storm (every simulated connection dropped at once). Opt-in:
//
//	go test ./web -run TestUIScale -v -timeout 20m -args -ui-scale
//
// It prints figures (name value unit) and asserts only that the UI got
// there; BENCHMARKS.md has the numbers.
func TestUIScale(t *testing.T) {
	if !*uiScale {
		t.Skip("opt-in benchmark: -ui-scale")
	}
	n := *uiScaleN
	raiseFileLimit(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "gatewayd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatewayd")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build gatewayd: %s", out)

	// The database: n gateways of one factory, written with COPY, each a
	// simulated gateway (two sensors each, as by default).
	pool, dbURL := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)
	ctx := context.Background()
	org, err := st.CreateOrganization(ctx, "Scale", nil)
	require.NoError(t, err)
	f, err := st.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "Scale plant"})
	require.NoError(t, err)
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	sim.KeepRecords(0)
	sims := make([]*ctctest.Gateway, n)
	rows := make([][]any, n)
	for i := range n {
		name := fmt.Sprintf("scale-%05d", i)
		sims[i] = sim.Add(name, ctctest.Config{Email: "scale@example.com", Password: "pw-" + name})
		sealed, err := sealer.Seal("pw-" + name)
		require.NoError(t, err)
		rows[i] = []any{uuid.New(), f.ID, name, name, sims[i].URL(), "scale@example.com", sealed}
	}
	_, err = pool.CopyFrom(ctx, pgx.Identifier{"gateways"},
		[]string{"id", "factory_id", "gateway_id", "name", "url", "email", "password_encrypted"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)

	// gatewayd, as in production but for the address, with its log in a file.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	logFile, err := os.Create(filepath.Join(dir, "gatewayd.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + dbURL, "ENCRYPTION_KEY=" + testutil.KeyBase64,
		"API_HOST=127.0.0.1", "API_PORT=" + strconv.Itoa(port), "AUTH_ENABLED=false", "LOG_LEVEL=warn"}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	})
	started := time.Now()
	waitHealth(t, base, n, 2*time.Minute, exited)
	t.Logf("figure coldstart_all_authenticated %.2f s (gatewayd start → %d AUTHENTICATED, server side)", time.Since(started).Seconds(), n)
	// Let the logins' aftermath (sensor discovery: two sensors each)
	// settle, so the page is measured against a fleet at rest.
	require.Eventually(t, func() bool {
		var sensors int
		return pool.QueryRow(ctx, `SELECT count(*) FROM sensors`).Scan(&sensors) == nil && sensors >= 2*n
	}, 2*time.Minute, 100*time.Millisecond, "every gateway's sensors discovered")
	t.Logf("settled after %.2f s", time.Since(started).Seconds())

	b := newBrowser(t)
	type load struct {
		Overview, Boot, StreamOpen, SnapshotStart, Fetch, Apply, Sort, Rendered float64
		Bytes, Decoded                                                          float64
	}
	var loads []load
	for run := range *uiScaleRuns {
		if run == 0 {
			b.do("open the overview", chromedp.Navigate(base+"/?perf#/"))
		} else {
			b.do("reload the overview", chromedp.Reload())
		}
		want := fmt.Sprintf("Showing %s of %s gateways", thousands(n), thousands(n))
		b.wait("every gateway listed", `document.querySelector('#shown')?.textContent === '`+want+`' && performance.getEntriesByName('gwd:overview').length > 0`, time.Minute)
		l := eval[load](b, `(() => {
			const m = name => performance.getEntriesByName(name)[0]?.startTime ?? -1;
			const r = performance.getEntriesByType('resource').find(e => e.name.endsWith('/api/gateways/status'));
			return {Overview: performance.getEntriesByName('gwd:overview')[0].duration, Boot: m('gwd:boot'),
				StreamOpen: m('gwd:stream-open'), SnapshotStart: m('gwd:snapshot-start'),
				Fetch: m('gwd:snapshot-fetched') - m('gwd:snapshot-start'), Apply: m('gwd:snapshot-applied') - m('gwd:snapshot-fetched'),
				Sort: Math.max(0, ...gwdPerf.sortMs), Rendered: m('gwd:overview-rendered'),
				Bytes: r?.transferSize ?? -1, Decoded: r?.decodedBodySize ?? -1};
		})()`)
		loads = append(loads, l)
		t.Logf("load %d: first paint of %d gateways %.0f ms after navigation (modules run at %.0f ms; stream open at %.0f ms; "+
			"status list asked at %.0f ms, fetched in %.0f ms, %.0f KiB on the wire, %.0f KiB JSON; into the map in %.0f ms; sorted in %.1f ms; rendered at %.0f ms)",
			run+1, n, l.Overview, l.Boot, l.StreamOpen, l.SnapshotStart, l.Fetch, l.Bytes/1024, l.Decoded/1024, l.Apply, l.Sort, l.Rendered)
	}
	ms := func(get func(load) float64) []float64 {
		var out []float64
		for _, l := range loads {
			out = append(out, get(l))
		}
		return out
	}
	figure(t, "overview_first_paint", ms(func(l load) float64 { return l.Overview }), "ms")
	figure(t, "overview_status_fetch", ms(func(l load) float64 { return l.Fetch }), "ms")
	figure(t, "overview_status_parse_apply", ms(func(l load) float64 { return l.Apply }), "ms")
	figure(t, "overview_sort", ms(func(l load) float64 { return l.Sort }), "ms")

	// Scrolling: a jump to the middle and to the end redraws only the rows on screen.
	type scroll struct{ Max, Rows float64 }
	sc := eval[scroll](b, `(async () => {
		const frame = () => new Promise(r => requestAnimationFrame(() => r()));
		let worst = 0;
		for (const y of [0.25, 0.5, 0.75, 1, 0]) {
			const t0 = performance.now();
			window.scrollTo(0, document.documentElement.scrollHeight * y);
			await frame(); await frame();
			worst = Math.max(worst, performance.now() - t0);
		}
		return {Max: worst, Rows: document.querySelectorAll('.vlist .row').length};
	})()`)
	t.Logf("figure overview_scroll_jump_two_frames_max %.1f ms (rows in the DOM: %.0f)", sc.Max, sc.Rows)

	// The storm: every simulated connection dropped at once, runs times.
	type storm struct {
		Events, Frames, Opens, Resyncs  float64
		FrameP50, FrameP99, FrameMax    float64
		LagP50, LagP99, LagMax          float64
		LongTasks, LongMax, UIDone, Dip float64
		BackoffSeen, HandlerMs, Sorts   float64
	}
	var storms []storm
	for run := range *uiScaleRuns {
		eval[chromedp.Void](b, `(() => {
			Object.assign(gwdPerf, {events: 0, handlerMs: 0, frames: 0, frameMs: [], lagMs: [], resyncs: 0, sortMs: []});
			window.__lt = [];
			if (!window.__ltObs) { window.__ltObs = new PerformanceObserver(l => __lt.push(...l.getEntries().map(e => e.duration))); __ltObs.observe({type: 'longtask'}); }
			const n = () => parseInt(document.querySelector('.count[data-state=AUTHENTICATED] .count-n').textContent.replace(/\D/g, ''), 10);
			const backoff = () => parseInt(document.querySelector('.count[data-state=BACKOFF] .count-n').textContent.replace(/\D/g, ''), 10);
			window.__storm = {t0: performance.now(), dip: n(), done: 0, backoff: 0};
			(function watch() {
				const s = window.__storm, a = n();
				s.dip = Math.min(s.dip, a);
				s.backoff = Math.max(s.backoff, backoff());
				if (s.dip < `+strconv.Itoa(n)+` && a === `+strconv.Itoa(n)+`) { s.done = performance.now() - s.t0; return; }
				requestAnimationFrame(watch);
			})();
		})()`)
		if run == 0 && *uiScaleProf {
			_, err := chromedp.Call(b.ctx, profiler.Enable, cdp.Empty{})
			require.NoError(t, err)
			_, err = chromedp.Call(b.ctx, profiler.Start, cdp.Empty{})
			require.NoError(t, err)
		}
		dropAt := time.Now()
		for _, sg := range sims {
			sg.Drop(websocket.CloseGoingAway)
		}
		dropTook := time.Since(dropAt)
		waitHealth(t, base, n, 2*time.Minute, exited)
		serverDone := time.Since(dropAt)
		b.wait("the overview back to all AUTHENTICATED", `window.__storm.done > 0`, 2*time.Minute)
		if run == 0 && *uiScaleProf {
			printProfile(t, b)
		}
		s := eval[storm](b, `(() => {
			const q = (a, p) => { if (!a.length) return 0; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
			const p = gwdPerf;
			return {Events: p.events, Frames: p.frames, Opens: p.streamOpens, Resyncs: p.resyncs,
				FrameP50: q(p.frameMs, .5), FrameP99: q(p.frameMs, .99), FrameMax: Math.max(0, ...p.frameMs),
				LagP50: q(p.lagMs, .5), LagP99: q(p.lagMs, .99), LagMax: Math.max(0, ...p.lagMs),
				LongTasks: __lt.length, LongMax: Math.max(0, ...__lt), UIDone: __storm.done, Dip: __storm.dip, BackoffSeen: __storm.backoff,
				HandlerMs: p.handlerMs, Sorts: p.sortMs.length};
		})()`)
		storms = append(storms, s)
		t.Logf("storm %d: drops sent in %.0f ms; server all AUTHENTICATED after %.2f s, the overview after %.2f s (count dipped to %.0f, BACKOFF peaked at %.0f); "+
			"%.0f state events handled in %.0f ms of script, drawn in %.0f frames (%.0f re-sorts); frame work p50 %.2f / p99 %.2f / max %.2f ms; "+
			"event→screen lag p50 %.1f / p99 %.1f / max %.1f ms; long tasks %.0f (max %.0f ms); stream opened %.0f times, resyncs %.0f",
			run+1, float64(dropTook.Microseconds())/1000, serverDone.Seconds(), s.UIDone/1000, s.Dip, s.BackoffSeen,
			s.Events, s.HandlerMs, s.Frames, s.Sorts, s.FrameP50, s.FrameP99, s.FrameMax, s.LagP50, s.LagP99, s.LagMax, s.LongTasks, s.LongMax, s.Opens, s.Resyncs)
		require.Greater(t, s.Events, float64(n), "the overview saw the storm's events")
	}
	get := func(f func(storm) float64) []float64 {
		var out []float64
		for _, s := range storms {
			out = append(out, f(s))
		}
		return out
	}
	figure(t, "storm_overview_all_authenticated", get(func(s storm) float64 { return s.UIDone }), "ms")
	figure(t, "storm_state_events", get(func(s storm) float64 { return s.Events }), "events")
	figure(t, "storm_frames", get(func(s storm) float64 { return s.Frames }), "frames")
	figure(t, "storm_frame_work_p99", get(func(s storm) float64 { return s.FrameP99 }), "ms")
	figure(t, "storm_frame_work_max", get(func(s storm) float64 { return s.FrameMax }), "ms")
	figure(t, "storm_lag_p99", get(func(s storm) float64 { return s.LagP99 }), "ms")
	figure(t, "storm_long_tasks", get(func(s storm) float64 { return s.LongTasks }), "tasks")
	figure(t, "storm_long_task_max", get(func(s storm) float64 { return s.LongMax }), "ms")
	figure(t, "storm_stream_opens", get(func(s storm) float64 { return s.Opens }), "opens")
	t.Logf("figure event_overflows %s", metric(t, base, "gatewayd_event_overflows_total"))
	require.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}

// figure logs a median and every run.
func figure(t *testing.T, name string, runs []float64, unit string) {
	t.Helper()
	s := slices.Clone(runs)
	slices.Sort(s)
	parts := make([]string, len(runs))
	for i, v := range runs {
		parts[i] = strconv.FormatFloat(v, 'f', 1, 64)
	}
	t.Logf("figure %s %.1f %s (median; runs %s)", name, s[len(s)/2], unit, strings.Join(parts, " / "))
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// waitHealth polls /api/health until n gateways are authenticated.
func waitHealth(t *testing.T, base string, n int, within time.Duration, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last struct {
		Gateways struct{ Total, Authenticated int }
	}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("gatewayd exited: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/api/health"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&last)
			resp.Body.Close()
			if last.Gateways.Authenticated >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d gateways authenticated after %s, want %d", last.Gateways.Authenticated, within, n)
}

// metric reads one sample of /metrics.
func metric(t *testing.T, base, name string) string {
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return "?"
}

// raiseFileLimit lifts the soft open-file limit to the hard one: the
// simulator holds a socket per gateway.
func raiseFileLimit(t *testing.T) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// printProfile stops the page's V8 CPU profile and logs the functions
// with the most self time. "(program)" is the browser's own work outside
// JavaScript: parsing the event stream, dispatching its events, style,
// layout and paint.
func printProfile(t *testing.T, b *browser) {
	res, err := chromedp.Call(b.ctx, profiler.Stop, cdp.Empty{})
	require.NoError(t, err)
	byID := map[int64]*profiler.ProfileNode{}
	for _, nd := range res.Profile.Nodes {
		byID[int64(nd.ID)] = nd
	}
	self := map[string]float64{}
	for i, id := range res.Profile.Samples {
		nd := byID[int64(id)]
		name := fmt.Sprintf("%s %s:%d", nd.CallFrame.FunctionName, path.Base(nd.CallFrame.URL), nd.CallFrame.LineNumber+1)
		self[name] += float64(res.Profile.TimeDeltas[i]) / 1000
	}
	names := make([]string, 0, len(self))
	for k := range self {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return int(self[b] - self[a]) })
	for _, k := range names[:min(20, len(names))] {
		t.Logf("profile %8.1f ms %s", self[k], k)
	}
}
