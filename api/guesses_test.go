package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/store"
	"github.com/ctcgw/gatewayd/telemetry"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address local (every 127.x address is this host's).
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func getWith(t *testing.T, c *http.Client, url, token string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return res.StatusCode, e.Error.Code, res.Header
}

// A client sending made-up tokens (well formed, a new one each time) had
// every one looked up in the database, two statements each, as fast as it
// sent them. Now an address gets a budget of such lookups (30 at once,
// 10 a second after), past which it is answered 429 without asking the
// database; a token the database confirmed is never refused for it, and
// another address is not affected. (Suspicion of an audit, helper 1.)
func TestMadeUpTokensAreLookedUpWithinABudgetPerAddress(t *testing.T) {
	e := newEnv(t, api.Options{AuthEnabled: true, TokenCacheTTL: time.Minute,
		Telemetry: &telemetry.Observer{Metrics: metrics.New(), Events: events.NewBroker(100), Log: zerolog.Nop()}})
	ctx := context.Background()
	mint := func(name string) string {
		_, s, err := e.st.CreateToken(ctx, name, gatewayd.RoleViewer, nil)
		require.NoError(t, err)
		return secret(s)
	}
	used, fresh := mint("used"), mint("fresh")
	base := serveOn(t, e.app, events.NewBroker(1))
	url := base + "/api/factories"
	flooder, other := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")

	status, _, _ := getWith(t, flooder, url, used)
	require.Equal(t, 200, status, "a token the database confirms")

	// Eight clients guess at once until one is held back: however slow
	// the box, they outrun 10 lookups a second long before 2,000.
	start := time.Now()
	var mu sync.Mutex
	refused, limited := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				mu.Lock()
				stop := limited > 0 || refused+limited >= 2000
				mu.Unlock()
				if stop {
					return
				}
				guess, err := store.NewTokenSecret()
				if !assert.NoError(t, err) {
					return
				}
				status, code, h := getWith(t, flooder, url, guess)
				mu.Lock()
				switch status {
				case 401:
					refused++
				case 429:
					limited++
					assert.Equal(t, "TOO_MANY_REQUESTS", code)
					assert.Equal(t, "1", h.Get("Retry-After"))
				default:
					t.Errorf("a made-up token answered %d", status)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	// The budget's first lookup went to the used token (not confirmed yet).
	assert.GreaterOrEqual(t, refused, 29, "the rest of the first 30 are looked up")
	assert.LessOrEqual(t, float64(refused), 29+10*took.Seconds()+8, "then 10 a second (in %s; 8 clients in flight)", took)
	require.Positive(t, limited, "held back within 2,000 guesses")

	status, _, _ = getWith(t, flooder, url, used)
	assert.Equal(t, 200, status, "a confirmed token is never refused for its address's guesses")
	status, _, _ = getWith(t, other, url, fresh)
	assert.Equal(t, 200, status, "another address's new token is looked up")
	status, _, _ = getWith(t, flooder, url, fresh)
	assert.Equal(t, 200, status, "confirmed by the other address's lookup")
}

// README, Security: "A token that works is never refused for it". A token
// that worked before gatewayd restarted was not confirmed by the new
// process (its cache starts empty), so once anything at the same client
// address (the reverse proxy README recommends, a NAT) had spent the
// address's budget on made-up tokens, every operator's working token was
// answered 429 for as long as the guessing went on. A token among the
// usable ones is now looked up past the budget; the guesses still are
// not. (Found by an audit, helper 1, whose test this is.)
func TestAWorkingTokenIsNotRefusedAfterARestart(t *testing.T) {
	opts := api.Options{AuthEnabled: true, TokenCacheTTL: time.Minute,
		Telemetry: &telemetry.Observer{Metrics: metrics.New(), Events: events.NewBroker(100), Log: zerolog.Nop()}}
	e := newEnv(t, opts)
	ctx := context.Background()
	_, s, err := e.st.CreateToken(ctx, "operator", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	operator := secret(s)
	proxy := clientFrom("127.0.0.9") // every client of a reverse proxy has its address

	before := serveOn(t, e.app, events.NewBroker(1))
	status, _, _ := getWith(t, proxy, before+"/api/factories", operator)
	require.Equal(t, 200, status, "the operator's token works")

	// gatewayd restarts: a new process over the same database.
	restarted := api.New(e.st, e.rt, zerolog.Nop(), opts)
	base := serveOn(t, restarted, events.NewBroker(1))
	url := base + "/api/factories"

	// Someone behind the same proxy guesses tokens until held back.
	limited := false
	for i := 0; i < 2000 && !limited; i++ {
		guess, err := store.NewTokenSecret()
		require.NoError(t, err)
		status, _, _ := getWith(t, proxy, url, guess)
		require.Contains(t, []int{401, 429}, status)
		limited = status == 429
	}
	require.True(t, limited, "the guesser is held back")

	status, code, _ := getWith(t, proxy, url, operator)
	assert.Equal(t, 200, status, "a token that works was refused %s after a restart because its address guessed", code)
	// The guesser still is (its budget refills at 10 a second, so on a
	// loaded box some guesses may be looked up first: as many tries as
	// above, 100 were too few for a CI run whose lookups took ~100 ms).
	limited = false
	for i := 0; i < 2000 && !limited; i++ {
		guess, err := store.NewTokenSecret()
		require.NoError(t, err)
		status, _, _ := getWith(t, proxy, url, guess)
		require.Contains(t, []int{401, 429}, status)
		limited = status == 429
	}
	assert.True(t, limited, "the guesser is held back still")
}
