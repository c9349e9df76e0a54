package actors

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (in *intake) queued() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.waiters.Len()
}

// admitting runs admit in a goroutine and waits until it is in line (or
// in); the channel gets its answer.
func admitting(t *testing.T, in *intake, ctx context.Context, n int64, maxWait time.Duration, inLine int) <-chan bool {
	t.Helper()
	got := make(chan bool, 1)
	go func() { got <- in.admit(ctx, n, maxWait) }()
	require.Eventually(t, func() bool { return in.queued() == inLine || len(got) > 0 }, 5*time.Second, time.Millisecond)
	return got
}

// Readers get in while the pipeline has room, wait in turn while it has
// not, and are let in as room is made: first come, first served, even
// when a later one would fit.
func TestIntakeHoldsReadersInTurn(t *testing.T) {
	t.Parallel()
	in := newIntake(100)
	ctx := context.Background()
	require.True(t, in.admit(ctx, 60, time.Hour))
	in.add(30) // the processor's queue, say
	first := admitting(t, in, ctx, 50, time.Hour, 1)
	second := admitting(t, in, ctx, 5, time.Hour, 2) // would fit, but is second
	assert.Empty(t, first)
	assert.Empty(t, second)

	in.add(-60) // 30 held: the first fits (80), then the second (85)
	assert.True(t, <-first)
	assert.True(t, <-second)
	assert.Equal(t, int64(85), in.held())
	in.add(-85)
	assert.Equal(t, int64(0), in.held())
	assert.True(t, in.admit(ctx, 500, time.Hour), "an empty pipeline takes a frame of any size")
}

// A reader waits at most maxWait, then reads anyway; one whose connection
// closes while it waits reserves nothing, and the next in line moves up.
func TestIntakeWaitIsBounded(t *testing.T) {
	t.Parallel()
	in := newIntake(100)
	require.True(t, in.admit(context.Background(), 100, time.Hour))

	ctx, cancel := context.WithCancel(context.Background())
	closing := admitting(t, in, ctx, 10, time.Hour, 1)
	patient := admitting(t, in, context.Background(), 10, time.Hour, 2)
	hurried := admitting(t, in, context.Background(), 10, 20*time.Millisecond, 3)
	assert.True(t, <-hurried, "in after its maximum wait")
	assert.Equal(t, int64(110), in.held())
	cancel()
	assert.False(t, <-closing)
	assert.Equal(t, 1, in.queued(), "the patient one is still in line")
	assert.Empty(t, patient)
	in.add(-110)
	assert.True(t, <-patient)
	assert.Equal(t, int64(10), in.held())
}

// A ledger carries a frame's reservation to the actor: given back when
// the actor has handled the frame, or, for every frame still on its way,
// when the connection is torn down; never twice, and a frame handed over
// after that is refused so that the reader gives its bytes back itself.
func TestLedgerGivesEveryReservationBackOnce(t *testing.T) {
	t.Parallel()
	in := newIntake(1 << 20)
	in.add(300) // two frames' reservations, taken by their reader
	l := newLedger(in)
	require.True(t, l.hold(100))
	require.True(t, l.hold(200))
	assert.EqualValues(t, 300, in.held(), "held on the ledger, still counted")
	l.done(100) // the actor handled the first
	assert.EqualValues(t, 200, in.held())
	l.close() // torn down with the second still in the mailbox
	assert.Zero(t, in.held())
	l.done(200) // the mailbox's frame handled (dropped) later
	assert.Zero(t, in.held(), "not given back twice")
	assert.False(t, l.hold(50), "a frame after the teardown is refused")
	assert.False(t, l.hold(0), "a small frame holds nothing")
	var none *ledger
	assert.False(t, none.hold(10))
	none.done(10)
	none.close()
}

// A frame that outgrows its reserve asks for more (grow) ahead of the
// readers waiting to begin theirs, and waits while the pipeline is full.
// When every byte counted is held by frames waiting to grow, nothing
// would make room (until their maxWait): the first of them goes on over
// the limit, finishes, and gives its bytes back, and so on. Would catch:
// frames let in at their first reserve that then wait on each other
// (a burst of 4 MiB readings stalled for half READING_TIMEOUT), or a
// grower queued behind readers not yet begun.
func TestIntakeGrowingFramesDoNotWaitOnEachOther(t *testing.T) {
	t.Parallel()
	const limit, reserve = 1000, 250
	in := newIntake(limit)
	ctx := context.Background()
	for range 4 {
		require.True(t, in.admit(ctx, reserve, time.Minute))
	}
	// A reader not yet begun waits behind the full pipeline.
	later := admitting(t, in, ctx, reserve, time.Minute, 1)

	// Each frame grows to 4 × its reserve, then is handed on and gives
	// everything back (the processor took it). maxWait is a minute: only
	// the stuck rule lets them on in time.
	done := make(chan int64, 4)
	for range 4 {
		go func() {
			held := int64(reserve)
			for held < 4*reserve {
				if !in.grow(ctx, held, held, time.Minute) {
					done <- -1
					return
				}
				held *= 2
			}
			in.add(-held)
			done <- held
		}()
	}
	for range 4 {
		select {
		case got := <-done:
			assert.Equal(t, int64(4*reserve), got)
		case <-time.After(20 * time.Second):
			t.Fatalf("frames waiting to grow waited on each other (intake %d bytes, %d stuck, %d waiting)", in.held(), in.stuck, in.queued())
		}
	}
	select {
	case ok := <-later:
		assert.True(t, ok, "the reader not yet begun is let in once the frames are gone")
	case <-time.After(20 * time.Second):
		t.Fatal("the reader not yet begun is never let in")
	}
	assert.Equal(t, int64(reserve), in.held())
	assert.Zero(t, in.stuck)
}
