package actors

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
)

// record is the supervisor's view of one gateway.
type record struct {
	w        *wanted
	pid      *actor.PID // nil while the gateway has no actor (FAILED)
	status   gatewayd.Status
	failures []time.Time // crashes within the restart window
	touched  time.Time   // last change through the API; reconcile reads older than this do not undo it
	stopping bool        // stop ordered; waiting for Terminated
	respawn  bool        // spawn again once Terminated arrives
}

// running reports whether the record has an actor that takes messages.
func (rec *record) running() bool { return rec.pid != nil && !rec.stopping }

// supervisor owns every gateway actor. It implements SupervisorStrategy
// itself, so it sees each crash: it counts restarts (a restart resets the
// child's fields) and turns a crash loop into FAILED.
type supervisor struct {
	d       *deps
	n       *counters
	records map[uuid.UUID]*record
	// removed remembers when gateways were removed (deleted), so that
	// neither a store read made before a removal nor an API request that
	// wrote before the delete committed (and told the runtime after it)
	// brings the gateway back: its actor dialled again, answered status
	// 200 after the DELETE's 204, and held a second socket when the
	// gateway_id was registered anew.
	removed map[uuid.UUID]time.Time
	// recordsPeak and removedPeak are the maps' largest sizes since they
	// were last built: Go maps never give back their tables, so a map
	// that shrank to a quarter of its peak is rebuilt (shrink).
	recordsPeak, removedPeak int
	// removedSinceTrim counts removals since memory was last given back.
	removedSinceTrim int
	// stops paces the stops of removed gateways' actors (stops.go).
	stops stopper
	// stopped tells the runtime that the supervisor has stopped (nil in
	// tests that make one alone).
	stopped func()
	// ending is set once the supervisor stops (the runtime's shutdown):
	// Proto.Actor then stops every child, and none of them crashed.
	ending bool
	// restartedAt is when this supervisor replaced one that crashed:
	// reads made before it know nothing of what that one was told (a
	// delete, a PUT), and a fresh one was asked for (found by an audit,
	// helper 12).
	restartedAt time.Time
	// sealedAway is how many gateways the last converge kept on a
	// password their stored one no longer opens to (keepOpened), as last
	// logged: the line is written when it changes, not every reconcile.
	sealedAway int
}

func newSupervisor(d *deps, n *counters) *supervisor {
	return &supervisor{d: d, n: n, records: make(map[uuid.UUID]*record), removed: make(map[uuid.UUID]time.Time)}
}

// Receive dispatches; each message has a method of its own.
func (s *supervisor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		s.started()
	case *actor.Stopping:
		s.ending = true
	case *actor.Restarting:
		s.forgetAll()
	case *actor.Stopped:
		// After every child: Proto.Actor stops them first.
		if s.stopped != nil {
			s.stopped()
		}
	case *converge:
		s.converge(c, m)
	case *upsertGateway:
		s.upsert(c, m.target)
	case *stopGateways:
		for _, id := range m.ids {
			s.remove(c, id)
		}
		s.removedMany(len(m.ids))
		if m.then != nil {
			m.then()
		}
	case *connectGateway:
		s.connect(c, m.id, m.ans)
	case *disconnectGateway:
		s.disconnect(c, m.id, m.ans)
	case *getStatus:
		s.status(c, m.id, m.ans)
	case *getRecord:
		s.record(m.id, m.ans)
	case *listStatuses:
		s.list(m.factoryID, m.ans)
	case *crashGateway:
		s.crash(c, m.id, m.ans)
	case *discoverSensors:
		s.toRunning(c, m.id, m.ans.fail)
	case *takeReading:
		s.toRunning(c, m.id, m.ans.fail)
	case *statusChanged:
		s.statusChanged(m.status)
	case *actor.Terminated:
		s.terminated(c, m)
	}
}

// started: after a restart of the supervisor its children are gone, so it
// asks for a fresh read to bring them back.
func (s *supervisor) started() {
	if s.n.supervisorStarts.Add(1) > 1 {
		s.restartedAt = time.Now()
		s.d.kick()
	}
}

