package actors

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/ctc"
)

// This file is the acquisition state machine of a gateway actor: one
// reading at a time (the sensor captures physically), a bounded queue
// behind it, the reading schedules of the gateway's sensors, and readings
// the gateway pushes unasked. Decoding and analysis happen off the actor,
// in the processor; every state change goes to the writer.

// stage is where the current acquisition is.
type stage int

const (
	stageQueued    stage = iota // waiting for its turn
	stageTaking                 // TAKE_DYN_READING sent, waiting for its answer
	stageStarting               // answered; waiting for NOT_DYN_READING_STARTED
	stageCapturing              // started; waiting for NOT_DYN_READING
)

// acquisition is one reading in the actor's hands.
type acquisition struct {
	r      gatewayd.Reading
	serial int64
	rateHz float64
	stage  stage
	// deadline is when the current stage's timer runs out; a frame the
	// reader held since before it still counts (onReadingTimer).
	deadline time.Time
	// lastCall: the stage's timer ran out, and went once more through
	// the mailbox, behind any frame read before it.
	lastCall bool
}

// lateNotes are what a serial's reading that failed before its capture
// ended may still send: its NOT_DYN_READING_STARTED (if it timed out
// waiting for that, or for the answer to TAKE_DYN_READING, which came
// late) and its NOT_DYN_READING. Gateways send no correlation ids: a
// start or samples arriving while the next reading of the sensor waits
// for its own could be either's. Counting them and taking the next ones
// as the old reading's (86d6df8, after an audit, helper 2) was wrong when
// they never came: every later reading of the sensor took the next one's
// start and failed in turn (found by an audit, helper 8). So while a
// serial owes notes, no reading of it starts (nextReading passes it by):
// what comes for it then is the old reading's, its samples kept as a
// reading the gateway pushed. The wait ends when the samples come, a
// refused start says none will, or until passes (a start and a capture's
// time after the failure; a late start gives its capture the time anew).
type lateNotes struct {
	started, samples int
	until            time.Time
	timer            *time.Timer // ends the wait at until
}

// lateEnded: a serial's wait for a failed reading's notes ran out.
type lateEnded struct {
	gen    uint64
	serial int64
}

// owe records that acq's reading, failed at now before its capture
// ended, may still notify: a start if it was not started yet.
func (a *gatewayActor) owe(acq *acquisition, now time.Time) {
	n := a.late[acq.serial]
	if n == nil || !now.Before(n.until) {
		if n != nil {
			n.timer.Stop()
		}
		n = &lateNotes{}
		if a.late == nil {
			a.late = make(map[int64]*lateNotes)
		}
		a.late[acq.serial] = n
	}
	if acq.stage <= stageStarting {
		n.started++
	}
	n.samples++
	a.waitForNotes(acq.serial, n, now.Add(a.d.cfg.ReadingStartTimeout+a.d.cfg.ReadingTimeout))
}

// waitForNotes (re)sets until, and the timer that ends the wait then.
func (a *gatewayActor) waitForNotes(serial int64, n *lateNotes, until time.Time) {
	n.until = until
	if n.timer != nil {
		n.timer.Stop()
	}
	gen, root, self := a.gen, a.d.root, a.self
	n.timer = time.AfterFunc(time.Until(until), func() { root.Send(self, &lateEnded{gen: gen, serial: serial}) })
}

// owes reports whether serial still waits for a failed reading's notes.
func (a *gatewayActor) owes(serial int64, now time.Time) bool {
	n := a.late[serial]
	return n != nil && now.Before(n.until)
}

// lateNote takes an owed notification of serial, a start or samples, and
// reports whether there was one: the notification is the failed
// reading's. With the samples (or a refused start: none will come) the
// wait ends, and the next reading may start.
func (a *gatewayActor) lateNote(serial int64, now time.Time, start, refused bool) bool {
	n := a.late[serial]
	if n == nil || !now.Before(n.until) {
		return false
	}
	switch {
	case start && n.started > 0:
		n.started--
		if !refused {
			// Its capture has the time any capture has, from now.
			a.waitForNotes(serial, n, maxTime(n.until, now.Add(a.d.cfg.ReadingTimeout)))
			return true
		}
		n.samples = max(n.samples-1, 0)
	case !start && n.samples > 0:
		n.samples--
		n.started = 0 // a start never follows its capture's samples
	default:
		return false
	}
	if n.started == 0 && n.samples == 0 {
		a.endWait(serial)
	}
	return true
}

