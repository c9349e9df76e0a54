package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// After gateway.deleted for a gateway, the stream must not go on telling
// that gateway's state changes: the gateway is gone (its status is 404),
// and a client that follows the stream (the web UI's fleet map, live.js
// applyState, adds an unknown id on gateway.state) brings the deleted
// gateway back as a ghost row, counted in its state, until a reload.
// The API published gateway.deleted before the runtime had removed the
// gateway (rt.GatewaysRemoved is a message the supervisor takes later),
// so every state change the gateway's actor reported meanwhile followed
// it. (Found by an audit, helper 8, whose test this is.)
func TestNoStateEventAfterDeleted(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax = 2*time.Millisecond, 10*time.Millisecond
	e := newLiveEnv(t, cfg)
	base := e.listen()
	ch, stop := subscribe(t, base, "")
	defer stop()
	const n = 60
	ids := make([]string, n)
	for i := range ids {
		// Nothing listens on port 1: the gateway flaps CONNECTING/BACKOFF.
		g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": fmt.Sprintf("flap-%d", i),
			"name": fmt.Sprintf("flap-%d", i), "url": "ws://127.0.0.1:1/gw/x", "email": "a@example.com", "password": "pw"})
		ids[i] = g["id"].(string)
	}
	for _, id := range ids {
		e.waitState(id, "BACKOFF")
	}
	// A few one by one, the rest with their factory.
	for _, id := range ids[:10] {
		require.Equal(t, 204, e.do("DELETE", "/api/gateways/"+id, nil).status)
	}
	require.Equal(t, 204, e.do("DELETE", "/api/factories/"+e.factoryID, nil).status)
	for _, id := range ids {
		require.Eventually(t, func() bool { return e.do("GET", "/api/gateways/"+id+"/status", nil).status == 404 },
			5*time.Second, 5*time.Millisecond)
	}
	deleted := map[string]uint64{}
	var ghosts []string
	deadline := time.After(2 * time.Second) // lets the stream deliver what it holds
loop:
	for {
		select {
		case ev := <-ch:
			id, _ := ev.Data["id"].(string)
			switch ev.Event {
			case "gateway.deleted":
				deleted[id] = ev.ID
			case "gateway.state":
				if at, ok := deleted[id]; ok {
					ghosts = append(ghosts, fmt.Sprintf("event %d %s %v->%v after gateway.deleted %d", ev.ID, id, ev.Data["from"], ev.Data["to"], at))
				}
			}
		case <-deadline:
			break loop
		}
	}
	require.Len(t, deleted, n)
	require.Empty(t, ghosts, "gateway.state events for gateways already announced deleted")
}

// gateway.deleted came from the supervisor only: with the runtime
// stopped (serve stops it first when the instance lock is lost, while the
// API still serves and the streams are open) a DELETE answered 204 and
// the event never came. (Found by an audit, helper 12, whose test this
// is.)
func TestDeletedPublishedWithTheRuntimeStopped(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	base := e.listen()
	ch, stop := subscribe(t, base, "")
	defer stop()
	g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "gone-late",
		"name": "gone-late", "url": "ws://127.0.0.1:1/gw/x", "email": "a@example.com", "password": "pw"})
	id := g["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.runtime.Shutdown(ctx)) // as serve does on a lost instance lock, the API still up

	require.Equal(t, 204, e.do("DELETE", "/api/gateways/"+id, nil).status)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Event == "gateway.deleted" && ev.Data["id"] == id {
				return
			}
		case <-deadline:
			t.Fatalf("DELETE answered 204 and the stream, still open, never said gateway.deleted for %s", id)
		}
	}
}
