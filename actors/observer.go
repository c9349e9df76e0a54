package actors

import (
	"time"

	"github.com/ctcgw/gatewayd"
)

// Observer is told what happens in the runtime, where it happens, so that
// metrics and the event stream never have to ask an actor. Calls come from
// the supervisor (state changes, restarts), from gateway actors and their
// dial goroutines (dials, logins), and from the writer (what it stored);
// an implementation must be safe for concurrent use and must not block.
type Observer interface {
	// GatewayState: a gateway's state changed (from is "" when it is new,
	// st.State is "" when it was removed).
	GatewayState(from gatewayd.State, st gatewayd.Status)
	// Dialed: a dial ended, with err nil when the WebSocket is open.
	Dialed(err error, took time.Duration)
	// LoginAnswered: result is "accepted", "refused" or "timeout".
	LoginAnswered(result string)
	// ActorRestarted: the supervisor restarted a crashed gateway actor.
	ActorRestarted()
	// FloodCutOff: a gateway was disconnected for flooding.
	FloodCutOff()
	// SensorsChanged: the writer stored changes to these sensors.
	SensorsChanged([]gatewayd.SensorRef)
	// ReadingsDone: the writer stored these readings' final states.
	ReadingsDone([]gatewayd.ReadingRef)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) GatewayState(gatewayd.State, gatewayd.Status) {}
func (nopObserver) Dialed(error, time.Duration)                  {}
func (nopObserver) LoginAnswered(string)                         {}
func (nopObserver) ActorRestarted()                              {}
func (nopObserver) FloodCutOff()                                 {}
func (nopObserver) SensorsChanged([]gatewayd.SensorRef)          {}
func (nopObserver) ReadingsDone([]gatewayd.ReadingRef)           {}
