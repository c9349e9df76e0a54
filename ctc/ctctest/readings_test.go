package ctctest

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

// decodeAxis decodes one axis in the given encoding, as gatewayd would.
func decodeAxis(t *testing.T, enc Encoding, s string) []float64 {
	t.Helper()
	switch enc {
	case EncodingJSON:
		var v []float64
		require.NoError(t, json.Unmarshal([]byte(s), &v))
		return v
	case EncodingBase64:
		raw, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		require.Zero(t, len(raw)%2)
		v := make([]float64, len(raw)/2)
		for i := range v {
			v[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:]))) / 1000
		}
		return v
	default:
		parts := strings.Split(s, ",")
		v := make([]float64, len(parts))
		for i, p := range parts {
			f, err := strconv.ParseFloat(p, 64)
			require.NoError(t, err)
			v[i] = f
		}
		return v
	}
}

// takeReading asks for a reading of serial on a subscribed socket and
// returns its notifications.
func takeReading(t *testing.T, ws *websocket.Conn, serial int64) (started map[string]any, reading *ctc.Reading) {
	t.Helper()
	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: serial})
	dyn := recv(t, ws).(*ctc.DynResult)
	assert.JSONEq(t, `{}`, string(dyn.Data))
	started = recvStarted(t, ws)
	return started, recv(t, ws).(*ctc.Reading)
}

// recvStarted reads NOT_DYN_READING_STARTED's Data as JSON, to see fields
// ctc.ReadingStarted does not have.
func recvStarted(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, b, err := ws.ReadMessage()
	require.NoError(t, err)
	var env struct {
		Type string
		Data map[string]any
	}
	require.NoError(t, json.Unmarshal(b, &env), string(b))
	require.Equal(t, ctc.TypeNotDynReadingStarted, env.Type, string(b))
	return env.Data
}

func stats(xs []float64) (mean, rms, peak float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		rms += (x - mean) * (x - mean)
		peak = max(peak, math.Abs(x-mean))
	}
	return mean, math.Sqrt(rms / float64(len(xs))), peak
}

func TestSignalFor(t *testing.T) {
	t.Parallel()
	assert.Equal(t, Signal{
		X: Tone{0.5, 50}, Y: Tone{0.3, 100}, Z: Tone{0.2, 25},
		Offset: [3]float64{0, 0, 1}, Noise: 0.005, Seed: 10001,
	}, SignalFor(DefaultSensors(1)[0]))
	for _, s := range DefaultSensors(16) {
		sig := SignalFor(s)
		for _, tone := range []Tone{sig.X, sig.Y, sig.Z} {
			assert.GreaterOrEqual(t, tone.FrequencyHz, 10.0)
			assert.LessOrEqual(t, tone.FrequencyHz, 1000.0)
			assert.Zero(t, math.Mod(tone.FrequencyHz, 25), "a whole FFT bin")
		}
	}
	assert.Equal(t, 400.0, SignalFor(ctc.Sensor{Serial: 10008}).X.FrequencyHz, "k = 8")
	assert.Equal(t, 50.0, SignalFor(ctc.Sensor{Serial: 10009}).X.FrequencyHz, "k wraps to 1")
	slow := SignalFor(ctc.Sensor{Serial: 10008, ReadRate: 1000})
	assert.Equal(t, []float64{200, 200, 200}, []float64{slow.X.FrequencyHz, slow.Y.FrequencyHz, slow.Z.FrequencyHz},
		"halved below 1000/2.56 Hz")
}

func TestWaveformIsTheDocumentedSignal(t *testing.T) {
	t.Parallel()
	sig := SignalFor(ctc.Sensor{Serial: 10002})
	x, y, z := sig.Waveform(DefaultReadRate, DefaultSamples)
	for _, c := range []struct {
		v              []float64
		mean, rms, amp float64
	}{{x, 0, 0.5 / math.Sqrt2, 0.5}, {y, 0, 0.3 / math.Sqrt2, 0.3}, {z, 1, 0.2 / math.Sqrt2, 0.2}} {
		require.Len(t, c.v, DefaultSamples)
		mean, rms, peak := stats(c.v)
		assert.InDelta(t, c.mean, mean, 0.0002)
		assert.InDelta(t, c.rms, rms, 0.0002)
		assert.InDelta(t, c.amp, peak, 0.0051)
	}
	x2, _, _ := sig.Waveform(DefaultReadRate, DefaultSamples)
	assert.Equal(t, x, x2, "reproducible")
	other, _, _ := SignalFor(ctc.Sensor{Serial: 10010}).Waveform(DefaultReadRate, DefaultSamples)
	assert.NotEqual(t, x, other, "same tones (k = 2), other noise")
	clean := sig
	clean.Noise = 0
	cx, _, _ := clean.Waveform(DefaultReadRate, DefaultSamples)
	assert.InDelta(t, 0.5, cx[64], 1e-12, "a quarter period of 50·2 Hz at 25.6 kHz")
}