// forgetAll runs when the supervisor itself crashed and Proto.Actor is
// about to stop its children and make a new one, which reads every
// gateway again (started): its records, which die with it, leave the
// state gauges and the counts first, or the new supervisor's would add
// to them (found by an audit, helper 1). Their children's Terminated then
// finds no record.
func (s *supervisor) forgetAll() {
	for id, rec := range s.records {
		s.setStatus(rec, gatewayd.Status{ID: id, FactoryID: rec.status.FactoryID})
		s.n.total.Add(-1)
	}
	clear(s.records)
}

var errNotFound = fmt.Errorf("gateway: %w", gatewayd.ErrNotFound)

func (s *supervisor) disconnect(c actor.Context, id uuid.UUID, ans answer[gatewayd.Status]) {
	rec := s.records[id]
	if rec == nil {
		ans.fail(errNotFound)
		return
	}
	rec.w.set(func(w *wanted) { w.target.Desired = gatewayd.DesiredDisconnected })
	rec.touched = time.Now()
	if !rec.running() {
		rec.respawn = false
		st := rec.status
		st.Desired, st.State, st.NextRetryAt = gatewayd.DesiredDisconnected, gatewayd.StateDisconnected, nil
		s.setStatus(rec, sinceChanged(rec.status, st))
		ans.send(rec.status, nil)
		return
	}
	c.Forward(rec.pid)
}

// status forwards to the actor, which answers itself; without one the
// record answers.
func (s *supervisor) status(c actor.Context, id uuid.UUID, ans answer[gatewayd.Status]) {
	rec := s.records[id]
	switch {
	case rec == nil:
		ans.fail(errNotFound)
	case !rec.running():
		ans.send(rec.status, nil)
	default:
		c.Forward(rec.pid)
	}
}

func (s *supervisor) record(id uuid.UUID, ans answer[gatewayd.Status]) {
	if rec := s.records[id]; rec != nil {
		ans.send(rec.status, nil)
	} else {
		ans.fail(errNotFound)
	}
}

