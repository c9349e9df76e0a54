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
