package actors_test

// (Checked by an audit, helper 9, whose test this is.) A gateway cannot stretch a reading
// timer past deadline + READING_TIMEOUT by keeping more of its data
// always arriving behind a large frame (the run of holdClock never ends).

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// After a pushed reading (a large frame's run, begun before the deadline)
// the gateway keeps a frame always half-arrived: every 50 ms it writes the
// rest of a NOT_DYN_TEMP and the first byte of the next one, so whenever
// the reader comes back for a frame, part of one is queued (nextQueued)
// and the run stands for ever. The asked reading's samples never come:
// it must still fail "no NOT_DYN_READING within 2s", by deadline +
// READING_TIMEOUT (API.md §8: "No reading stays unfinished forever").
func TestTrickleBehindARunDoesNotStretchTheReadingTimerPastItsBound(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.ReadingStartTimeout, cfg.ReadingTimeout = 10*time.Second, 2*time.Second
	cfg.PingInterval, cfg.PongTimeout = time.Minute, time.Minute // no ping lands inside a half-sent frame
	e := scriptHarness(t, newHarness(t, cfg))

	a := e.ask(t)
	require.EqualValues(t, scriptSerial, e.p.take())
	e.p.answerTake()
	e.p.started(true)
	t0 := time.Now() // the deadline is before t0 + 2 s

	e.p.mu.Lock()
	ws := e.p.ws
	e.p.mu.Unlock()
	raw := ws.UnderlyingConn()
	write := func(b []byte) bool {
		e.p.mu.Lock()
		defer e.p.mu.Unlock()
		_ = raw.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := raw.Write(b)
		return err == nil
	}
	pushed := unmaskedFrame(true, 1, []byte(`{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":9,"Serial":"20002","Time":"2026-12-06 10:00:00","X":"1,2","Y":"1,2","Z":"1,2"}}`))
	temp := unmaskedFrame(true, 1, []byte(`{"Type":"NOT_DYN_TEMP","From":"SERV","Target":"UI","Data":{"Serial":"20002","Temp":21.5}}`))
	require.True(t, write(append(pushed, temp[0]))) // a run begins at t0, and a frame is half here
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if !write(append(append([]byte(nil), temp[1:]...), temp[0])) {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()

	got := e.final(t, a)
	require.Equal(t, gatewayd.ReadingFailed, got.Status)
	assert.Equal(t, "no NOT_DYN_READING within 2s", errText(got))
	require.NotNil(t, got.CompletedAt)
	took := got.CompletedAt.Sub(t0)
	t.Logf("failed %s after the start (deadline + READING_TIMEOUT = 4s)", took)
	assert.Less(t, took, 4*time.Second+500*time.Millisecond, "stretched past deadline + READING_TIMEOUT")
	assert.Equal(t, gatewayd.StateAuthenticated, e.h.Status(e.g.ID).State, "the trickle itself is a live gateway")
}