func (s *supervisor) list(factoryID *uuid.UUID, ans answer[[]gatewayd.Status]) {
	out := make([]gatewayd.Status, 0, len(s.records))
	for _, rec := range s.records {
		if factoryID == nil || rec.status.FactoryID == *factoryID {
			out = append(out, rec.status)
		}
	}
	// Byte order of a UUID is the order of its hex string.
	slices.SortFunc(out, func(a, b gatewayd.Status) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	ans.send(out, nil)
}

// toRunning forwards a request to the gateway's actor, which answers it;
// without a record or an actor the supervisor fails it (not found; not
// running when FAILED, whose answer says to connect it; else not
// connected). FAILED is answered so from the moment the status says it,
// also while the actor that crashed too often is still stopping (its
// PID still set): the answer once said "not connected" in that window.
func (s *supervisor) toRunning(c actor.Context, id uuid.UUID, fail func(error)) {
	rec := s.records[id]
	switch {
	case rec == nil:
		fail(errNotFound)
	case rec.status.State == gatewayd.StateFailed:
		fail(fmt.Errorf("%w (state %s)", gatewayd.ErrNotRunning, rec.status.State))
	case !rec.running():
		fail(gatewayd.ErrNotConnected)
	default:
		c.Forward(rec.pid)
	}
}

func (s *supervisor) crash(c actor.Context, id uuid.UUID, ans answer[struct{}]) {
	rec := s.records[id]
	switch {
	case rec == nil:
		ans.fail(errNotFound)
	case !rec.running():
		ans.fail(fmt.Errorf("%w (state %s)", gatewayd.ErrNotRunning, rec.status.State))
	default:
		c.Send(rec.pid, &crash{})
		ans.send(struct{}{}, nil)
	}
}

// statusChanged records an actor's report, unless it comes from an
// incarnation the supervisor has moved past.
func (s *supervisor) statusChanged(st gatewayd.Status) {
	rec := s.records[st.ID]
	if rec != nil && rec.running() && st.Restarts >= rec.status.Restarts {
		s.setStatus(rec, st)
	}
}

// HandleFailure runs in the supervisor's own mailbox when a child panics.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID,
	_ *actor.RestartStatistics, reason interface{}, _ interface{}) {
	id, err := childID(child)
	rec := s.records[id]
	if err != nil || rec == nil || !rec.running() || rec.pid != child {
		// Removed (perhaps still waiting for its turn to stop), stopping,
		// or an earlier incarnation: it is not restarted.
		sup.StopChildren(child)
		return
	}
	now := time.Now()
	cutoff := now.Add(-s.d.cfg.RestartWindow)
	rec.failures = slices.DeleteFunc(rec.failures, func(t time.Time) bool { return t.Before(cutoff) })
	rec.failures = append(rec.failures, now)
	log := s.d.log.Warn().Str("id", id.String()).Str("gateway_id", rec.status.GatewayID).Interface("reason", reason).Int("crashes_in_window", len(rec.failures))
	if len(rec.failures) > s.d.cfg.RestartLimit {
		log.Str("state", string(gatewayd.StateFailed)).Msg("gateway actor crashed too often; stopping it")
		reasonText := capError(fmt.Sprintf("actor crashed %d times within %s (last: %v)", len(rec.failures), s.d.cfg.RestartWindow, reason))
		st := rec.status
		st.State, st.Since, st.LastError, st.NextRetryAt = gatewayd.StateFailed, now, reasonText, nil
		// A connect or disconnect the supervisor forwarded after the
		// message that crashed the actor dies in its mailbox: the wish it
		// stored stands (found by an audit, helper 17). A disconnect
		// leaves the gateway DISCONNECTED (with the crash as its last
		// error); a connect leaves FAILED (API.md §4), so a fresh actor is
		// spawned once this one has stopped.
		// So does a change of settings (a PUT) whose reconfigure died
		// there (unread): the gateway reconnects with them (found by an
		// audit, helper 3).
		rec.w.mu.Lock()
		t, unread := rec.w.target, rec.w.unread
		rec.w.mu.Unlock()
		if t.Desired != st.Desired {
			st.Desired = t.Desired
			if t.Desired == gatewayd.DesiredDisconnected {
				st.State = gatewayd.StateDisconnected
			} else {
				rec.respawn = true
			}
		} else if unread && t.Desired == gatewayd.DesiredConnected {
			rec.respawn = true
		}
		s.setStatus(rec, st)
		rec.stopping = true
		sup.StopChildren(child)
		return
	}
	log.Msg("gateway actor crashed; restarting it")
	s.d.cfg.Observer.ActorRestarted()
	before := rec.status
	rec.w.set(func(w *wanted) {
		w.restarts++
		if w.unread {
			// New credentials or a new desired state reached the record
			// after the actor last read it (its reconfigure waits in the
			// mailbox): they forget a refusal (README), so the new actor
			// does not go on from the old settings' status. It went on
			// from AUTH_FAILED with the new password and never tried it
			// (found by an audit, helper 3). Nor from the old settings'
			// backoff count, which reconfigure would have cleared: the
			// next crash went on from it, and a healthy gateway's first
			// drop waited the old url's 7th retry (found by an audit,
			// helper 15).
			w.before = nil
			w.failures = 0
			return
		}
		w.before = &before
	})
	st := rec.status
	st.Restarts++
	s.setStatus(rec, st)
	sup.RestartChildren(child)
}

// provenBy says whether a gateway last seen at lastSeen (nil: never)
// counts as proven when its record is made: one that ever answered (in
// this process or one before) takes the open lane of the dial limiter at
// its first dial. Every gateway used to start unproven after a restart,
// so the healthy ones queued behind peers that accept TCP and never
// answer, a connect timeout per batch of them (README: a gateway that
// has logged in never queues behind them). One that answered once and
// hangs now costs one dial in the open lane, then proves itself again.
func provenBy(lastSeen *time.Time) bool { return lastSeen != nil }

