package actors

import (
	"cmp"
	"slices"
	"testing"
	"unsafe"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd"
)

// A statement merges at most writeBatch discoveries and maxMergeBytes of
// lists; a larger list goes alone, and every list goes once, in order.
// (Audit, helper 1: see TestHostileFleetSensorListsCostLittleMoreThanHonest.)
func TestMergeChunksBoundWhatAStatementCarries(t *testing.T) {
	t.Parallel()
	list := func(n int) gatewayd.Discovery {
		return gatewayd.Discovery{GatewayID: uuid.New(), Sensors: make([]gatewayd.SensorReport, n)}
	}
	var ds []gatewayd.Discovery
	for range 3 {
		ds = append(ds, list(maxListedSensors)) // ~256 KiB each
	}
	ds = append(ds, list(maxMergeBytes/64+1)) // alone over the bound
	for range 2500 {
		ds = append(ds, list(20)) // an honest fleet's
	}
	var got []gatewayd.Discovery
	var sizes []int
	for chunk := range mergeChunks(ds) {
		held := int64(0)
		for _, d := range chunk {
			held += discoverySize(d)
		}
		assert.True(t, len(chunk) == 1 || held <= maxMergeBytes, "a chunk of %d holds %d bytes", len(chunk), held)
		assert.LessOrEqual(t, len(chunk), writeBatch)
		sizes = append(sizes, len(chunk))
		got = append(got, chunk...)
	}
	assert.Equal(t, ds, got)
	// The three largest lists, the one over the bound, then the honest
	// ones, hundreds a statement.
	assert.Equal(t, []int{3, 1}, sizes[:2])
	assert.Len(t, sizes, 2+(2500*int(discoverySize(list(20)))+maxMergeBytes-1)/maxMergeBytes)
}

// A discovery's rates are looked up by serial; a serial listed twice
// keeps its later entry, as the map before them did, and a list that
// shrank a lot gives its room back.
func TestListedRatesKeepTheLastEntryOfASerial(t *testing.T) {
	t.Parallel()
	r := listedRates(nil).reuse(4)
	r = append(r, listedRate{7, 1}, listedRate{3, 2}, listedRate{7, 3}, listedRate{5, 0})
	r = r.sorted()
	assert.Equal(t, listedRates{{3, 2}, {5, 0}, {7, 3}}, r)
	for serial, want := range map[int64]float64{3: 2, 5: 0, 7: 3} {
		rate, listed := r.lookup(serial)
		assert.True(t, listed, "serial %d", serial)
		assert.Equal(t, want, rate, "serial %d", serial)
	}
	for _, serial := range []int64{0, 4, 8, -1} {
		_, listed := r.lookup(serial)
		assert.False(t, listed, "serial %d", serial)
	}
	big := make(listedRates, 0, maxListedSensors)
	assert.Equal(t, maxListedSensors, cap(big.reuse(maxListedSensors/2)), "room kept")
	assert.Equal(t, 20, cap(big.reuse(20)), "room given back")
	assert.True(t, slices.Equal(listedRates(nil).reuse(0), nil))
}

// What an actor keeps of its gateway's list of 4,096 serials and rates:
// 16 bytes a sensor (64 KiB), where a map of them held ~144 KiB for the
// connection's life, for each gateway of a hostile fleet (found by an
// audit, helper 1). What it keeps is the slice's array: measured by its
// room, not by the process's allocations, which other tests' move.
func TestListedRatesHoldSixteenBytesASensor(t *testing.T) {
	t.Parallel()
	r := listedRates(nil).reuse(maxListedSensors)
	for i := range maxListedSensors {
		r = append(r, listedRate{serial: int64(maxListedSensors - i), rate: float64(i)}) // unsorted
	}
	r = r.sorted()
	held := cap(r) * int(unsafe.Sizeof(listedRate{}))
	t.Logf("%d serials and rates: %d KiB kept", len(r), held>>10)
	assert.Len(t, r, maxListedSensors)
	assert.LessOrEqual(t, held, maxListedSensors*16, "16 bytes a sensor")
	assert.True(t, slices.IsSortedFunc(r, func(x, y listedRate) int { return cmp.Compare(x.serial, y.serial) }))
}
