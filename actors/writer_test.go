package actors

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// While the dials are crowded the sensor writes wait, for at most
// maxDataHolds intervals; the crowd's end lets them through at the next
// check.
func TestWriterHoldsDataWhileDialsCrowd(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_000_000, 0)
	crowded := false
	w := &writer{dataEvery: time.Second, lastFlush: start, crowded: func() bool { return crowded }}
	at := start
	tick := func() bool {
		at = at.Add(time.Second / dataChecks)
		due := w.dataDue(at)
		if due {
			w.lastFlush = at
		}
		return due
	}

	// Quiet: once per interval.
	for i := 1; i < dataChecks; i++ {
		assert.False(t, tick(), "check %d of the first interval", i)
	}
	assert.True(t, tick(), "an interval later: write")

	crowded = true
	held := 0
	for !tick() {
		held++
		require.Less(t, held, 100, "a crowd held the write for good")
	}
	assert.Equal(t, maxDataHolds*dataChecks, held, "checks held")
	assert.False(t, tick(), "still crowded: a new hold")
	crowded = false
	assert.True(t, tick(), "the crowd is gone: write at once, not at the next interval")
	assert.False(t, tick(), "and then once per interval again")
}

// flakySaves fails its first SaveReadings and copies what it stores.
type flakySaves struct {
	fixedSource
	mu     sync.Mutex
	failed bool
	stored map[uuid.UUID][]byte
}

func (s *flakySaves) SaveReadings(_ context.Context, us []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.failed = true
		return nil, errors.New("database unavailable")
	}
	for _, u := range us {
		s.stored[u.Reading.ID] = bytes.Clone(u.Packed.Data)
	}
	return nil, nil
}

// A reading's packed samples go back to the pool only once stored: a
// reading whose write failed keeps its bytes, however many buffers other
// readings take from the pool meanwhile, and they are stored unchanged.
func TestWriterRecyclesPackedSamplesOnlyOnceStored(t *testing.T) {
	t.Parallel()
	src := &flakySaves{stored: map[uuid.UUID][]byte{}}
	w := newWriter(src, nopObserver{}, func() bool { return false }, time.Hour, time.Hour, time.Hour, zerolog.Nop())
	w.intake = newIntake(1 << 30)
	t.Cleanup(w.close)

	data := bytes.Repeat([]byte{0xAA}, 1000)
	id := uuid.New()
	w.reading(gatewayd.ReadingUpdate{Reading: gatewayd.Reading{ID: id, Status: gatewayd.ReadingComplete},
		Packed: &gatewayd.PackedWaveform{Format: 1, Data: data}})
	w.flushReadings() // fails: requeued
	for range 8 {     // other readings packing meanwhile
		b := w.packs.get()
		assert.NotSame(t, unsafe.SliceData(data), unsafe.SliceData(b), "a buffer given back before it was stored")
		w.packs.put(append(b, bytes.Repeat([]byte{0xBB}, 1000)...))
	}
	w.flushReadings()
	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, bytes.Repeat([]byte{0xAA}, 1000), src.stored[id])
}