// tombstoneLife is the least time a removal is remembered: longer than
// any request that wrote before the delete takes to tell the runtime
// (its database budget, a few seconds).
const tombstoneLife = time.Minute

func (s *supervisor) converge(c actor.Context, m *converge) {
	if m.readAt.Before(s.restartedAt) {
		return // made before this supervisor's start: a fresh read comes
	}
	seen := make(map[uuid.UUID]bool, len(m.targets))
	kept := 0
	for _, t := range m.targets {
		seen[t.ID] = true
		if rec := s.records[t.ID]; rec != nil && rec.touched.After(m.readAt) {
			continue // changed through the API after this read was made
		}
		if at, ok := s.removed[t.ID]; ok && at.After(m.readAt) {
			continue // removed after this read was made
		}
		if e, refused := m.authFailed[t.ID]; refused && s.records[t.ID] == nil && t.Desired == gatewayd.DesiredConnected {
			s.applyRefused(c, t, e)
			continue
		}
		if s.keepOpened(&t) {
			kept++
		}
		s.apply(c, t)
	}
	if kept != s.sealedAway {
		s.sealedAway = kept
		if kept > 0 {
			s.d.log.Error().Int("gateways", kept).
				Msg("stored passwords were sealed under a key this process lacks (rekeyed by a process with a newer ENCRYPTION_KEY?); their connections go on with the passwords they have; restart with that key as ENCRYPTION_KEY")
		}
	}
	for id, at := range s.removed {
		// Every later read already lacks it, and a request that wrote
		// before the delete has long told the runtime.
		if at.Before(m.readAt) && m.readAt.Sub(at) > tombstoneLife {
			delete(s.removed, id)
		}
	}
	s.removed = shrink(s.removed, &s.removedPeak)
	gone := 0
	for id, rec := range s.records {
		if !seen[id] && !rec.touched.After(m.readAt) {
			s.remove(c, id)
			gone++
		}
	}
	s.removedMany(gone)
	if !s.n.ready.Load() {
		s.n.ready.Store(true)
		s.d.log.Info().Int("gateways", len(s.records)).Msg("runtime loaded")
		// A wrong ENCRYPTION_KEY made every gateway FAILED without a
		// line in the log; only their statuses said why (found by an
		// audit, helper 4).
		if n := countUnreadable(m.targets); n > 0 {
			s.d.log.Error().Int("gateways", n).
				Msg("stored passwords that no configured key opens (wrong ENCRYPTION_KEY, or ENCRYPTION_KEYS_PREVIOUS missing?); those gateways are not dialed until their password is set again")
		}
	}
}

func countUnreadable(ts []gatewayd.Target) int {
	n := 0
	for _, t := range ts {
		if t.Unreadable {
			n++
		}
	}
	return n
}

func (s *supervisor) upsert(c actor.Context, t gatewayd.Target) {
	if _, gone := s.removed[t.ID]; gone {
		// Written before the gateway was deleted (ids are never used
		// again), told after: the deletion stands.
		return
	}
	s.keepOpened(&t)
	s.apply(c, t)
	if rec := s.records[t.ID]; rec != nil {
		rec.touched = time.Now()
	}
}

// keepOpened gives t, whose stored password no key of this process opens,
// the password the runtime already has for the same gateway at the same
// url and email, and reports whether it did. A `gatewayd rekey` run with
// a newer key while this process still ran on the old one (README's
// first step skipped) re-sealed every password: the next reconcile
// stopped every connected gateway (FAILED, code 1000) without a word in
// the log, though the password itself had not changed (found by an
// audit, helper 16).
func (s *supervisor) keepOpened(t *gatewayd.Target) bool {
	if !t.Unreadable {
		return false
	}
	rec := s.records[t.ID]
	if rec == nil {
		return false
	}
	old, _ := rec.w.get()
	if old.Unreadable || old.URL != t.URL || old.Email != t.Email {
		return false
	}
	t.Password, t.Unreadable = old.Password, false
	return true
}

