package events_test

import (
	"bufio"
	"bytes"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd/events"
)

// stream is the write loop of GET /api/events, simplified from the one the
// api package runs in Fiber's SetBodyStreamWriter (which also sets write
// deadlines and holds each flush a few milliseconds to write a burst at
// once). It needs no context: Broker.Close ends it at shutdown, and a
// client that went away makes Flush fail (at the latest at the next
// keep-alive).
func stream(w *bufio.Writer, sub *events.Subscription, keepAlive <-chan time.Time) error {
	defer sub.Close()
	if sub.Reset() {
		if err := events.WriteReset(w); err != nil {
			return err
		}
	}
	for _, e := range sub.Replay() {
		if err := events.WriteSSE(w, *e); err != nil {
			return err
		}
	}
	for {
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case <-sub.Ready():
			// Ended first: nothing is put after the end, so the events
			// taken next are all there will be. Everything waiting goes
			// out in one flush: one per burst, not per event, during a
			// reconnect storm.
			ended := sub.Ended()
			for e := sub.Next(); e != nil; e = sub.Next() {
				if err := events.WriteSSE(w, *e); err != nil {
					return err
				}
			}
			if ended {
				if sub.Overflowed() {
					if err := events.WriteOverflow(w); err != nil {
						return err
					}
				}
				return w.Flush()
			}
		case <-keepAlive:
			if err := events.WriteKeepAlive(w); err != nil {
				return err
			}
		}
	}
}

func Example() {
	b := events.NewBroker(events.DefaultRingSize)
	factory := uuid.MustParse("0c7f5b2d-9e11-4f4e-9b7e-3f1c2a4e8a47")
	gateway := uuid.MustParse("3f1c2a4e-8a47-4f4e-9b7e-0c7f5b2d9e11")
	for _, to := range []string{"CONNECTING", "AUTHENTICATED", "DISCONNECTED"} {
		payload := map[string]string{"id": gateway.String(), "to": to}
		if _, err := b.PublishJSON(events.TypeGatewayState, factory, gateway, payload); err != nil {
			panic(err)
		}
	}

	// A client that had seen event 1 reconnects with Last-Event-ID: 1.
	sub := b.Subscribe(events.Filter{GatewayID: &gateway}, 1, 256)
	b.Close() // shutdown: the stream ends after what it already has

	var out bytes.Buffer
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	if err := stream(bufio.NewWriter(&out), sub, keepAlive.C); err != nil {
		panic(err)
	}
	fmt.Print(out.String())
	// Output:
	// id: 2
	// event: gateway.state
	// data: {"id":"3f1c2a4e-8a47-4f4e-9b7e-0c7f5b2d9e11","to":"AUTHENTICATED"}
	//
	// id: 3
	// event: gateway.state
	// data: {"id":"3f1c2a4e-8a47-4f4e-9b7e-0c7f5b2d9e11","to":"DISCONNECTED"}
}

func ExampleSubscription_Overflowed() {
	b := events.NewBroker(events.DefaultRingSize)
	defer b.Close()
	sub := b.Subscribe(events.Filter{}, 0, 1) // room for one event
	for range 2 {
		if _, err := b.Publish(events.Event{Type: events.TypeGatewayDeleted}); err != nil {
			panic(err)
		}
	}

	var out bytes.Buffer
	if err := stream(bufio.NewWriter(&out), sub, nil); err != nil {
		panic(err)
	}
	fmt.Print(out.String())
	fmt.Println(sub.Overflowed(), b.Overflows())
	// Output:
	// id: 1
	// event: gateway.deleted
	// data: {}
	//
	// event: overflow
	// data: {}
	//
	// true 1
}

func ExampleSubscription_Reset() {
	b := events.NewBroker(2) // keeps the last two events
	defer b.Close()
	for range 5 {
		if _, err := b.Publish(events.Event{Type: events.TypeGatewayDeleted}); err != nil {
			panic(err)
		}
	}
	// Events 2 and 3 are gone: the client must start over.
	sub := b.Subscribe(events.Filter{}, 1, 8)
	fmt.Println(sub.Reset())
	for _, e := range sub.Replay() {
		fmt.Println(e.ID)
	}
	// Output:
	// true
	// 4
	// 5
}
