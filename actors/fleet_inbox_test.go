package actors_test

// (Found by an audit, helper 1, whose test this is.)

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// A fleet of hostile gateways whose actors fall behind (here: suspended,
// as turns starved of CPU are) each fill their connection's inbox with
// decoded 30 KB frames of an unknown type: small frames never wait for
// the reading intake, so nothing but the inbox, 1 MiB per connection,
// bounded what they made gatewayd hold, and a hundred such gateways held
// ~100 MiB, four hundred ~400 MiB (the README promises that a flood
// "costs bounded memory", per gateway only). Together they may now hold
// only the fleet's share of inboxes beyond each connection's own floor;
// and an honest gateway beside them, whose traffic fits in its floor,
// still logs in, is answered and takes readings.
func TestHostileFleetInboxesAreBoundedTogether(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	const n = 100
	cfg := actorstest.FastConfig()
	cfg.PingInterval = 5 * time.Second
	h := actorstest.New(t, tmpl, cfg)
	honest, sensor := honestSensor(t, h)
	gws, sims := h.AddAuthenticated("hostile", n)
	frame := fmt.Sprintf(`{"Type":"NOT_SIM_FLOOD","From":"SERV","Target":"UI","Data":{"Pad":"%s"}}`, strings.Repeat("x", 30000))
	baseline := liveHeap()
	for i, g := range gws {
		t.Cleanup(actors.SuspendGateway(h.Runtime, g.ID))
		sims[i].UpdateFaults(func(f *ctctest.Faults) { f.Flood, f.FloodFrame = true, frame })
	}
	t.Cleanup(func() {
		for _, sg := range sims {
			sg.UpdateFaults(func(f *ctctest.Faults) { f.Flood = false })
		}
	})
	// Every hostile reader reads until gatewayd makes it wait; what it
	// decoded meanwhile waits for its suspended actor. The heap is looked
	// at until the flooders have sent what their inboxes take (each at
	// least 28 frames of ~30 KB) or 10 s have passed.
	const bound = 64 << 20 // the fleet's 32 MiB, n floors of 128 KiB, and room
	var peak uint64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		live := liveHeap()
		peak = max(peak, live)
		require.Less(t, live-min(live, baseline), uint64(bound), "the hostile fleet holds %d MiB", (live-baseline)>>20)
		time.Sleep(200 * time.Millisecond)
	}
	sent := 0
	for _, sg := range sims {
		sent += sg.Stats().FloodSent
	}
	t.Logf("%d hostile gateways sent %d frames; live heap %d MiB, peak %d MiB", n, sent, baseline>>20, peak>>20)
	assert.Greater(t, sent, n*8, "they flooded")

	// The honest gateway: answered, a reading taken, and logged in again.
	ctx := context.Background()
	d, err := h.Runtime.Discover(ctx, honest.ID)
	require.NoError(t, err)
	assert.NotEmpty(t, d.Sensors)
	r, s, err := h.Store.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	require.NoError(t, h.Runtime.TakeReading(ctx, r, s.Serial, 25600))
	eventually(t, func() bool {
		got, err := h.Store.GetReading(ctx, r.ID)
		return err == nil && got.Status == gatewayd.ReadingComplete
	}, 20*time.Second, "the honest reading completes")
	before := time.Now()
	h.Sim.Gateway("honest").Drop(websocket.CloseGoingAway)
	h.WaitEnteredAfter(honest.ID, gatewayd.StateAuthenticated, before)
}