// endWait forgets what serial owes and starts the next reading.
func (a *gatewayActor) endWait(serial int64) {
	if n := a.late[serial]; n != nil {
		n.timer.Stop()
		delete(a.late, serial)
	}
	a.nextReading()
}

// onLateEnded: the notes did not come in time; the next reading of the
// sensor may start.
func (a *gatewayActor) onLateEnded(m *lateEnded) {
	if n := a.late[m.serial]; m.gen == a.gen && n != nil && !time.Now().Before(n.until) {
		a.endWait(m.serial)
	}
}

func maxTime(x, y time.Time) time.Time {
	if x.After(y) {
		return x
	}
	return y
}

// scheduled is one sensor's reading schedule and its timer.
type scheduled struct {
	gatewayd.Schedule
	timer *time.Timer
	// due is when the timer is meant to fire; the next is due an interval
	// after it (not after the moment the actor handled it), so delays in
	// the mailbox do not add up over days.
	due time.Time
}

// takeReading asks a gateway's actor to acquire a reading (the reading is
// already stored QUEUED).
type takeReading struct {
	id     uuid.UUID // the gateway
	r      gatewayd.Reading
	serial int64
	rateHz float64
	asks[struct{}]
}

// readingTimer: the current acquisition's stage did not end in time.
type readingTimer struct {
	gen     uint64
	reading uuid.UUID
	stage   stage
}

// scheduleFired: a sensor's reading interval passed.
type scheduleFired struct {
	epoch uint64     // the schedule arming it belongs to
	s     *scheduled // stale once the sensor's schedule is another
}

// onTakeReading queues a requested reading, or refuses it at once.
func (a *gatewayActor) onTakeReading(m *takeReading) error {
	if a.status.State != gatewayd.StateAuthenticated {
		return fmt.Errorf("%w (state %s)", gatewayd.ErrNotConnected, a.status.State)
	}
	if a.waiting() >= a.d.cfg.ReadingQueueLimit {
		return fmt.Errorf("%w: %d readings waiting", gatewayd.ErrQueueFull, a.waiting())
	}
	// The rate the gateway's last discovery reported: the stored one
	// lags it while the discovery's write waits in the writer's batch (or
	// was refused by the database), and a reading at the old rate reads
	// every tone at the wrong frequency.
	rate, _ := a.sensorRates.lookup(m.serial)
	if rate <= 0 {
		rate = m.rateHz
	}
	a.readings = append(a.readings, &acquisition{r: m.r, serial: m.serial, rateHz: rate})
	a.nextReading()
	return nil
}

// nextReading starts the acquisition at the head of the queue, if none is
// running.
func (a *gatewayActor) nextReading() {
	if len(a.readings) == 0 || a.readings[0].stage != stageQueued || a.status.State != gatewayd.StateAuthenticated {
		return
	}
	// The first whose sensor owes no failed reading's notes (lateNotes);
	// those that wait keep their order.
	now, i := time.Now(), 0
	for i < len(a.readings) && a.owes(a.readings[i].serial, now) {
		i++
	}
	if i == len(a.readings) {
		return // all wait; onLateEnded or the notes start one
	}
	acq := a.readings[i]
	copy(a.readings[1:i+1], a.readings[:i])
	a.readings[0] = acq
	acq.stage = stageTaking
	a.enqueue(&command{typ: ctc.TypeTakeDynReading, data: ctc.TakeReading{Serial: acq.serial},
		timeout: a.d.cfg.CommandTimeout, reading: acq})
}

// waiting counts the readings queued behind the current one.
func (a *gatewayActor) waiting() int {
	if a.current() != nil {
		return len(a.readings) - 1
	}
	return len(a.readings)
}

// current is the acquisition in progress, if any.
func (a *gatewayActor) current() *acquisition {
	if len(a.readings) > 0 && a.readings[0].stage != stageQueued {
		return a.readings[0]
	}
	return nil
}

// onTakeAnswer: the gateway answered TAKE_DYN_READING.
func (a *gatewayActor) onTakeAnswer(acq *acquisition, msg ctc.Message) {
	if acq != a.current() {
		return
	}
	if e, ok := msg.(*ctc.ErrorResult); ok {
		a.failReading(acq, "refused by gateway: "+string(e.Error))
		return
	}
	acq.stage = stageStarting
	a.armReadingTimer(acq, a.d.cfg.ReadingStartTimeout)
}

