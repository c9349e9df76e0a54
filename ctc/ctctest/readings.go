package ctctest

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/ctcgw/gatewayd/ctc"
)

// CaptureRealtime as Faults.CaptureDelay makes a capture last what the
// sensor would need: Samples/ReadRate (8192/25600 Hz = 320 ms).
const CaptureRealtime time.Duration = -1

// SetSignal makes the sensor with serial measure sig instead of
// SignalFor's signal (also for a serial the gateway does not list, for
// PushReading).
func (g *Gateway) SetSignal(serial int64, sig Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.signals == nil {
		g.signals = make(map[int64]Signal)
	}
	g.signals[serial] = sig
}

// SetSignalAfterNextReading makes sig the sensor's signal (as SetSignal)
// as soon as its next NOT_DYN_READING has been built, before that frame
// is sent: that reading still carries the signal before, and any reading
// asked for once a client has it carries sig. A test that switches the
// signal when it sees a reading delivered races the next acquisition;
// this does not.
func (g *Gateway) SetSignalAfterNextReading(serial int64, sig Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nextSignals == nil {
		g.nextSignals = make(map[int64]Signal)
	}
	g.nextSignals[serial] = sig
}

// builtReading applies a pending SetSignalAfterNextReading of serial.
func (g *Gateway) builtReading(serial int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sig, ok := g.nextSignals[serial]; ok {
		delete(g.nextSignals, serial)
		if g.signals == nil {
			g.signals = make(map[int64]Signal)
		}
		g.signals[serial] = sig
	}
}

// ResetSignal undoes SetSignal.
func (g *Gateway) ResetSignal(serial int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.signals, serial)
}

// Signal is what the sensor with serial measures: SetSignal's signal, or
// SignalFor the listed sensor (or for a default sensor with that serial).
func (g *Gateway) Signal(serial int64) Signal {
	s := g.sensorOrDefault(serial)
	g.mu.Lock()
	defer g.mu.Unlock()
	if sig, ok := g.signals[serial]; ok {
		return sig
	}
	return SignalFor(s)
}

// sensorOrDefault is the listed sensor with serial, or a default sensor
// with that serial.
func (g *Gateway) sensorOrDefault(serial int64) ctc.Sensor {
	if s, ok := g.sensor(serial); ok {
		return s
	}
	return ctc.Sensor{Serial: serial, Connected: 1, PartNum: DefaultPartNum, ReadRate: DefaultReadRate, Samples: DefaultSamples}
}

// PushReading sends one NOT_DYN_READING for serial, nobody having asked
// for it, on every subscribed socket (a gateway-triggered reading), and
// returns how many sockets it was sent on. An unlisted serial reads like
// a default sensor.
func (g *Gateway) PushReading(serial int64) int {
	s := g.sensorOrDefault(serial)
	bp := g.readingFrame(s)
	defer framePool.Put(bp)
	g.mu.Lock()
	conns := g.connList()
	g.mu.Unlock()
	sent := 0
	for _, c := range conns {
		if c.notify(*bp) {
			sent++
		}
	}
	g.record(func(st *Stats) { st.ReadingsDelivered += sent })
	return sent
}

// readingFrame builds a NOT_DYN_READING of s into a pooled buffer.
func (g *Gateway) readingFrame(s ctc.Sensor) *[]byte {
	f := g.Faults()
	enc, err := ParseEncoding(string(f.Encoding))
	if err != nil {
		enc = EncodingCSV
	}
	w := g.server.waves.get(waveKey{sig: g.Signal(s.Serial), rate: readRate(s), n: samples(s), enc: enc, malformed: f.MalformedSamples})
	bp := framePool.Get().(*[]byte)
	*bp = appendReadingFrame((*bp)[:0], g.readingID.Add(1), s.Serial, time.Now(), w)
	g.builtReading(s.Serial)
	return bp
}

// readingStarted is NOT_DYN_READING_STARTED; Error only when refused.
type readingStarted struct {
	Serial  int64
	Success bool
	Error   string `json:",omitempty"`
}

// takeReading answers TAKE_DYN_READING and starts the acquisition.
func (c *conn) takeReading(f Faults, sensors []ctc.Sensor, data json.RawMessage) {
	c.g.record(func(s *Stats) { s.ReadingsRequested++ })
	if f.IgnoreTakeReading {
		return
	}
	var req ctc.TakeReading
	_ = json.Unmarshal(data, &req)
	var sensor *ctc.Sensor
	for i := range sensors {
		if sensors[i].Serial == req.Serial {
			sensor = &sensors[i]
		}
	}
	if sensor == nil {
		c.reply(ctc.TypeRtnErr, map[string]any{"Attempt": ctc.TypeTakeDynReading, "Error": "Unknown sensor"})
		return
	}
	s := *sensor
	c.g.acquiring.Add(1) // before the answer, so a client that saw it sees this
	c.reply(ctc.TypeRtnDyn, map[string]any{})
	if !c.spawn(func() { defer c.g.acquiring.Add(-1); c.acquire(s, f) }) {
		c.g.acquiring.Add(-1)
	}
}

// acquire plays one acquisition with the faults as they were when it was
// asked for. Its notifications reach the socket only while it is
// subscribed.
func (c *conn) acquire(s ctc.Sensor, f Faults) {
	if !c.sleep(f.StartDelay) {
		return
	}
	if f.RefuseReadings {
		c.notify(frame(ctc.TypeNotDynReadingStarted, readingStarted{Serial: s.Serial, Error: cmp.Or(f.RefusalText, "Sensor busy")}))
		return
	}
	c.notify(frame(ctc.TypeNotDynReadingStarted, readingStarted{Serial: s.Serial, Success: true}))
	switch {
	case f.DropMidCapture:
		c.kill(0)
		return
	case f.NeverDeliverReadings:
		return
	}
	delay := f.CaptureDelay
	if delay < 0 {
		delay = time.Duration(float64(samples(s)) / readRate(s) * float64(time.Second))
	}
	if !c.sleep(delay) {
		return
	}
	bp := c.g.readingFrame(s)
	defer framePool.Put(bp)
	if c.notify(*bp) {
		c.g.record(func(st *Stats) { st.ReadingsDelivered++ })
	}
}