func TestReadingInEachEncodingIsTheSignal(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("enc", Config{Email: "e", Password: "p"})
	ws := session(t, g)
	subscribe(t, ws)
	want := g.Signal(10002)
	wx, wy, wz := want.Waveform(DefaultReadRate, DefaultSamples)
	for i, c := range []struct {
		enc Encoding
		tol float64
	}{{"", 5.1e-6}, {EncodingCSV, 5.1e-6}, {EncodingJSON, 5.1e-6}, {EncodingBase64, 5.1e-4}} {
		t.Run(cmp.Or(string(c.enc), "zero"), func(t *testing.T) {
			g.SetFaults(Faults{Encoding: c.enc}) // changed while the gateway runs
			started, r := takeReading(t, ws, 10002)
			assert.Equal(t, map[string]any{"Serial": 10002.0, "Success": true}, started)
			assert.Equal(t, ctc.Text("10002"), r.Serial)
			assert.Equal(t, strconv.Itoa(i+1), string(r.ID))
			at, err := time.Parse(time.DateTime, r.Time)
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().UTC(), at, 5*time.Second)
			if c.enc == EncodingJSON {
				assert.True(t, strings.HasPrefix(r.X, "["))
			}
			for _, axis := range []struct {
				got  string
				want []float64
			}{{r.X, wx}, {r.Y, wy}, {r.Z, wz}} {
				got := decodeAxis(t, c.enc, axis.got)
				require.Len(t, got, DefaultSamples)
				assert.InDeltaSlice(t, axis.want, got, c.tol)
			}
		})
	}
	st := g.Stats()
	assert.Equal(t, 4, st.ReadingsRequested)
	assert.Equal(t, 4, st.ReadingsDelivered)
}

func TestReadingOfAnAddedSensorWithItsOwnSignal(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("own", Config{Email: "e", Password: "p", Sensors: []ctc.Sensor{}})
	ws := session(t, g)
	subscribe(t, ws)
	g.AddSensor(ctc.Sensor{Serial: 42, Connected: 1, ReadRate: 1000, Samples: 100, Name: "small"})
	g.SetSignal(42, Signal{X: Tone{Amplitude: 1, FrequencyHz: 10}, Offset: [3]float64{0, 2, -2}})
	_, r := takeReading(t, ws, 42)
	x, y, z := decodeAxis(t, EncodingCSV, r.X), decodeAxis(t, EncodingCSV, r.Y), decodeAxis(t, EncodingCSV, r.Z)
	require.Len(t, x, 100)
	assert.Equal(t, 1.0, x[25], "sin(2π·10·25/1000)")
	assert.Equal(t, -1.0, x[75])
	assert.Equal(t, 2.0, y[0])
	assert.Equal(t, -2.0, z[99])

	g.ResetSignal(42)
	assert.Equal(t, SignalFor(ctc.Sensor{Serial: 42, ReadRate: 1000}), g.Signal(42))
	assert.Equal(t, SignalFor(ctc.Sensor{Serial: 7}), g.Signal(7), "an unlisted serial: a default sensor")
}

func TestUnknownSensorReading(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("unk", Config{Email: "e", Password: "p"})
	ws := session(t, g)
	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 31337})
	e := recv(t, ws).(*ctc.ErrorResult)
	assert.Equal(t, ctc.ErrorResult{Attempt: ctc.Scalar(`"` + ctc.TypeTakeDynReading + `"`), Error: "Unknown sensor"}, *e)
	assert.Equal(t, 1, g.Stats().ReadingsRequested)
}

