package actors

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd/store"
)

// record is the supervisor's view of one gateway.
type record struct {
	w        *wanted
	pid      *actor.PID // nil while the gateway has no actor (FAILED)
	status   Status
	failures []time.Time // crashes within the restart window
	touched  time.Time   // last change through the API; reconcile reads older than this do not undo it
	stopping bool        // stop ordered; waiting for Terminated
	respawn  bool        // spawn again once Terminated arrives
}

// supervisor owns every gateway actor. It implements SupervisorStrategy
// itself, so it sees each crash: it counts restarts (a restart resets the
// child's fields) and turns a crash loop into FAILED.
type supervisor struct {
	d       *deps
	records map[uuid.UUID]*record
	// removed remembers when gateways were removed, so a store read made
	// before a removal cannot bring the gateway back.
	removed map[uuid.UUID]time.Time
}

func newSupervisor(d *deps) *supervisor {
	return &supervisor{d: d, records: make(map[uuid.UUID]*record), removed: make(map[uuid.UUID]time.Time)}
}

func (s *supervisor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		// After a restart of the supervisor its children are gone: ask for
		// a fresh read so they come back.
		if s.d.supervisorStarts.Add(1) > 1 {
			s.d.kick()
		}
	case *converge:
		s.converge(c, m)
	case *startGateway:
		s.upsert(c, m.conn)
	case *updateGateway:
		s.upsert(c, m.conn)
	case *stopGateways:
		for _, id := range m.ids {
			s.remove(c, id)
		}
	case *connectGateway:
		s.connect(c, m)
	case *disconnectGateway:
		rec := s.records[m.id]
		if rec == nil {
			c.Respond(&notFound{})
			return
		}
		rec.w.set(func(w *wanted) { w.desired = DesiredDisconnected })
		rec.touched = time.Now()
		if rec.pid == nil || rec.stopping {
			rec.respawn = false
			st := rec.status
			st.Desired, st.State, st.Since, st.NextRetryAt = DesiredDisconnected, StateDisconnected, time.Now(), nil
			s.setStatus(rec, st)
			c.Respond(rec.status)
			return
		}
		c.Forward(rec.pid)
	case *getStatus:
		rec := s.records[m.id]
		switch {
		case rec == nil:
			c.Respond(&notFound{})
		case rec.pid == nil || rec.stopping:
			c.Respond(rec.status)
		default:
			c.Forward(rec.pid)
		}
	case *getRecord:
		if rec := s.records[m.id]; rec != nil {
			c.Respond(rec.status)
		} else {
			c.Respond(&notFound{})
		}
	case *listStatuses:
		out := make([]Status, 0, len(s.records))
		for _, rec := range s.records {
			if m.factoryID == nil || rec.status.FactoryID == *m.factoryID {
				out = append(out, rec.status)
			}
		}
		// Byte order of a UUID is the order of its hex string.
		slices.SortFunc(out, func(a, b Status) int { return bytes.Compare(a.ID[:], b.ID[:]) })
		c.Respond(out)
	case *crashGateway:
		rec := s.records[m.id]
		switch {
		case rec == nil:
			c.Respond(&notFound{})
		case rec.pid == nil || rec.stopping:
			c.Respond(&notRunning{state: rec.status.State})
		default:
			c.Send(rec.pid, &crash{})
			c.Respond(&accepted{})
		}
	case *statusChanged:
		rec := s.records[m.status.ID]
		// Ignore reports of an incarnation the supervisor has moved past.
		if rec != nil && rec.pid != nil && !rec.stopping && m.status.Restarts >= rec.status.Restarts {
			s.setStatus(rec, m.status)
		}
	case *actor.Terminated:
		s.terminated(c, m)
	}
}

// HandleFailure runs in the supervisor's own mailbox when a child panics.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID,
	_ *actor.RestartStatistics, reason interface{}, _ interface{}) {
	id, err := childID(child)
	rec := s.records[id]
	if err != nil || rec == nil || rec.pid == nil || rec.stopping {
		sup.StopChildren(child)
		return
	}
	now := time.Now()
	cutoff := now.Add(-s.d.cfg.RestartWindow)
	rec.failures = slices.DeleteFunc(rec.failures, func(t time.Time) bool { return t.Before(cutoff) })
	rec.failures = append(rec.failures, now)
	log := s.d.log.Warn().Str("gateway_id", id.String()).Interface("reason", reason).Int("crashes_in_window", len(rec.failures))
	if len(rec.failures) > s.d.cfg.RestartLimit {
		log.Str("state", string(StateFailed)).Msg("gateway actor crashed too often; stopping it")
		reasonText := fmt.Sprintf("actor crashed %d times within %s (last: %v)", len(rec.failures), s.d.cfg.RestartWindow, reason)
		st := rec.status
		st.State, st.Since, st.LastError, st.NextRetryAt = StateFailed, now, &reasonText, nil
		s.setStatus(rec, st)
		rec.stopping = true
		sup.StopChildren(child)
		return
	}
	log.Msg("gateway actor crashed; restarting it")
	rec.w.set(func(w *wanted) { w.restarts++ })
	st := rec.status
	st.Restarts++
	s.setStatus(rec, st)
	sup.RestartChildren(child)
}

