package ctctest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/ctcgw/gatewayd/ctc"
)

// Defaults of the simulated sensors: a CTC wireless vibration sensor
// capturing 8192 samples per axis at 25.6 kHz, so one capture lasts 320 ms
// and its spectrum has 3.125 Hz bins up to 10 kHz (25600/2.56).
const (
	DefaultReadRate   = 25600        // Hz
	DefaultSamples    = 8192         // per axis
	DefaultPartNum    = "TA-CE-WS-1" // every default sensor's PartNum
	DefaultSerialBase = 10000        // default sensor k has serial DefaultSerialBase+k
)

var machineNames = []string{"Pump", "Fan", "Compressor", "Motor", "Gearbox", "Blower", "Conveyor", "Mixer"}

// DefaultSensors returns n sensors, the same for the same n on every run:
// sensor k (1…n) has serial 10000+k, name "<machine> k" with machine
// cycling through Pump, Fan, Compressor, Motor, Gearbox, Blower, Conveyor,
// Mixer, Connected 1, PartNum TA-CE-WS-1, ReadRate 25600 and Samples 8192.
// n ≤ 0 gives an empty, non-nil slice (a gateway without sensors).
func DefaultSensors(n int) []ctc.Sensor {
	out := make([]ctc.Sensor, 0, max(n, 0))
	for k := 1; k <= n; k++ {
		out = append(out, ctc.Sensor{
			Serial:    DefaultSerialBase + int64(k),
			Connected: 1,
			PartNum:   DefaultPartNum,
			ReadRate:  DefaultReadRate,
			Samples:   DefaultSamples,
			Name:      fmt.Sprintf("%s %d", machineNames[(k-1)%len(machineNames)], k),
		})
	}
	return out
}

// SimulatedTemperature is the temperature in °C that the TempEvery
// notifications report for a sensor at the tick-th push on a socket
// (0, 1, …): 20 + (serial mod 10) + 0.5·sin(2π·tick/16), rounded to 0.1.
// The first push of serial 10001 reports 21.
func SimulatedTemperature(serial int64, tick int) float64 {
	v := 20 + float64(mod(serial, 10)) + 0.5*math.Sin(2*math.Pi*float64(tick)/16)
	return math.Round(v*10) / 10
}

// mod is the non-negative remainder of a divided by m.
func mod(a, m int64) int64 { return (a%m + m) % m }

// Sensors returns the sensors the gateway lists now.
func (g *Gateway) Sensors() []ctc.Sensor {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.cfg.Sensors)
}

// AddSensor adds s, or replaces the sensor with its serial. The next
// GET_DYN_CONNECTED lists it. The sensor is kept as given (a ReadRate or
// Samples ≤ 0 reads with the defaults).
func (g *Gateway) AddSensor(s ctc.Sensor) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Copy on write: handlers read the slice without the lock.
	list := slices.Clone(g.cfg.Sensors)
	if i := slices.IndexFunc(list, func(x ctc.Sensor) bool { return x.Serial == s.Serial }); i >= 0 {
		list[i] = s
	} else {
		list = append(list, s)
	}
	g.cfg.Sensors = list
}

// RemoveSensor removes the sensor with serial and says whether there was
// one.
func (g *Gateway) RemoveSensor(serial int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.IndexFunc(g.cfg.Sensors, func(x ctc.Sensor) bool { return x.Serial == serial })
	if i < 0 {
		return false
	}
	g.cfg.Sensors = slices.Delete(slices.Clone(g.cfg.Sensors), i, i+1)
	return true
}

// sensor returns the listed sensor with serial.
func (g *Gateway) sensor(serial int64) (ctc.Sensor, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.IndexFunc(g.cfg.Sensors, func(x ctc.Sensor) bool { return x.Serial == serial })
	if i < 0 {
		return ctc.Sensor{}, false
	}
	return g.cfg.Sensors[i], true
}

// tempData is NOT_DYN_TEMP's data as gateways send it: the serial a
// string, the temperature a number (ctc.Temperature keeps what it reads
// as sent).
type tempData struct {
	Serial string  `json:"Serial"`
	Temp   float64 `json:"Temp"`
}

// PushTemperature sends one NOT_DYN_TEMP for serial on every subscribed
// socket, whether or not the gateway lists that serial, and returns how
// many sockets it was sent on (none for a temp JSON cannot carry: NaN,
// ±Inf).
func (g *Gateway) PushTemperature(serial int64, temp float64) int {
	sent := g.notifyAll(frame(ctc.TypeNotDynTemp, tempData{Serial: strconv.FormatInt(serial, 10), Temp: temp}))
	g.record(func(s *Stats) { s.TemperaturesPushed += sent })
	return sent
}

// notifyAll sends a notification on every subscribed socket and says on
// how many.
func (g *Gateway) notifyAll(b []byte) int {
	g.mu.Lock()
	conns := g.connList()
	g.mu.Unlock()
	sent := 0
	for _, c := range conns {
		if c.notify(b) {
			sent++
		}
	}
	return sent
}

// PushReadingStarted sends one NOT_DYN_READING_STARTED (Success) for
// serial on every subscribed socket, whether or not anyone asked for a
// reading of it, and returns how many sockets it was sent on.
func (g *Gateway) PushReadingStarted(serial int64) int {
	return g.notifyAll(frame(ctc.TypeNotDynReadingStarted, readingStarted{Serial: serial, Success: true}))
}

// tempLoop pushes every listed sensor's temperature every TempEvery while
// the socket is subscribed.
func (c *conn) tempLoop() {
	var (
		t     *time.Timer
		every time.Duration
	)
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for tick := 0; ; {
		if !c.keepGoing(workTemp) {
			return
		}
		f, changed := c.g.watch()
		if f.TempEvery != every {
			every = f.TempEvery
			if t == nil {
				t = time.NewTimer(every)
			} else {
				t.Reset(every)
			}
		}
		select {
		case <-c.done:
			return
		case <-changed:
		case <-t.C:
			sent := 0
			for _, s := range c.g.Sensors() {
				b := frame(ctc.TypeNotDynTemp, tempData{Serial: strconv.FormatInt(s.Serial, 10), Temp: SimulatedTemperature(s.Serial, tick)})
				if c.notify(b) {
					sent++
				}
			}
			c.g.record(func(s *Stats) { s.TemperaturesPushed += sent })
			tick++
			t.Reset(every)
		}
	}
}

// garbageDiscoveries are the answers GarbageDiscovery gives in turn: RTN_DYN
// whose Data is no sensor list.
var garbageDiscoveries = []any{"oops", map[string]any{"1": "x"}}

// discover answers GET_DYN_CONNECTED.
func (c *conn) discover(f Faults, sensors []ctc.Sensor) {
	if f.IgnoreDiscovery {
		return
	}
	var n int
	c.g.record(func(s *Stats) { n = s.DiscoveriesAnswered; s.DiscoveriesAnswered++ })
	var answer any
	switch {
	case f.GarbageDiscovery:
		answer = garbageDiscoveries[n%len(garbageDiscoveries)]
	case len(sensors) == 0:
		answer = []any{}
	default:
		byKey := make(map[string]ctc.Sensor, len(sensors))
		for _, s := range sensors {
			byKey[strconv.FormatInt(s.Serial, 10)] = s
		}
		answer = byKey
	}
	if !c.sleep(f.DiscoveryDelay) {
		return
	}
	c.reply(ctc.TypeRtnDyn, answer)
}
