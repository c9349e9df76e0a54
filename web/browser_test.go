package web_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testdb"
)

var tmpl *testdb.Template

func TestMain(m *testing.M) { testdb.Exit(testdb.Run(m, &tmpl)) }

// chromiumPath finds headless Chromium: $CHROMIUM, else the usual names on
// PATH. Without it the UI tests fail, with how to install it: CI installs
// it (.ci/run), so a missing browser is a broken machine, not a skip.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the web UI tests need headless Chromium and it is not installed: on Debian run " +
		"`apt-get update && apt-get install -y chromium` (.ci/run does this), or set CHROMIUM to the browser's path")
	return ""
}

// serve runs an API (the real app: api.New over the harness's runtime) on
// a real socket and returns its base URL; it is shut down at cleanup.
// with changes the options (access control on, say).
func serve(t testing.TB, h *actorstest.Harness, with ...func(*api.Options)) string {
	t.Helper()
	opts := api.Options{ChaosEnabled: true, Telemetry: h.Telemetry}
	for _, f := range with {
		f(&opts)
	}
	app := api.New(h.Store, h.Runtime, h.Log, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(ln)
	}()
	t.Cleanup(func() {
		h.Telemetry.Events.Close() // ends the event streams, as shutdown does
		_ = app.ShutdownWithTimeout(5 * time.Second)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// harness is the actor runtime's test world with a given config.
func harness(t testing.TB, cfg actors.Config) *actorstest.Harness {
	return actorstest.New(t, tmpl, cfg)
}

// browser is one headless Chromium tab. Every console error, uncaught
// exception and browser log error (a CSP violation, a failed load) is
// recorded; the test fails on them at the end (see problems).
type browser struct {
	t     testing.TB
	ctx   context.Context
	mu    sync.Mutex
	msgs  []string
	shots string
	n     int
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir()
	// Screenshots of every view only when asked for (a directory that
	// outlives the test): each costs the browser a full render and a PNG,
	// for nobody to see. A failure's screenshot is always kept (fail).
	shots := os.Getenv("UI_SCREENSHOTS")
	if shots != "" {
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		// Shared memory in the temp dir: /dev/shm is small in many containers.
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 800))
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, shots: shots}
	if err := chromedp.Do(ctx); err != nil { // starts the browser and the tab
		cancelTab()
		cancelAlloc()
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() { // ends when the tab's context does
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		<-done
	})
	_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	require.NoError(t, err)
	return b
}

// record keeps what counts as a problem. A 4xx answer from /api is the
// browser's own note about a request the page made and handled (a form
// the API refused shows the API's words); anything else at error level is
// a problem: a script error, a CSP violation, a file that failed to load.
func (b *browser) record(m chromedp.ConsoleMessage) {
	switch m.Type {
	case chromedp.ConsoleError, chromedp.ConsoleException:
	default:
		return
	}
	if m.Source == "network" && strings.Contains(m.URL, "/api/") && strings.Contains(m.Text, "status of 4") {
		return
	}
	text := fmt.Sprintf("%s (%s) %s %s:%d", m.Type, m.Source, m.Text, m.URL, m.Line)
	if m.Exception != nil && m.Exception.Exception != nil {
		text += " " + m.Exception.Exception.Description
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, text)
	b.mu.Unlock()
}

func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

// fail stops the test with what went wrong, a screenshot of the page as
// it was (in UI_SCREENSHOTS, else in a directory of its own that is left
// behind to be looked at), and the console's problems so far.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	if b.shots == "" {
		if dir, err := os.MkdirTemp("", "gatewayd-ui-failure-"); err == nil {
			b.shots = dir
		}
	}
	shot := b.shot("failure")
	b.t.Fatalf("%s\nscreenshot: %s\nconsole problems: %v", fmt.Sprintf(format, args...), shot, b.problems())
}

// do runs actions, failing the test with what they were for.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// holdAnswer runs trigger and holds the answer to the request it makes to
// a URL matching pattern (Chromium's Fetch interception, at the response
// stage) until release is called: the page must cope with an answer that
// arrives after the event stream has told it what happened since.
func (b *browser) holdAnswer(what, pattern string, trigger chromedp.Action[chromedp.Void]) (release func()) {
	b.t.Helper()
	p := &fetch.RequestPattern{URLPattern: pattern, RequestStage: fetch.RequestStageResponse}
	if _, err := chromedp.Call(b.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{p}}); err != nil {
		b.fail("%s: intercept %s: %v", what, pattern, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	held, err := chromedp.Run(ctx, chromedp.WaitEvent(fetch.RequestPaused, nil, trigger))
	if err != nil {
		b.fail("%s: its answer held: %v", what, err)
	}
	return func() {
		b.t.Helper()
		_, err := chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: held.RequestID})
		if err == nil {
			_, err = chromedp.Call(b.ctx, fetch.Disable, cdp.Empty{})
		}
		if err != nil {
			b.fail("%s: let its answer through: %v", what, err)
		}
	}
}

// eval evaluates JavaScript (awaiting a promise) into T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluate %s: %v", js, err)
	}
	return v
}

// wait polls a JavaScript expression in the page, every frame, until it
// is truthy.
func (b *browser) wait(what, js string, within ...time.Duration) {
	b.t.Helper()
	d := 15 * time.Second
	if len(within) > 0 {
		d = within[0]
	}
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(d)))
	if err != nil {
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			b.fail("waited %s for %s (%s)", d, what, js)
		}
		b.fail("wait for %s: %v", what, err)
	}
}

// shot writes a screenshot of the viewport (full page when full) and
// returns its path; without a directory for them (UI_SCREENSHOTS) it
// does nothing.
func (b *browser) shot(name string, full ...bool) string {
	b.t.Helper()
	if b.shots == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	var buf []byte
	var err error
	if len(full) > 0 && full[0] {
		buf, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		buf, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.n++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	b.t.Logf("screenshot %s: %s", name, path)
	return path
}

// js quotes s as a JavaScript string.
func js(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}
