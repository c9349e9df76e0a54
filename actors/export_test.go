package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/ctcgw/gatewayd"
)

// FillIntake counts n bytes in the runtime's reading intake, as a burst
// of readings on their way to the database would, until the returned
// function takes them out again.
func FillIntake(r *Runtime, n int64) (drain func()) {
	r.d.intake.add(n)
	return func() { r.d.intake.add(-n) }
}

// IntakeWaiting is how many readers the intake holds back.
func IntakeWaiting(r *Runtime) int { return r.d.intake.queued() }

// IntakeHeld is the bytes the reading intake counts.
func IntakeHeld(r *Runtime) int64 { return r.d.intake.held() }

// PendingReadings is how many reading updates wait in the writer.
func PendingReadings(r *Runtime) int {
	w := r.d.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.readings)
}

// HoldCrunch takes every slot for decoding large frames until the returned
// function gives them back: a reader with a reading to decode waits.
func HoldCrunch(r *Runtime) (release func()) {
	n := cap(r.d.crunch)
	for range n {
		r.d.crunch <- struct{}{}
	}
	return func() {
		for range n {
			<-r.d.crunch
		}
	}
}

// FlushWriter writes what the runtime's writer holds of sensors now.
func FlushWriter(r *Runtime) { r.d.writer.flushData() }

// Writer is the runtime's batching writer over src, for tests of what it
// stores: values are handed over as the actors hand them, and written at
// its intervals (seen, data, readings) or when a Flush says.
type Writer struct{ w *writer }

// NewWriter starts a writer over src; Close ends it.
func NewWriter(src Source, seenEvery, dataEvery, readingEvery time.Duration) *Writer {
	w := newWriter(src, nopObserver{}, func() bool { return false }, seenEvery, dataEvery, readingEvery, zerolog.Nop())
	w.intake = newIntake(1 << 30)
	return &Writer{w}
}

func (w *Writer) Mark(id uuid.UUID, at time.Time)    { w.w.mark(id, at) }
func (w *Writer) Discovered(d gatewayd.Discovery)    { w.w.discovered(d) }
func (w *Writer) Temperature(t gatewayd.Temperature) { w.w.temperature(t) }
func (w *Writer) Reading(u gatewayd.ReadingUpdate)   { w.w.reading(u) }
func (w *Writer) FlushSeen()                         { w.w.flushSeen() }
func (w *Writer) FlushData()                         { w.w.flushData() }
func (w *Writer) FlushReadings()                     { w.w.flushReadings() }
func (w *Writer) Close()                             { w.w.close() }

// PanicSupervisor makes the supervisor's turn panic once (a nil message
// of a type it handles), standing in for any bug in its code: Proto.Actor
// then restarts it, which supervisor.started is written for.
func PanicSupervisor(r *Runtime) { r.d.root.Send(r.supervisor, (*stopGateways)(nil)) }

// PendingTemperatures is how many temperatures (one per gateway and
// serial) wait in the writer.
func PendingTemperatures(r *Runtime) int {
	w := r.d.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.temperatures)
}

// SuspendGateway stops a gateway's actor from handling its messages
// (Proto.Actor's SuspendMailbox), as a turn starved of CPU would, until
// the returned function resumes it: what its reader decodes meanwhile
// waits in its inbox.
func SuspendGateway(r *Runtime, id uuid.UUID) (resume func()) {
	pid := actor.NewPID(r.system.Address(), r.supervisor.Id+"/"+id.String())
	proc, ok := r.system.ProcessRegistry.Get(pid)
	if !ok {
		return func() {}
	}
	proc.SendSystemMessage(pid, &actor.SuspendMailbox{})
	return func() { proc.SendSystemMessage(pid, &actor.ResumeMailbox{}) }
}

// PendingDiscoveries is how many sensor discoveries wait in the writer,
// and what they hold (discoverySize);
// dropped is how many were not kept.
func PendingDiscoveries(r *Runtime) (n, dropped int, bytes int64) {
	w := r.d.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.discoveries {
		bytes += discoverySize(d)
	}
	return len(w.discoveries), w.droppedLists, bytes
}

// DiscoveryWaits reports whether a discovery of gateway id waits in the
// writer.
func DiscoveryWaits(r *Runtime, id uuid.UUID) bool {
	w := r.d.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.discoveries[id]
	return ok
}

// SetListShare sets what the large sensor lists waiting for the database
// may hold together (maxListBytes), before any is kept.
func SetListShare(r *Runtime, n int64) {
	w := r.d.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listShare = n
}