// onTakeLateAnswer: the gateway answered acq's TAKE_DYN_READING after
// its reading had failed for want of it: a yes means it goes on with the
// capture, whose notes are that reading's (found by an audit, helper 8).
func (a *gatewayActor) onTakeLateAnswer(acq *acquisition, msg ctc.Message) {
	if _, refused := msg.(*ctc.ErrorResult); !refused && acq != nil {
		acq.stage = stageTaking
		a.owe(acq, time.Now())
	}
}

// onTakeTimeout: TAKE_DYN_READING was not answered in time.
func (a *gatewayActor) onTakeTimeout(acq *acquisition) {
	if acq == a.current() {
		a.failReading(acq, fmt.Sprintf("no answer to TAKE_DYN_READING within %s", a.d.cfg.CommandTimeout))
	}
}

func (a *gatewayActor) onReadingStarted(now time.Time, n *ctc.ReadingStarted) {
	serial, ok := n.Serial.Int64()
	if !ok {
		a.drop(now, "NOT_DYN_READING_STARTED with a malformed serial")
		return
	}
	if a.lateNote(serial, now, true, !bool(n.Success)) {
		return // the failed reading's, late
	}
	acq := a.current()
	if acq == nil || acq.serial != serial || acq.stage != stageStarting {
		// A notification of a reading nobody here is waiting for; a
		// serial the last discovery did not list is still a sensor.
		if _, known := a.sensorRates.lookup(serial); !known {
			a.d.writer.temperature(gatewayd.Temperature{GatewayID: a.id, Serial: serial, At: now, Sighting: true})
		}
		return
	}
	if !n.Success {
		reason := gatewayd.ReadingErrRefused
		if e := strings.TrimSpace(string(n.Error)); e != "" {
			reason = string(n.Error)
		}
		a.failReading(acq, reason)
		return
	}
	acq.stage = stageCapturing
	acq.r.Status, acq.r.StartedAt = gatewayd.ReadingRunning, &now
	a.d.writer.reading(gatewayd.ReadingUpdate{Reading: acq.r, Serial: acq.serial})
	a.armReadingTimer(acq, a.d.cfg.ReadingTimeout)
}

// onReading: samples arrived. The current acquisition's (a gateway may
// skip NOT_DYN_READING_STARTED) goes to the processor and the next one
// starts; any other is a reading the gateway pushed unasked.
func (a *gatewayActor) onReading(now time.Time, n *ctc.Reading, text *[]byte) {
	serial, ok := n.Serial.Int64()
	if !ok {
		a.drop(now, "NOT_DYN_READING with a malformed serial")
		return
	}
	late := a.lateNote(serial, now, false, false)
	if acq := a.current(); !late && acq != nil && acq.serial == serial && acq.stage >= stageStarting {
		if acq.r.StartedAt == nil {
			acq.r.StartedAt = &now
		}
		// The acquisition ended when its samples came: the next one
		// starts now, while the processor analyses these, and a
		// completed_at stamped after the analysis fell after the next
		// reading's started_at (found by an audit, helper 7).
		acq.r.CompletedAt = &now
		a.readings = a.readings[1:]
		a.stopReadingTimer()
		a.d.processor.submit(job{r: acq.r, serial: serial, rateHz: acq.rateHz, x: n.X, y: n.Y, z: n.Z, text: text})
		a.nextReading()
		return
	}
	r := gatewayd.Reading{ID: uuid.New(), GatewayID: a.id, Trigger: gatewayd.TriggerGateway, Status: gatewayd.ReadingRunning,
		RequestedAt: now, StartedAt: &now, CompletedAt: &now}
	rate, known := a.sensorRates.lookup(serial)
	if !known {
		// A serial the last discovery did not list is still a sensor, and
		// a client hears of it (sensor.updated) as of one a temperature
		// named: the reading's own insert of the row tells nobody (found
		// by an audit, helper 5).
		a.d.writer.temperature(gatewayd.Temperature{GatewayID: a.id, Serial: serial, At: now, Sighting: true})
	}
	a.d.processor.submit(job{r: r, serial: serial, rateHz: rate, x: n.X, y: n.Y, z: n.Z, text: text})
}