func (s *supervisor) converge(c actor.Context, m *converge) {
	seen := make(map[uuid.UUID]bool, len(m.conns))
	for _, conn := range m.conns {
		seen[conn.ID] = true
		if rec := s.records[conn.ID]; rec != nil && rec.touched.After(m.readAt) {
			continue // changed through the API after this read was made
		}
		if at, ok := s.removed[conn.ID]; ok && at.After(m.readAt) {
			continue // removed after this read was made
		}
		s.apply(c, conn)
	}
	for id, at := range s.removed {
		if at.Before(m.readAt) {
			delete(s.removed, id) // every later read already lacks it
		}
	}
	for id, rec := range s.records {
		if !seen[id] && !rec.touched.After(m.readAt) {
			s.remove(c, id)
		}
	}
	if !s.d.ready.Load() {
		s.d.ready.Store(true)
		s.d.log.Info().Int("gateways", len(s.records)).Msg("runtime loaded")
	}
}

func (s *supervisor) upsert(c actor.Context, conn store.Connection) {
	delete(s.removed, conn.ID)
	s.apply(c, conn)
	if rec := s.records[conn.ID]; rec != nil {
		rec.touched = time.Now()
	}
}

// apply makes the runtime match one gateway's settings.
func (s *supervisor) apply(c actor.Context, conn store.Connection) {
	rec := s.records[conn.ID]
	if rec == nil {
		rec = &record{w: &wanted{conn: conn, desired: DesiredConnected}}
		rec.status = Status{ID: conn.ID, FactoryID: conn.FactoryID, State: StateConnecting, Desired: DesiredConnected, Since: time.Now()}
		s.records[conn.ID] = rec
		s.d.total.Add(1)
		s.spawn(c, rec)
		return
	}
	old, _, _ := rec.w.get()
	if old == conn {
		return
	}
	changed := old.URL != conn.URL || old.Email != conn.Email || old.Password != conn.Password || old.Unreadable != conn.Unreadable
	rec.w.set(func(w *wanted) { w.conn = conn })
	st := rec.status
	st.FactoryID = conn.FactoryID
	s.setStatus(rec, st)
	switch {
	case rec.pid != nil && !rec.stopping:
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
	conn, desired, _ := rec.w.get()
	if conn.Unreadable {
		msg := "stored password cannot be decrypted (wrong ENCRYPTION_KEY?); set the password again"
		st := rec.status
		st.State, st.Since, st.LastError = StateFailed, time.Now(), &msg
		s.setStatus(rec, st)
		return
	}
	st := rec.status
	st.State, st.Desired, st.Since, st.NextRetryAt = StateConnecting, desired, time.Now(), nil
	if desired == DesiredDisconnected {
		st.State = StateDisconnected
	}
	s.setStatus(rec, st)
	d, w := s.d, rec.w
	pid, err := c.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newGatewayActor(d, w) }), conn.ID.String())
	if err != nil {
		// The name is still taken by an incarnation that is stopping.
		s.d.log.Warn().Err(err).Str("gateway_id", conn.ID.String()).Msg("spawn deferred")
		rec.stopping, rec.respawn = true, true
		return
	}
	rec.pid = pid
}

func (s *supervisor) remove(c actor.Context, id uuid.UUID) {
	rec := s.records[id]
	if rec == nil {
		return
	}
	if rec.pid != nil {
		c.Stop(rec.pid) // the actor closes its socket with code 1000
	}
	s.setStatus(rec, Status{})
	delete(s.records, id)
	s.removed[id] = time.Now()
	s.d.total.Add(-1)
}

func (s *supervisor) connect(c actor.Context, m *connectGateway) {
	rec := s.records[m.id]
	if rec == nil {
		c.Respond(&notFound{})
		return
	}
	rec.w.set(func(w *wanted) { w.desired = DesiredConnected })
	rec.touched = time.Now()
	if rec.stopping {
		rec.respawn = true
		st := rec.status
		st.Desired = DesiredConnected
		s.setStatus(rec, st)
		c.Respond(rec.status)
		return
	}
	if rec.pid == nil {
		rec.failures = nil
		s.spawn(c, rec)
		if rec.pid == nil {
			c.Respond(rec.status)
			return
		}
	}
	c.Forward(rec.pid)
}

func (s *supervisor) terminated(c actor.Context, m *actor.Terminated) {
	id, err := childID(m.Who)
	rec := s.records[id]
	if err != nil || rec == nil {
		return
	}
	rec.pid = nil
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
	st.State, st.Since, st.LastError = StateFailed, time.Now(), &msg
	s.setStatus(rec, st)
}

// setStatus records a status and keeps the authenticated count current.
func (s *supervisor) setStatus(rec *record, st Status) {
	was := rec.status.State == StateAuthenticated
	is := st.State == StateAuthenticated
	rec.status = st
	switch {
	case is && !was:
		s.d.authenticated.Add(1)
	case was && !is:
		s.d.authenticated.Add(-1)
	}
}

func childID(pid *actor.PID) (uuid.UUID, error) {
	name := pid.Id
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return uuid.Parse(name)
}
