package api

// (Checked by an audit, helper 2, whose test this is.)

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/events"
)

// brittle is a client connection that takes failAt bytes and then fails
// every write (a write timeout, a client gone), recording what it took.
type brittle struct {
	mu     sync.Mutex
	out    strings.Builder
	failAt int
}

var errBrittle = errors.New("write timeout")

func (b *brittle) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.failAt - b.out.Len(); room < len(p) {
		b.out.Write(p[:max(room, 0)])
		return max(room, 0), errBrittle
	}
	b.out.Write(p)
	return len(p), nil
}

func (b *brittle) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// Many streams share one small pool of small buffers (so that writes
// spill past a buffer, as a burst or a replay does) and end every way a
// stream ends (overflow, shutdown, revoked token, client gone, a write
// that fails at a random byte, the broker's close), at random (fixed
// seed). Each client gets a prefix of its own stream only, its events
// gapless and in order, the overflow last; no buffer is ever in the pool
// twice or held by two streams, and every stream that did not fail gives
// its buffer back. Would catch: a buffer pooled while a stream still
// writes into it, or pooled twice (streams writing into each other's
// bytes); a buffer kept on some exit path.
func TestStreamBuffersOnEveryExitPath(t *testing.T) {
	t.Parallel()
	pool := newWriterPool(256, 3)
	rng := rand.New(rand.NewPCG(3, 9))
	const streams = 24
	type run struct {
		out    *brittle
		w      *streamWriter
		err    error
		how    int
		tag    string
		broker *events.Broker
	}
	runs := make([]*run, streams)
	var wg sync.WaitGroup
	for i := range runs {
		r := &run{out: &brittle{failAt: 1 << 30}, how: rng.IntN(6), tag: fmt.Sprintf("s%d", i)}
		if r.how == 4 {
			r.out.failAt = rng.IntN(4000)
		}
		runs[i] = r
		r.broker = events.NewBroker(50)
		for k := range 20 { // a replay, spilling past the buffer
			_, err := r.broker.Publish(events.Event{Type: events.TypeGatewayState, Data: []byte(fmt.Sprintf(`{%q:%d}`, r.tag, k))})
			require.NoError(t, err)
		}
		sub := r.broker.Resume(events.Filter{}, 0, 1+rng.IntN(40))
		stop, recheck, gone := make(chan struct{}), make(chan time.Time), make(chan struct{})
		keepAlive := make(chan time.Time, 1)
		timing := streamTiming{keepAlive: keepAlive, interval: time.Millisecond, hold: time.Sleep,
			stop: stop, recheck: recheck, allowed: func() bool { return false }, gone: gone}
		r.w = newStreamWriter(r.out, pool)
		_, _ = r.w.buf().WriteString("HTTP/1.1 200 OK\r\n\r\n")
		ended := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(ended)
			defer r.w.release()
			r.err = stream(r.w, sub, timing)
		}()
		pace := rand.New(rand.NewPCG(3, uint64(i)))
		go func() {
			defer wg.Done()
			for k := 20; k < 20+pace.IntN(200); k++ {
				_, _ = r.broker.Publish(events.Event{Type: events.TypeGatewayState, Data: []byte(fmt.Sprintf(`{%q:%d}`, r.tag, k))})
				if pace.IntN(8) == 0 {
					time.Sleep(time.Duration(pace.IntN(300)) * time.Microsecond)
				}
				if pace.IntN(20) == 0 {
					select {
					case keepAlive <- time.Now():
					default:
					}
				}
			}
			switch r.how {
			case 0:
				close(stop)
			case 1:
				select {
				case recheck <- time.Now():
				case <-ended:
				}
			case 2:
				close(gone)
			}
			r.broker.Close() // the end of every other way, and of these if they missed it
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("streams did not end")
	}

	seen := map[*bufio.Writer]bool{}
	for _, w := range pool.idle {
		assert.False(t, seen[w], "a buffer twice in the pool")
		seen[w] = true
	}
	assert.LessOrEqual(t, len(pool.idle), 3)
	for i, r := range runs {
		got := r.out.String()
		body, ok := strings.CutPrefix(got, "HTTP/1.1 200 OK\r\n\r\n")
		if !ok {
			require.True(t, errors.Is(r.err, errBrittle), "stream %d: %q", i, got)
			continue
		}
		if errors.Is(r.err, errBrittle) {
			// A failed flush's buffer is kept (a write that failed as it
			// spilled left one that release reset and pooled): never both.
			assert.False(t, r.w.w != nil && seen[r.w.w], "stream %d: a buffer it holds is pooled", i)
		} else {
			assert.Nil(t, r.w.w, "stream %d (%v): its buffer given back", i, r.err)
		}
		// Whole frames, the last maybe cut by the failure.
		frames := strings.Split(body, "\n\n")
		if !errors.Is(r.err, errBrittle) {
			require.Equal(t, "", frames[len(frames)-1], "stream %d ends with a whole frame", i)
		}
		frames = frames[:len(frames)-1]
		next := 0
		for j, f := range frames {
			switch {
			case strings.HasPrefix(f, ":"): // keep-alive
			case strings.Contains(f, "event: overflow"):
				assert.Equal(t, len(frames)-1, j, "stream %d: the overflow is the last frame", i)
			default:
				want := fmt.Sprintf(`data: {%q:%d}`, r.tag, next)
				require.True(t, strings.HasSuffix(f, want), "stream %d frame %d: %q, want %q", i, j, f, want)
				next++
			}
		}
	}
}
