package actors_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// heapInUse is the heap in use after full collections.
func heapInUse() uint64 {
	goruntime.GC()
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A gateway pushes a handful of unsolicited readings, each a legal frame
// (under the 4 MiB frame limit, base64 int16 samples, paced well under
// the flood limits), each of a slightly different sample count. Once they
// are stored, the process holds about what it held before: the readings
// are in the database (API.md §4: what one gateway can make the service
// hold in memory is bounded). The analysis kept an FFT plan per sample
// count (vibration.Analyzer, up to 16 counts), ~27 MiB for a reading of
// ~500,000 samples, for ever: sixteen such frames from one gateway pinned
// ~430 MiB for the life of the process. (Found by an audit, helper 2,
// whose test this is.)
func TestOddLengthReadingsOfOneGatewayDoNotPinMemory(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	const serial = 30001
	sends := make(chan func([]byte) error, 8)
	url := oneSensorPeer(t, serial, 25600, 8192, func(send func([]byte) error, done <-chan struct{}) {
		sends <- send
		<-done
	})
	cfg := actorstest.FastConfig()
	h := newHarness(t, cfg)
	g := addRawGateway(t, h, "plans", url)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	var send func([]byte) error
	select {
	case send = <-sends:
	case <-time.After(30 * time.Second):
		t.Fatal("never subscribed")
	}
	var sensorID uuid.UUID
	eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(context.Background(), g.ID)
		for _, s := range list {
			if s.Serial == serial {
				sensorID = s.ID
			}
		}
		return err == nil && sensorID != uuid.Nil
	}, 10*time.Second, "sensor discovered")

	// The samples: a 1 kHz tone of 0.5 g (milli-g int16, little-endian).
	const longest = 500_016
	raw := make([]byte, 2*longest)
	for i := range longest {
		v := int16(math.Round(500 * math.Sin(2*math.Pi*1000*float64(i)/25600)))
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(v))
	}
	push := func(id, n int) {
		axis := base64.StdEncoding.EncodeToString(raw[:2*n])
		frame := fmt.Appendf(nil, `{"Type":"NOT_DYN_READING","From":"SERV","Target":"UI","Data":{"ID":%d,"Serial":"%d","Time":"2026-12-06 10:00:00","X":"%s","Y":"%s","Z":"%s"}}`,
			id, serial, axis, axis, axis)
		require.Less(t, len(frame), 4<<20, "a legal frame")
		require.NoError(t, send(frame))
	}
	complete := func(want int) {
		eventually(t, func() bool {
			_, total, err := h.Store.ListReadings(context.Background(), sensorID,
				store.ReadingFilter{Status: gatewayd.ReadingComplete}, store.Page{Limit: 1})
			return err == nil && total == want
		}, 2*time.Minute, "%d readings stored", want)
	}

	// One ordinary reading warms everything a reading path keeps.
	push(1, 8192)
	complete(1)
	before := heapInUse()

	const odd = 8 // half the plan cache
	for i := range odd {
		push(2+i, longest-i)
		complete(2 + i) // paced: one ~4 MB frame at a time, well under 8 MiB/s
	}
	require.Equal(t, gatewayd.StateAuthenticated, h.Status(g.ID).State)

	// Everything is stored; what the process still holds because of these
	// eight frames should be small (a few MiB of pools at most).
	const bound = 64 << 20
	var after uint64
	testutil.Poll(func() bool { after = heapInUse(); return after < before+bound }, 10*time.Second) // a miss is told below
	t.Logf("live heap: %d MiB before, %d MiB after %d stored readings of one gateway", before>>20, after>>20, odd)
	require.Less(t, after, before+bound,
		"one gateway's %d stored readings left %d MiB pinned in the heap", odd, (after-before)>>20)
}
