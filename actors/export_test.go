package actors

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