// applyRefused starts a gateway whose login was refused before this
// process as AUTH_FAILED, without trying the login again: as a restarted
// actor goes on from a crash (goOnFrom), from a status that says so.
func (s *supervisor) applyRefused(c actor.Context, t gatewayd.Target, lastError string) {
	before := &gatewayd.Status{State: gatewayd.StateAuthFailed, ReconnectAttempts: 1}
	if lastError != "" {
		before.LastError = &lastError
	}
	s.add(c, t, before)
}

// add starts keeping a gateway the supervisor has no record of; before,
// when set, is the status its first actor goes on from.
func (s *supervisor) add(c actor.Context, t gatewayd.Target, before *gatewayd.Status) {
	rec := &record{w: &wanted{target: t, proven: provenBy(t.LastSeenAt), before: before}}
	// No state yet: spawn sets the first one, and the observer sees a
	// gateway arrive.
	rec.status = gatewayd.Status{ID: t.ID, FactoryID: t.FactoryID, GatewayID: t.GatewayID, Name: t.Name,
		Desired: t.Desired, Since: time.Now(), LastSeenAt: t.LastSeenAt}
	s.records[t.ID] = rec
	s.recordsPeak = max(s.recordsPeak, len(s.records))
	s.n.total.Add(1)
	s.spawn(c, rec)
}

// apply makes the runtime match one gateway's settings.
func (s *supervisor) apply(c actor.Context, t gatewayd.Target) {
	rec := s.records[t.ID]
	if rec == nil {
		s.add(c, t, nil)
		return
	}
	old, _ := rec.w.get()
	if old.Equal(t) {
		return
	}
	changed := old.Credentials.Differs(t.Credentials) || old.Desired != t.Desired
	rec.w.set(func(w *wanted) {
		w.target = t
		if changed {
			// New credentials or a new desired state forget a refusal
			// (README). One restored at start waited here for an actor
			// when the password could not be decrypted (no actor took
			// it), and the actor spawned for the new password went on
			// from it: AUTH_FAILED, no login tried (found by an audit,
			// helper 6).
			w.before = nil
			w.unread = true
		}
		if old.Credentials.Differs(t.Credentials) {
			// A new address or login has proven nothing yet, as
			// reconfigure says (setReachedLogin): an actor restarted
			// before it read them dialled them in the open lane.
			w.proven = false
		}
	})
	st := rec.status
	st.FactoryID, st.GatewayID, st.Name = t.FactoryID, t.GatewayID, t.Name
	s.setStatus(rec, st)
	switch {
	case rec.running() && t.Unreadable:
		// Its password no longer opens (the key changed): the actor would
		// log in with none. It stops, and spawn makes the gateway FAILED
		// with the reason.
		rec.stopping, rec.respawn = true, true
		s.stops.add(c, rec.pid)
	case rec.running():
		c.Send(rec.pid, &reconfigure{})
	case changed && rec.stopping:
		rec.respawn = true
	case changed:
		// A FAILED gateway leaves that state when its settings change.
		rec.failures = nil
		s.spawn(c, rec)
	}
}

