package actors

// crunch bounds how many goroutines do a reading's CPU-heavy work at
// once: decoding its frame (the reader), decoding and analysing its
// samples (the processor). In a burst of readings, ~30 readers decoding
// their frames and the processing workers were all runnable together, so
// a status request woken by the network queued behind them on both cores
// for tens of milliseconds. Waiting here parks the goroutine instead of
// queueing it, and with fewer slots than cores one core keeps only the
// light work: the API, the actors, the sockets. A nil crunch does not
// bound.
type crunch chan struct{}

func newCrunch(n int) crunch { return make(crunch, max(n, 1)) }

// do runs f once a slot is free.
func (c crunch) do(f func()) {
	if c != nil {
		c <- struct{}{}
		defer func() { <-c }()
	}
	f()
}