func (a *gatewayActor) onReadingTimer(m *readingTimer) {
	acq := a.current()
	if acq == nil || acq.r.ID != m.reading || acq.stage != m.stage {
		return
	}
	now := time.Now()
	if a.readerHeld != nil {
		// The reader has a large frame in hand that began before the
		// deadline, or queued behind one that did (the intake, a
		// decoding slot or the inbox made it wait: a burst of readings
		// on its way to the database): it may be this one, sent in
		// time, so the timer waits for it, up to another
		// READING_TIMEOUT (found by audits, helpers 2, 8 and 10).
		if since, held := a.readerHeld.inHandSince(); held && !since.After(acq.deadline) &&
			now.Before(acq.deadline.Add(a.d.cfg.ReadingTimeout)) {
			a.startReadingTimer(acq, heldPoll)
			return
		}
	}
	if !acq.lastCall {
		// A frame handed over just before this fired waits in the
		// mailbox behind it: once more, behind that.
		acq.lastCall = true
		a.d.root.Send(a.self, m)
		return
	}
	a.owe(acq, now)
	switch m.stage {
	case stageStarting:
		a.failReading(acq, fmt.Sprintf("no NOT_DYN_READING_STARTED within %s", a.d.cfg.ReadingStartTimeout))
	case stageCapturing:
		a.failReading(acq, fmt.Sprintf("no NOT_DYN_READING within %s", a.d.cfg.ReadingTimeout))
	}
}

// failReading ends the current acquisition as FAILED and starts the next.
func (a *gatewayActor) failReading(acq *acquisition, reason string) {
	if len(a.readings) > 0 && a.readings[0] == acq {
		a.readings = a.readings[1:]
	}
	a.stopReadingTimer()
	a.d.writer.reading(failed(acq, reason, time.Now()))
	a.nextReading()
}

// failAllReadings fails every acquisition in the actor's hands: the
// connection is gone, or the actor is.
func (a *gatewayActor) failAllReadings(reason string) {
	now := time.Now()
	for _, acq := range a.readings {
		a.d.writer.reading(failed(acq, reason, now))
	}
	clear(a.readings)
	a.readings = a.readings[:0]
	a.stopReadingTimer()
	for _, n := range a.late { // a new connection owes nothing
		n.timer.Stop()
	}
	a.late = nil
}

func failed(acq *acquisition, reason string, now time.Time) gatewayd.ReadingUpdate {
	r := acq.r
	r.Status, r.Error = gatewayd.ReadingFailed, capError(reason)
	if r.CompletedAt == nil { // else when the samples came (onReading)
		r.CompletedAt = &now
	}
	return gatewayd.ReadingUpdate{Reading: r, Serial: acq.serial}
}

// heldPoll is how often a reading timer looks whether the reader still
// holds a frame that came in time.
const heldPoll = 50 * time.Millisecond

// armReadingTimer gives the acquisition's stage d to end.
func (a *gatewayActor) armReadingTimer(acq *acquisition, d time.Duration) {
	acq.deadline, acq.lastCall = time.Now().Add(d), false
	a.startReadingTimer(acq, d)
}

// startReadingTimer fires the acquisition's stage timer in d.
func (a *gatewayActor) startReadingTimer(acq *acquisition, d time.Duration) {
	a.stopReadingTimer()
	gen, root, self, id, st := a.gen, a.d.root, a.self, acq.r.ID, acq.stage
	a.readingTimer = time.AfterFunc(d, func() { root.Send(self, &readingTimer{gen: gen, reading: id, stage: st}) })
}

func (a *gatewayActor) stopReadingTimer() {
	if a.readingTimer != nil {
		a.readingTimer.Stop()
		a.readingTimer = nil
	}
}

// armSchedules starts every sensor's schedule on its grid (gridDue).
func (a *gatewayActor) armSchedules() {
	a.stopSchedules()
	a.scheduleEpoch++
	a.updateSchedules()
}

