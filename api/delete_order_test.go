package api_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
)

// A change committed before a gateway's delete, but not yet announced (a
// PUT publishes gateway.updated under the gateway's order lock, after its
// commit), is announced before gateway.deleted: the delete waits for the
// lock's holder before it publishes. Its gateway.updated came after
// gateway.deleted, which must be the gateway's last event (found by an
// audit, helper 6, whose churn test TestEveryStateChangeIsOneEventInOrder
// caught it once in a few runs). Would catch: a delete that publishes
// while a change of the gateway is still between its commit and its
// announcement.
func TestDeleteWaitsForAChangeNotYetAnnounced(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	stream, stop := subscribe(t, e.listen(), "")
	defer stop()
	id, _ := e.add("order-del")
	e.waitState(id, "AUTHENTICATED")

	release := api.HoldOrder(e.app, uuid.MustParse(id)) // a PUT between its commit and its announcement
	answered := make(chan int, 1)
	go func() { answered <- e.do("DELETE", "/api/gateways/"+id, nil).status }()
	// The delete has committed and waits for the lock's holder.
	require.Eventually(t, func() bool { return api.OrderUsers(e.app, uuid.MustParse(id)) == 2 }, 10*time.Second, time.Millisecond,
		"the delete waits for the change in flight")
	select {
	case status := <-answered:
		t.Fatalf("the delete answered %d while a change of the gateway was not yet announced", status)
	default:
	}
	release()
	select {
	case status := <-answered:
		assert.Equal(t, 204, status)
	case <-time.After(10 * time.Second):
		t.Fatal("the delete never answered")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-stream:
			if ev.Event == "gateway.deleted" && ev.Data["id"] == id {
				return
			}
		case <-deadline:
			t.Fatal("no gateway.deleted")
		}
	}
}
