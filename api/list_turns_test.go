package api_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The mission: "a hostile gateway or client harms only itself". A list is
// built whole before JSONBudget counts it, at about four times its size
// (TestOneClientBuildsFewLargePagesAtOnce): a client whose lists are
// large builds one at a time (listTurnsPerClient), but before any of its
// lists is known to be large, its first burst was built all at once, as
// many as it had connections (API_MAX_CONNECTIONS_PER_CLIENT, 1,024 by
// default; measured before: 48 of 48 admitted at once). (Audit, helper 2.)
// Now a client builds at most listBuildsPerClient (32) lists at once, and
// one once they are large; another client is not held by them.
// (Found by an audit, helper 2, whose test this is.)
func TestOneClientsListsAreBuiltAFewAtATime(t *testing.T) {
	t.Parallel()
	app := api.New(nil, nil, zerolog.New(io.Discard), api.Options{DBTimeout: time.Minute})
	var building, most atomic.Int32
	release := make(chan struct{})
	app.Get("/audit/list", api.Listed(app, func(c *fiber.Ctx) error {
		if c.IP() == "127.0.0.2" { // the hostile client's lists
			n := building.Add(1)
			defer building.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
		}
		if c.Query("wait") != "" {
			<-release
		}
		return c.SendString(strings.Repeat("x", c.QueryInt("size", 100)))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(time.Second) })
	url := "http://" + ln.Addr().String() + "/audit/list"

	burst := func(client *http.Client, n int, query string) (wait func()) {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(url + query)
				if assert.NoError(t, err) {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					assert.Equal(t, http.StatusOK, resp.StatusCode)
				}
			}()
		}
		return wg.Wait
	}
	hostile := clientFrom("127.0.0.2")
	hostile.Timeout = time.Minute
	hostile.Transport.(*http.Transport).MaxIdleConnsPerHost = 64

	// A first burst of 48 lists: all of them reach the turns, 32 are built.
	done := burst(hostile, 48, "?wait=1")
	testutil.Eventually(t, func() bool { return api.ListBuilders(app, "127.0.0.2") == 48 }, 30*time.Second,
		"the burst's 48 lists are being built or wait for a turn")
	assert.Equal(t, int32(32), building.Load(), "lists of one client built at once")
	// Another client's list is not held by them.
	other := clientFrom("127.0.0.3")
	resp, b := getFrom(t, other, url)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	close(release)
	done()
	assert.Equal(t, int32(32), most.Load(), "the most lists of one client built at once")

	// Its lists are large now: one is built at a time.
	resp, b = getFrom(t, hostile, url+"?size=70000")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%.100s", b)
	release = make(chan struct{})
	most.Store(0)
	done = burst(hostile, 10, "?wait=1")
	testutil.Eventually(t, func() bool { return api.ListBuilders(app, "127.0.0.2") == 10 }, 30*time.Second,
		"the 10 lists are being built or wait for a turn")
	assert.Equal(t, int32(1), building.Load(), "lists of a client whose lists are large built at once")
	close(release)
	done()
	assert.Equal(t, int32(1), most.Load())
}
