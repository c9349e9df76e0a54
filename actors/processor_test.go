package actors

import (
	"time"

	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/wavepack"
)

// The processor's queue is bounded by the bytes of text it holds: with no
// worker taking jobs, a job that would pass the budget fails "processing
// overloaded", a smaller one that fits is still taken, and a job larger
// than the whole budget is taken when the queue is empty.
func TestProcessorBacklogIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	w := &writer{readings: make(map[uuid.UUID]gatewayd.ReadingUpdate)} // never flushed: no goroutine
	p := newProcessor(w, 0, 16, 4000, time.Second, zerolog.Nop())
	defer p.close()
	text := func(n int) string { return strings.Repeat("0.1,", n/4) + "0" }
	submit := func(n int) uuid.UUID {
		id := uuid.New()
		// each of another gateway: the quarter one gateway holds is TestProcessorQueueShareInBytes's
		p.submit(job{r: gatewayd.Reading{ID: id, GatewayID: uuid.New(), Status: gatewayd.ReadingRunning}, x: text(n), y: text(n), z: text(n)})
		return id
	}
	huge := submit(10000) // ~30 KB: more than the budget, but the queue is empty
	overloaded := submit(500)
	taken := <-p.jobs // a worker takes the huge one
	p.taken(&taken)
	small := submit(500) // ~2.5 KB
	alsoSmall := submit(100)
	tooMany := submit(500)

	for _, id := range []uuid.UUID{huge, small, alsoSmall} {
		_, failed := w.readings[id]
		assert.False(t, failed, "a job that fits is queued, not failed")
	}
	for _, id := range []uuid.UUID{overloaded, tooMany} {
		u, ok := w.readings[id]
		require.True(t, ok, "a job past the budget fails at once")
		assert.Equal(t, gatewayd.ReadingFailed, u.Reading.Status)
		assert.Equal(t, "processing overloaded", *u.Reading.Error)
	}
}

// One gateway holds at most a quarter of the queue: past it, its own
// readings fail "processing overloaded", and another gateway's are still
// queued. (The queue is every gateway's; one gateway's burst filled it
// and failed others' readings: found by an audit, helper 7.)
func TestProcessorQueueShareOfOneGateway(t *testing.T) {
	t.Parallel()
	w := &writer{readings: make(map[uuid.UUID]gatewayd.ReadingUpdate)} // never flushed: no goroutine
	p := newProcessor(w, 0, 16, 1<<20, time.Second, zerolog.Nop())
	defer p.close()
	flooder, other := uuid.New(), uuid.New()
	submit := func(gw uuid.UUID) uuid.UUID {
		id := uuid.New()
		p.submit(job{r: gatewayd.Reading{ID: id, GatewayID: gw, Status: gatewayd.ReadingRunning}, x: "1", y: "1", z: "1"})
		return id
	}
	var mine []uuid.UUID
	for range 6 {
		mine = append(mine, submit(flooder))
	}
	theirs := submit(other)
	for i, id := range mine {
		u, failed := w.readings[id]
		if i < 4 {
			assert.False(t, failed, "job %d is within the gateway's share", i)
			continue
		}
		require.True(t, failed, "job %d is past the gateway's share", i)
		assert.Equal(t, "processing overloaded", *u.Reading.Error)
	}
	_, failed := w.readings[theirs]
	assert.False(t, failed, "another gateway's job is queued")

	taken := <-p.jobs // a worker takes one of the flooder's: its share has room again
	p.taken(&taken)
	again := submit(flooder)
	_, failed = w.readings[again]
	assert.False(t, failed)
}

// One gateway holds at most a quarter of the queue's bytes too: a small
// reading decoded in its reader's 256 KiB buffer counts that buffer, and
// a quarter of the jobs of such readings was the whole byte budget, so
// other gateways' readings failed "processing overloaded". Past its
// quarter of the bytes, a gateway's own readings fail, another's are
// still queued, and one job larger than the quarter passes alone. (Found
// by an audit, helper 2.)
func TestProcessorQueueShareInBytes(t *testing.T) {
	t.Parallel()
	w := &writer{readings: make(map[uuid.UUID]gatewayd.ReadingUpdate)} // never flushed: no goroutine
	p := newProcessor(w, 0, 64, 1<<20, time.Second, zerolog.Nop())
	defer p.close()
	flooder, other, big := uuid.New(), uuid.New(), uuid.New()
	submit := func(gw uuid.UUID, n int) uuid.UUID {
		id := uuid.New()
		text := make([]byte, 0, n) // as a reading decoded in place: its buffer counts
		p.submit(job{r: gatewayd.Reading{ID: id, GatewayID: gw, Status: gatewayd.ReadingRunning}, text: &text, x: "1", y: "1", z: "1"})
		return id
	}
	const kib = 1 << 10
	first, second, third := submit(flooder, 100*kib), submit(flooder, 100*kib), submit(flooder, 100*kib)
	theirs := submit(other, 100*kib)
	alone := submit(big, 400*kib) // over a quarter, but the gateway's only job
	for _, id := range []uuid.UUID{first, second, theirs, alone} {
		_, failed := w.readings[id]
		assert.False(t, failed, "a job within its gateway's quarter is queued")
	}
	u, failed := w.readings[third]
	require.True(t, failed, "a job past its gateway's quarter of the bytes fails")
	assert.Equal(t, "processing overloaded", *u.Reading.Error)

	taken := <-p.jobs // a worker takes the flooder's first: its quarter has room again
	p.taken(&taken)
	again := submit(flooder, 100*kib)
	_, failed = w.readings[again]
	assert.False(t, failed)
}

// A worker's buffers are reused from reading to reading: after the first,
// a reading of the same size decodes, analyses and packs allocating
// little more than its results (the packed samples and the summary), and
// packs the samples the text says. Not parallel: it counts the process's
// allocations.
func TestProcessorReusesItsBuffers(t *testing.T) {
	w := &writer{readings: make(map[uuid.UUID]gatewayd.ReadingUpdate)}
	p := newProcessor(w, 0, 1, 1<<20, time.Second, zerolog.Nop())
	defer p.close()
	var b strings.Builder
	for i := range 8192 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString([]string{"0.01234", "-0.5", "1.25", "0.00001"}[i%4])
	}
	j := job{r: gatewayd.Reading{ID: uuid.New()}, rateHz: 25600, x: b.String(), y: b.String(), z: b.String()}
	var s scratch
	u := p.process(j, &s)
	require.Equal(t, gatewayd.ReadingComplete, u.Reading.Status)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 5
	for range runs {
		u = p.process(j, &s)
	}
	runtime.ReadMemStats(&after)
	// Decoding into new float64s alone was 192 KiB, the float32 copy
	// 96 KiB more; a Huffman writer made anew per reading (the pool's,
	// emptied by the collector) ~600 KB, an FFT plan ~450 KB. Checked
	// under the race detector too (make test's only mode, in which this
	// check was once skipped while the allocations grew to 439 KB): what
	// a worker keeps is its own, so no pool's random drops count.
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	assert.Less(t, perRun, uint64(12*8192), "bytes allocated per reading: the packed samples and the summary")
	t.Logf("%d bytes allocated per reading, %d packed", perRun, len(u.Packed.Data))
	require.NotNil(t, u.Packed)
	x, y, z, err := wavepack.Unpack(u.Packed.Format, u.Packed.Data)
	require.NoError(t, err)
	for _, axis := range [][]float32{x, y, z} {
		require.Len(t, axis, 8192)
		assert.Equal(t, []float32{0.01234, -0.5, 1.25, 0.00001}, axis[:4])
	}
}
