package api_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 4, whose test this is.) README: "At most four such answers are made
// (loaded, decoded, transformed) at once; the others wait their turn
// within the database's 5 s, holding nothing, then get the same 503. So
// a client that asks for large waveforms on many connections ... leaves
// the rest to other clients." The four turns are one queue for all
// clients: one client that keeps many spectrum requests of a large
// reading waiting (it reads its answers: no budget refuses them) is
// ahead of every other client in it, and another client's waveform
// waits behind all of them, then gets 503: the bytes are bounded per
// client, the turns were not.
// Would catch: turns to make waveforms and spectra that one client can
// take from the others.
func TestOneClientsSpectraDoNotTakeEveryTurn(t *testing.T) {
	e := newEnv(t, api.Options{})
	id := completeReading(t, e, 400_000)
	addr := e.serve()
	spectrum := "/api/readings/" + id + "/spectrum?axis=x"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hostile := clientFrom("127.0.0.82")
	hostile.Timeout = 2 * time.Minute
	hostile.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hostile.Get("http://" + addr + spectrum)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// The flood is steady: some of its spectra are answered.
	testutil.Eventually(t, func() bool { return strings.Count(e.logText(), `"path":"/api/readings/`+id+`/spectrum"`) >= 8 },
		time.Minute, "the hostile client's spectra are made")

	t.Logf("hostile: %d answered 200, %d 503", strings.Count(e.logText(), `/spectrum","status":200`), strings.Count(e.logText(), `/spectrum","status":503`))
	victim := clientFrom("127.0.0.83")
	victim.Timeout = time.Minute
	for i := range 3 {
		start := time.Now()
		resp, b := getFrom(t, victim, "http://"+addr+"/api/readings/"+id+"/waveform")
		t.Logf("victim %d: %d after %v", i, resp.StatusCode, time.Since(start))
		assert.Equal(t, http.StatusOK, resp.StatusCode, "another client's waveform %d, after %v: %.200s", i, time.Since(start), b)
	}
}