// updateSchedules makes the running schedules the target's: a sensor
// whose schedule is unchanged keeps its timer; a new or changed one is
// armed at its grid's next due time; a removed one stops. Changing one
// sensor's interval moves no other sensor's readings.
func (a *gatewayActor) updateSchedules() {
	if a.schedules == nil && len(a.target.Schedules) > 0 {
		a.schedules = make(map[uuid.UUID]*scheduled, len(a.target.Schedules))
	}
	wanted := make(map[uuid.UUID]bool, len(a.target.Schedules))
	for _, sc := range a.target.Schedules {
		wanted[sc.SensorID] = true
		if s, ok := a.schedules[sc.SensorID]; ok {
			if s.Schedule == sc {
				continue
			}
			s.timer.Stop()
		}
		s := &scheduled{Schedule: sc}
		a.schedules[sc.SensorID] = s
		a.armSchedule(s, gridDue(sc, time.Now()))
	}
	for id, s := range a.schedules {
		if !wanted[id] {
			s.timer.Stop()
			delete(a.schedules, id)
		}
	}
}

// gridDue is the first due time after now of a sensor's schedule: its
// readings fall on a grid of the interval, counted from the Unix epoch
// and shifted by an offset within the interval taken from the sensor's
// (random) id. Thousands of sensors coming up together are spread over
// their interval, as a random first offset spread them, and the grid is
// the same across reconnects, actor restarts and process restarts: a
// random offset drawn again at each login put readings of a 1m schedule
// 14 s apart after a restart, and could push a long one's next reading
// out by nearly an interval at every deploy.
func gridDue(sc gatewayd.Schedule, now time.Time) time.Time {
	interval := int64(sc.Interval)
	offset := int64(binary.BigEndian.Uint64(sc.SensorID[8:]) % uint64(interval))
	since := now.UnixNano() - offset // > 0: intervals are at most 366 days
	return time.Unix(0, offset+(since/interval+1)*interval)
}

func (a *gatewayActor) armSchedule(s *scheduled, due time.Time) {
	s.due = due
	root, self, epoch := a.d.root, a.self, a.scheduleEpoch
	s.timer = time.AfterFunc(time.Until(due), func() { root.Send(self, &scheduleFired{epoch: epoch, s: s}) })
}

// nextDue is the first due time of a schedule after now, counting whole
// intervals from due (the one that fired): a tick that already passed is
// skipped, not made up for.
func nextDue(due time.Time, interval time.Duration, now time.Time) time.Time {
	next := due.Add(interval)
	if next.Before(now) {
		next = next.Add(now.Sub(next).Truncate(interval) + interval)
	}
	return next
}

func (a *gatewayActor) stopSchedules() {
	for id, s := range a.schedules {
		s.timer.Stop()
		delete(a.schedules, id)
	}
}

// scheduleSkipped tells the test hook that a tick queued nothing.
func (a *gatewayActor) scheduleSkipped(s *scheduled, queueFull bool) {
	if h := a.d.cfg.Hooks.ScheduleSkipped; h != nil {
		h(a.id, s.SensorID, queueFull)
	}
}

// onScheduleFired queues a scheduled reading, unless one of that sensor
// is still waiting or the queue is full, and arms the next.
func (a *gatewayActor) onScheduleFired(m *scheduleFired) {
	s := m.s
	if m.epoch != a.scheduleEpoch || a.schedules[s.SensorID] != s || a.status.State != gatewayd.StateAuthenticated {
		return
	}
	a.armSchedule(s, nextDue(s.due, s.Interval, time.Now()))
	for _, acq := range a.readings {
		if acq.r.SensorID == s.SensorID && acq.r.Trigger == gatewayd.TriggerScheduled {
			a.scheduleSkipped(s, false) // never more than one scheduled reading of a sensor waiting
			return
		}
	}
	if a.waiting() >= a.d.cfg.ReadingQueueLimit {
		a.drop(time.Now(), "scheduled reading of sensor "+strconv.FormatInt(s.Serial, 10)+" skipped: the reading queue is full")
		a.scheduleSkipped(s, true)
		return
	}
	now := time.Now()
	rate, _ := a.sensorRates.lookup(s.Serial)
	acq := &acquisition{serial: s.Serial, rateHz: rate, r: gatewayd.Reading{ID: uuid.New(), SensorID: s.SensorID,
		GatewayID: a.id, Trigger: gatewayd.TriggerScheduled, Status: gatewayd.ReadingQueued, RequestedAt: now}}
	a.d.writer.reading(gatewayd.ReadingUpdate{Reading: acq.r, Serial: acq.serial})
	a.readings = append(a.readings, acq)
	a.nextReading()
}