func (s *supervisor) spawn(c actor.Context, rec *record) {
	t, _ := rec.w.get()
	if t.Unreadable {
		msg := "stored password cannot be decrypted (wrong ENCRYPTION_KEY?); set the password again"
		st := rec.status
		// A gateway nobody wants connected is DISCONNECTED as ever (API.md
		// §4), with the reason it would fail; a connect request makes it
		// FAILED, as the spawn it asks for comes here again.
		state := gatewayd.StateFailed
		if t.Desired == gatewayd.DesiredDisconnected {
			state = gatewayd.StateDisconnected
		}
		st.State, st.Desired, st.LastError = state, t.Desired, &msg
		s.setStatus(rec, sinceChanged(rec.status, st))
		return
	}
	st := rec.status
	st.State, st.Desired, st.Since, st.NextRetryAt = gatewayd.StateConnecting, t.Desired, time.Now(), nil
	switch before := rec.w.peekBefore(); {
	case t.Desired == gatewayd.DesiredDisconnected:
		st.State = gatewayd.StateDisconnected
	case before != nil && before.State == gatewayd.StateAuthFailed:
		// Its login was refused before (a restart of gatewayd remembers
		// it): the actor goes on from there without dialing (goOnFrom),
		// so it never was CONNECTING, and no event or count may say so
		// (found by an audit, helper 1).
		st.State, st.LastError, st.ReconnectAttempts = gatewayd.StateAuthFailed, before.LastError, before.ReconnectAttempts
	}
	s.setStatus(rec, st)
	d, w := s.d, rec.w
	// The lock-free mailbox: Proto.Actor's default one starts every actor
	// with a ring of ten slots (~240 B, a tenth of a gateway that is not
	// connected) and never shrinks it after a burst of frames; this one
	// holds a node per message waiting. A gateway's messages are few, and
	// the reader waits for the actor's credit (the inbox) before it sends.
	pid, err := c.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newGatewayActor(d, w) },
		actor.WithMailbox(d.mailbox), actor.WithDispatcher(d.dispatch)), t.ID.String())
	if err != nil {
		// The name is still taken by an incarnation that is stopping.
		s.d.log.Warn().Err(err).Str("id", t.ID.String()).Str("gateway_id", t.GatewayID).Msg("spawn deferred")
		rec.stopping, rec.respawn = true, true
		return
	}
	rec.pid = pid
}

func (s *supervisor) remove(c actor.Context, id uuid.UUID) {
	// Remembered even when the runtime has not heard of the gateway yet:
	// a factory's deletion can name a gateway whose create has not told
	// the runtime yet, and that create's upsert must find it removed.
	s.removed[id] = time.Now()
	s.removedPeak = max(s.removedPeak, len(s.removed))
	rec := s.records[id]
	if rec == nil {
		return
	}
	if rec.pid != nil {
		s.stops.add(c, rec.pid)
	}
	s.setStatus(rec, gatewayd.Status{ID: id, FactoryID: rec.status.FactoryID})
	delete(s.records, id)
	s.n.total.Add(-1)
}

// removedMany runs after n gateways were removed: the records map is
// rebuilt if it shrank a lot, and every trimMin removals (at once or one
// by one) ask for memory to be given back to the OS (trim.go) once their
// actors have stopped.
func (s *supervisor) removedMany(n int) {
	s.records = shrink(s.records, &s.recordsPeak)
	s.removedSinceTrim += n
	s.maybeTrim()
}

func (s *supervisor) maybeTrim() {
	if s.removedSinceTrim >= trimMin && s.stops.idle() {
		s.removedSinceTrim = 0
		s.d.trim()
	}
}

// shrinkMin is the smallest peak worth rebuilding a map for.
const shrinkMin = 1024

