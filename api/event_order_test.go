package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
)

// orderRound runs perRound requests at once and then reads the stream
// until every gateway the requests name has its announcement (event
// want); it returns the gateways' ids, and the state events of those
// gateways that arrived before their announcement and are the requests'
// doing (caused).
func orderRound(t *testing.T, e *liveEnv, all <-chan sse, perRound int, want string,
	request func(i int) response, caused func(sse) bool) (ids []string, early []string) {
	t.Helper()
	done := make(chan response, perRound)
	for i := range perRound {
		go func() { done <- request(i) }()
	}
	mine := map[string]bool{} // a state event of an earlier round may still come
	for range perRound {
		r := <-done
		require.Less(t, r.status, 300, "%s", r.body)
		id, _ := r.json(t)["id"].(string)
		ids, mine[id] = append(ids, id), true
	}
	announced := map[string]bool{}
	for len(announced) < perRound {
		ev := next(t, all, func(s sse) bool { return s.Event == want || s.Event == "gateway.state" }, want)
		id, _ := ev.Data["id"].(string)
		switch {
		case ev.Event == want:
			announced[id] = true
		case mine[id] && !announced[id] && caused(ev):
			early = append(early, fmt.Sprintf("event %d gateway.state %v → %v of %s before its %s",
				ev.ID, ev.Data["from"], ev.Data["to"], id, want))
		}
	}
	return ids, early
}

// A gateway's gateway.created comes before its first gateway.state, and a
// PUT's gateway.updated before the state change it causes, as
// gateway.deleted comes after the last: a client following the stream
// does not hear of a gateway's state before it hears of the gateway, or
// of the change. The API told the runtime (an asynchronous message to
// the supervisor, which publishes the state) before it published its own
// event, and under concurrent creates the supervisor was often first.
// (Found by an audit, helper 3, whose test the creates are.)
func TestGatewayEventsComeBeforeTheStatesTheyCause(t *testing.T) {
	// 40 requests at once: on a loaded CI box the database took over the
	// default 5 s for some (a round of PUTs answered 503 after 4–5 s);
	// the order of the events is what is tested, not the database's pace.
	e := newLiveEnvWith(t, actorstest.FastConfig(), api.Options{DBTimeout: 30 * time.Second})
	all, stop := subscribe(t, e.listen(), "")
	defer stop()
	require.Eventually(t, func() bool { return e.h.Telemetry.Events.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)

	const perRound = 40
	var ids []string
	for round := range 3 {
		// Created DISCONNECTED: registered (one gateway.state, null →
		// DISCONNECTED), never dialed, so the load stays small.
		got, early := orderRound(t, e, all, perRound, "gateway.created", func(i int) response {
			return e.do("POST", "/api/gateways", map[string]any{"factory_id": e.factoryID,
				"gateway_id": fmt.Sprintf("order-%d-%d", round, i), "name": "order", "url": "ws://127.0.0.1:9/",
				"email": "o@example.com", "password": "pw-order-1", "desired_state": "DISCONNECTED"})
		}, func(sse) bool { return true })
		require.Empty(t, early, "a gateway's state was published before the gateway was")
		ids = append(ids, got...)
	}
	for round := range 2 {
		// Connected by a PUT (the port refuses: it goes on to BACKOFF),
		// then disconnected by another.
		for _, to := range []string{"CONNECTED", "DISCONNECTED"} {
			batch := ids[round*perRound : (round+1)*perRound]
			_, early := orderRound(t, e, all, perRound, "gateway.updated", func(i int) response {
				return e.do("PUT", "/api/gateways/"+batch[i], map[string]any{"desired_state": to})
			}, func(s sse) bool {
				if to == "CONNECTED" {
					return s.Data["from"] == "DISCONNECTED"
				}
				return s.Data["to"] == "DISCONNECTED"
			})
			require.Empty(t, early, "a PUT's state change was published before the PUT's gateway.updated")
		}
	}
}
