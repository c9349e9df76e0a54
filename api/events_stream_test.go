package api

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/events"
)

// bigBuffers is a pool of stream buffers larger than anything a test
// writes (see chunks).
func bigBuffers() *writerPool { return newWriterPool(1<<20, 4) }

// chunks records every write that reaches it: with a bufio.Writer larger
// than anything the test writes, one write is one flush of the stream.
type chunks struct {
	mu  sync.Mutex
	got []string
}

func (c *chunks) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, string(p))
	return len(p), nil
}

func (c *chunks) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// frames splits SSE text into its frames, without the blank lines.
func frames(s string) []string {
	out := strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n")
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

// heldStream runs stream on a fresh subscription whose flush interval
// never runs out by itself: every hold waits until the test releases it.
// It returns the broker, the subscription's output, a channel that gets a
// value whenever the stream starts holding, the release, and the stream's
// result.
func heldStream(t *testing.T, buffer int) (b *events.Broker, out *chunks, holding <-chan struct{}, release chan<- struct{}, done <-chan error) {
	t.Helper()
	b = events.NewBroker(events.DefaultRingSize)
	sub := b.Subscribe(events.Filter{}, 0, buffer)
	out = &chunks{}
	h, r, d := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	stop := make(chan struct{}) // a failed test lets go of a hold
	timing := streamTiming{
		interval: time.Hour,
		hold: func(time.Duration) {
			select {
			case h <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case <-r:
			case <-stop:
			}
		},
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		d <- stream(newStreamWriter(out, bigBuffers()), sub, timing)
	}()
	t.Cleanup(func() {
		b.Close()
		close(stop)
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Error("the stream did not end at Close")
		}
	})
	return b, out, h, r, d
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		require.FailNow(t, "timeout", "waiting for %s", what)
		panic("unreachable")
	}
}

func publishN(t *testing.T, b *events.Broker, n int) []uint64 {
	t.Helper()
	ids := make([]uint64, n)
	for i := range ids {
		id, err := b.Publish(events.Event{Type: events.TypeGatewayState, Data: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

func frameIDs(t *testing.T, fs []string) []uint64 {
	t.Helper()
	ids := make([]uint64, 0, len(fs))
	for _, f := range fs {
		line, _, _ := strings.Cut(f, "\n")
		id, err := strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
		require.NoError(t, err, "frame %q", f)
		ids = append(ids, id)
		assert.Contains(t, f, "\nevent: gateway.state\ndata: {\"n\":")
	}
	return ids
}

// A burst of events published while the stream holds its flush arrives
// complete and in order in one write, not one write per event.
func TestStreamWritesABurstInOneFlush(t *testing.T) {
	t.Parallel()
	const n = 500
	b, out, holding, release, _ := heldStream(t, n)
	require.Eventually(t, func() bool { return len(out.all()) == 1 }, 10*time.Second, time.Millisecond, "the opening comment")
	assert.Equal(t, ": keep-alive\n\n", out.all()[0])

	want := publishN(t, b, 1) // wakes the stream, which then holds
	wait(t, holding, "the hold")
	want = append(want, publishN(t, b, n-1)...)
	release <- struct{}{}

	require.Eventually(t, func() bool { return len(out.all()) == 2 }, 10*time.Second, time.Millisecond, "the burst's flush")
	assert.Equal(t, want, frameIDs(t, frames(out.all()[1])), "every event, in order, in one flush")

	// The next event holds again, alone in its flush.
	want = publishN(t, b, 1)
	wait(t, holding, "the second hold")
	release <- struct{}{}
	require.Eventually(t, func() bool { return len(out.all()) == 3 }, 10*time.Second, time.Millisecond, "the next flush")
	assert.Equal(t, want, frameIDs(t, frames(out.all()[2])))
}

// A subscriber that overflows while its stream holds still gets what its
// buffer held, in order, then event: overflow, and the stream ends.
func TestStreamOverflowWhileHolding(t *testing.T) {
	t.Parallel()
	const buffer = 8
	b, out, holding, release, done := heldStream(t, buffer)
	require.Eventually(t, func() bool { return len(out.all()) == 1 }, 10*time.Second, time.Millisecond, "the opening comment")

	want := publishN(t, b, 1)
	wait(t, holding, "the hold")
	more := publishN(t, b, buffer+1) // one more than fits: cut off
	want = append(want, more[:buffer]...)
	assert.EqualValues(t, 1, b.Overflows())
	release <- struct{}{}

	require.NoError(t, wait(t, done, "the end of the stream"))
	var text strings.Builder
	for _, c := range out.all()[1:] {
		text.WriteString(c)
	}
	fs := frames(text.String())
	require.NotEmpty(t, fs)
	assert.Equal(t, "event: overflow\ndata: {}", fs[len(fs)-1])
	assert.Equal(t, want, frameIDs(t, fs[:len(fs)-1]))
}

// A stream told to stop (shutdown) still writes what was published before
// it, in order, then ends: the stop never wins over events already
// waiting in the subscription. Repeated, because the stream's select
// picks between a ready event and a closed stop at random.
func TestStreamStopWritesWhatWasPublished(t *testing.T) {
	t.Parallel()
	for range 50 {
		b := events.NewBroker(events.DefaultRingSize)
		sub := b.Subscribe(events.Filter{}, 0, 64)
		want := publishN(t, b, 5)
		out := &chunks{}
		stop := make(chan struct{})
		close(stop)
		err := stream(newStreamWriter(out, bigBuffers()), sub,
			streamTiming{interval: 0, hold: func(time.Duration) {}, stop: stop})
		b.Close()
		require.NoError(t, err)
		all := strings.Join(out.all(), "")
		got := frameIDs(t, frames(strings.TrimPrefix(all, ": keep-alive\n\n")))
		require.Equal(t, want, got, "every event published before the stop")
	}
}