// shrink returns m, or a copy of it when it holds less than a quarter of
// its peak (at least shrinkMin): Go maps keep the table of their largest
// size, so after 50,000 gateways come and go the supervisor's maps would
// hold tables for 50,000. peak is updated to the map returned.
func shrink[K comparable, V any](m map[K]V, peak *int) map[K]V {
	if *peak < shrinkMin || len(m) >= *peak/4 {
		*peak = max(*peak, len(m))
		return m
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	*peak = len(out)
	return out
}

func (s *supervisor) connect(c actor.Context, id uuid.UUID, ans answer[gatewayd.Status]) {
	rec := s.records[id]
	if rec == nil {
		ans.fail(errNotFound)
		return
	}
	rec.w.set(func(w *wanted) { w.target.Desired = gatewayd.DesiredConnected })
	rec.touched = time.Now()
	if rec.stopping {
		rec.respawn = true
		st := rec.status
		st.Desired = gatewayd.DesiredConnected
		s.setStatus(rec, st)
		ans.send(rec.status, nil)
		return
	}
	if rec.pid == nil {
		rec.failures = nil
		s.spawn(c, rec)
		if rec.pid == nil {
			ans.send(rec.status, nil)
			return
		}
	}
	c.Forward(rec.pid)
}

func (s *supervisor) terminated(c actor.Context, m *actor.Terminated) {
	// A child's PID outlives the child: Proto.Actor's set of children
	// keeps removed PIDs in its backing array past its length, and a PID
	// caches a pointer to its process, which holds the actor and all it
	// owned (heap profile after 18,000 gateways were created and deleted:
	// 30 MiB of dead actors still live, BENCHMARKS.md). Clearing that slot
	// makes the PID, and all it caches, garbage.
	clearVacatedChild(c)
	s.stops.terminated(c, m.Who)
	s.maybeTrim()
	id, err := childID(m.Who)
	rec := s.records[id]
	if err != nil || rec == nil {
		return
	}
	switch {
	case rec.pid == m.Who:
		rec.pid = nil
	case rec.pid != nil || !rec.stopping:
		// An earlier incarnation of a gateway removed and added again,
		// whose name was free by the time the new one was spawned: the
		// record's actor is another one. (With a nil pid and stopping
		// set, the new record's spawn was deferred until this one ended.)
		return
	}
	if s.ending {
		return // the runtime stops: no gateway crashed
	}
	if rec.stopping {
		rec.stopping = false
		if rec.respawn {
			rec.respawn = false
			rec.failures = nil
			s.spawn(c, rec)
		}
		return
	}
	// Stopped without being asked: keep the gateway visible as FAILED.
	msg := "gateway actor stopped unexpectedly"
	st := rec.status
	st.State, st.Since, st.LastError = gatewayd.StateFailed, time.Now(), &msg
	s.setStatus(rec, st)
}

// clearVacatedChild clears the slot of Proto.Actor's set of children that
// the child just terminated vacated. PIDSet.Remove moves the last child
// into the removed one's slot and shortens the slice without clearing its
// old last slot, so every removed child's PID and id string stayed
// reachable from the backing array, scattered over pages the create storm
// filled (50,000 gateways created and deleted: 3.4 MB of PIDs live, and
// the pages under them kept; BENCHMARKS.md, 2026-12-04 fourth session).
// Proto.Actor has removed the child before the Terminated reaches the
// actor, so the vacated slot is the one just past the slice's end.
// Children returns the set's own slice (protoactor-go 2024-08); were it a
// copy, this would clear the copy's spare room, which is harmless.
func clearVacatedChild(c actor.Context) {
	kids := c.Children()
	if len(kids) < cap(kids) {
		kids[:len(kids)+1][len(kids)] = nil
	}
}

// sinceChanged is st with since now if its state is not was's, else
// was's since: a disconnect repeated, or a connect refused again for an
// unreadable password, is no change of state (found by an audit, helper
// 5: a second disconnect of a FAILED gateway moved its since).
func sinceChanged(was, st gatewayd.Status) gatewayd.Status {
	if st.State != was.State {
		st.Since = time.Now()
	} else {
		st.Since = was.Since
	}
	return st
}

// setStatus records a status, keeps the authenticated count current and
// tells the observer of a change of state.
func (s *supervisor) setStatus(rec *record, st gatewayd.Status) {
	was := rec.status.State == gatewayd.StateAuthenticated
	is := st.State == gatewayd.StateAuthenticated
	if from := rec.status.State; from != st.State {
		s.d.cfg.Observer.GatewayState(from, st)
	}
	rec.status = st
	switch {
	case is && !was:
		s.n.authenticated.Add(1)
	case was && !is:
		s.n.authenticated.Add(-1)
	}
}

func childID(pid *actor.PID) (uuid.UUID, error) {
	name := pid.Id
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return uuid.Parse(name)
}