func TestReadingNotificationsNeedASubscription(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("quiet", Config{Email: "e", Password: "p"})
	ws := session(t, g)
	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
	assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
	require.Eventually(t, func() bool { return g.acquiring.Load() == 0 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, int64(2), g.withheld.Load(), "STARTED and the reading withheld")
	discover(t, ws)
	assert.Equal(t, 0, g.Stats().ReadingsDelivered)
}

func TestReadingFaults(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("rf", Config{Email: "e", Password: "p"})

	// noneInFlight waits until no acquisition runs, then proves with a
	// round trip that nothing more came.
	noneInFlight := func(t *testing.T, ws *websocket.Conn) {
		t.Helper()
		require.Eventually(t, func() bool { return g.acquiring.Load() == 0 }, 10*time.Second, time.Millisecond)
		discover(t, ws)
	}

	t.Run("refused", func(t *testing.T) {
		g.SetFaults(Faults{RefuseReadings: true})
		ws := session(t, g)
		subscribe(t, ws)
		send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
		assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
		assert.Equal(t, map[string]any{"Serial": 10001.0, "Success": false, "Error": "Sensor busy"}, recvStarted(t, ws))
		noneInFlight(t, ws)
	})
	t.Run("never delivered", func(t *testing.T) {
		g.SetFaults(Faults{NeverDeliverReadings: true})
		ws := session(t, g)
		subscribe(t, ws)
		before := g.Stats().ReadingsDelivered
		send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
		assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
		assert.Equal(t, true, recvStarted(t, ws)["Success"])
		noneInFlight(t, ws)
		assert.Equal(t, before, g.Stats().ReadingsDelivered)
	})
	t.Run("ignored", func(t *testing.T) {
		g.SetFaults(Faults{IgnoreTakeReading: true})
		ws := session(t, g)
		subscribe(t, ws)
		before := g.Stats().ReadingsRequested
		send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
		list, _, err := ctc.Sensors(discover(t, ws))
		require.NoError(t, err)
		assert.Len(t, list, 2, "the next answer is the discovery's")
		assert.Equal(t, before+1, g.Stats().ReadingsRequested)
		assert.Zero(t, g.acquiring.Load())
	})
	t.Run("dropped mid-capture", func(t *testing.T) {
		g.SetFaults(Faults{DropMidCapture: true})
		ws := session(t, g)
		subscribe(t, ws)
		send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
		assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
		assert.Equal(t, true, recvStarted(t, ws)["Success"])
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(2*time.Second)))
		_, _, err := ws.ReadMessage()
		require.Error(t, err)
		assert.True(t, websocket.IsCloseError(err, websocket.CloseAbnormalClosure), "abrupt, no close frame: %v", err)
		require.Eventually(t, func() bool { return g.Stats().Open == 0 }, 10*time.Second, time.Millisecond)
	})
	for _, enc := range []Encoding{EncodingCSV, EncodingJSON, EncodingBase64} {
		t.Run("malformed "+string(enc), func(t *testing.T) {
			g.SetFaults(Faults{MalformedSamples: true, Encoding: enc})
			ws := session(t, g)
			subscribe(t, ws)
			_, r := takeReading(t, ws, 10001)
			x, y := decodeAxis(t, enc, r.X), decodeAxis(t, enc, r.Y)
			assert.Len(t, x, DefaultSamples)
			assert.Len(t, y, DefaultSamples-1, "unequal axes")
			switch enc {
			case EncodingCSV:
				assert.Equal(t, "x", strings.Split(r.Z, ",")[1])
			case EncodingJSON:
				var z []any
				require.NoError(t, json.Unmarshal([]byte(r.Z), &z))
				assert.Equal(t, "x", z[1])
				var nums []float64
				assert.Error(t, json.Unmarshal([]byte(r.Z), &nums))
			case EncodingBase64:
				raw, err := base64.StdEncoding.DecodeString(r.Z)
				require.NoError(t, err)
				assert.Equal(t, 1, len(raw)%2, "a dangling byte")
			}
		})
	}
}

func TestPushReading(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("pushr", Config{Email: "e", Password: "p"})
	sub, unsub := session(t, g), session(t, g)
	subscribe(t, sub)
	assert.Equal(t, 1, g.PushReading(10002))
	r := recv(t, sub).(*ctc.Reading)
	assert.Equal(t, ctc.Text("10002"), r.Serial, "no STARTED before it")
	assert.Len(t, decodeAxis(t, EncodingCSV, r.Z), DefaultSamples)

	assert.Equal(t, 1, g.PushReading(555), "a serial the gateway does not list")
	r2 := recv(t, sub).(*ctc.Reading)
	assert.Equal(t, ctc.Text("555"), r2.Serial)
	assert.NotEqual(t, r.ID, r2.ID)
	assert.Equal(t, int64(2), g.withheld.Load(), "not on the unsubscribed socket")
	discover(t, unsub)
	assert.Equal(t, 2, g.Stats().ReadingsDelivered)
	assert.Equal(t, 0, g.Stats().ReadingsRequested)
}

func TestRealtimeCapture(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("rt", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{StartDelay: 20 * time.Millisecond, CaptureDelay: CaptureRealtime})
	ws := session(t, g)
	subscribe(t, ws)
	start := time.Now()
	_, r := takeReading(t, ws, 10001)
	assert.GreaterOrEqual(t, time.Since(start), 340*time.Millisecond, "20ms + 8192/25600 s")
	assert.Equal(t, ctc.Text("10001"), r.Serial)
}

// settled waits until the process is back to at most base goroutines. It
// polls in the test's goroutine: require.Eventually would add its own.
func settled(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, before: %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseEndsReadingsInFlight(t *testing.T) {
	t.Parallel()
	base := runtime.NumGoroutine()
	s, err := NewServer("127.0.0.1:0")
	require.NoError(t, err)
	g := s.Add("slow", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{CaptureDelay: time.Hour, TempEvery: time.Hour, Garbage: true, GarbageEvery: time.Hour, DropAfter: time.Hour})
	ws := session(t, g)
	subscribe(t, ws)
	send(t, ws, ctc.TypeTakeDynReading, ctc.TakeReading{Serial: 10001})
	assert.IsType(t, &ctc.DynResult{}, recv(t, ws))
	recvStarted(t, ws)
	require.Equal(t, int64(1), g.acquiring.Load())
	s.Close()
	_ = ws.Close()
	assert.Zero(t, g.acquiring.Load())
	settled(t, base)
}
