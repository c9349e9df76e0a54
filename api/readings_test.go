package api_test

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
	"github.com/ctcgw/gatewayd/vibration"
)

// readingEnv is a live env with one authenticated gateway whose sensors
// are discovered.
func readingEnv(t *testing.T, cfgs ...func(*actors.Config)) (*liveEnv, string, *ctctest.Gateway, map[float64]map[string]any) {
	t.Helper()
	cfg := actorstest.FastConfig()
	for _, f := range cfgs {
		f(&cfg)
	}
	e := newLiveEnv(t, cfg)
	id, sg := e.add("rd")
	e.waitState(id, "AUTHENTICATED")
	sensors := e.waitSensors(id, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "discovered")
	require.Eventually(t, func() bool { return sg.PushTemperature(1, 20) == 1 }, 10*time.Second, 10*time.Millisecond, "subscribed")
	return e, id, sg, sensors
}

// take asks for a reading of a sensor and waits until it is final.
func (e *liveEnv) take(sensor string) map[string]any {
	e.t.Helper()
	r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(e.t, 202, r.status, string(r.body))
	queued := r.json(e.t)
	assert.Equal(e.t, "QUEUED", queued["status"])
	assert.Equal(e.t, "MANUAL", queued["trigger"])
	assert.Equal(e.t, "/api/readings/"+queued["id"].(string), r.header.Get("Location"), "where to follow it")
	return e.waitReading(queued["id"].(string))
}

func (e *liveEnv) waitReading(id string) map[string]any {
	e.t.Helper()
	var last map[string]any
	require.Eventually(e.t, func() bool {
		r := e.do("GET", "/api/readings/"+id, nil)
		if r.status != 200 {
			return false
		}
		last = r.json(e.t)
		return last["status"] == "COMPLETE" || last["status"] == "FAILED"
	}, 30*time.Second, 10*time.Millisecond, "reading %s never finished; last %v", id, last) // past FastConfig's 10 s reading timeout
	return last
}

func within(t *testing.T, want, got, rel float64, what string) {
	t.Helper()
	assert.InDelta(t, want, got, math.Abs(want)*rel, "%s: want %g, got %g", what, want, got)
}

// The summary of the simulator's documented signal matches the analytic
// values, in each of the three encodings.
func TestReadingSummaryMatchesTheSignal(t *testing.T) {
	e, _, sg, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	sig := ctctest.SignalFor(ctctest.DefaultSensors(1)[0])
	const rate, n = 25600.0, 8192
	for _, enc := range []ctctest.Encoding{ctctest.EncodingCSV, ctctest.EncodingJSON, ctctest.EncodingBase64} {
		t.Run(string(enc), func(t *testing.T) {
			sg.UpdateFaults(func(f *ctctest.Faults) { f.Encoding = enc })
			rd := e.take(sensor)
			require.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
			assert.Equal(t, rate, rd["sample_rate_hz"])
			assert.Equal(t, float64(n), rd["samples"])
			assertTime(t, rd["started_at"], "started_at")
			assertTime(t, rd["completed_at"], "completed_at")
			summary := rd["summary"].(map[string]any)
			for axis, tone := range map[string]ctctest.Tone{"x": sig.X, "y": sig.Y, "z": sig.Z} {
				s := summary[axis].(map[string]any)
				assert.Equal(t, float64(n), s["samples"], axis)
				within(t, tone.Amplitude/math.Sqrt2, s["rms"].(float64), 0.01, axis+" rms")
				within(t, tone.Amplitude*9.80665/(2*math.Pi*tone.FrequencyHz)/math.Sqrt2*1000, s["velocity_rms_mm_s"].(float64), 0.03,
					axis+" velocity")
				assert.InDelta(t, tone.FrequencyHz, s["dominant_frequency_hz"].(float64), rate/n, axis+" dominant frequency")
				within(t, math.Sqrt2, s["crest_factor"].(float64), 0.05, axis+" crest factor of a sine")
			}
			within(t, 1, summary["z"].(map[string]any)["mean"].(float64), 0.01, "z has 1 g of gravity")
		})
	}
}

// The waveform as JSON and as CSV carry the same samples; the spectrum
// peaks at the tone.
func TestWaveformAndSpectrum(t *testing.T) {
	e, _, _, sensors := readingEnv(t)
	rd := e.take(sensors[10001]["id"].(string))
	require.Equal(t, "COMPLETE", rd["status"])
	id := rd["id"].(string)
	r := e.do("GET", "/api/readings/"+id+"/waveform", nil)
	require.Equal(t, 200, r.status)
	var w struct {
		SampleRateHz float64 `json:"sample_rate_hz"`
		Unit         string
		X, Y, Z      []float64
	}
	require.NoError(t, json.Unmarshal(r.body, &w))
	assert.Equal(t, 25600.0, w.SampleRateHz)
	assert.Equal(t, "g", w.Unit)
	require.Len(t, w.X, 8192)

	// Media types are case-insensitive.
	upper := e.do("GET", "/api/readings/"+id+"/waveform", nil, "Accept", "TEXT/CSV")
	require.Equal(t, 200, upper.status)
	assert.Contains(t, upper.header.Get("Content-Type"), "text/csv")
	r = e.do("GET", "/api/readings/"+id+"/waveform", nil, "Accept", "text/csv")
	require.Equal(t, 200, r.status)
	assert.Contains(t, r.header.Get("Content-Type"), "text/csv")
	assert.Equal(t, string(r.body), string(upper.body))
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	require.Len(t, lines, 8193)
	assert.Equal(t, "t,x,y,z", lines[0])
	for _, i := range []int{0, 1, 4095, 8191} {
		f := strings.Split(lines[i+1], ",")
		require.Len(t, f, 4)
		tv, _ := strconv.ParseFloat(f[0], 64)
		assert.InDelta(t, float64(i)/25600, tv, 1e-12)
		for a, want := range []float64{w.X[i], w.Y[i], w.Z[i]} {
			got, err := strconv.ParseFloat(f[a+1], 64)
			require.NoError(t, err)
			assert.Equal(t, want, got, "row %d axis %d: CSV and JSON agree", i, a)
		}
	}

	r = e.do("GET", "/api/readings/"+id+"/spectrum?axis=y", nil)
	require.Equal(t, 200, r.status, string(r.body))
	var sp struct {
		Axis        string
		Unit        string
		FrequencyHz []float64 `json:"frequency_hz"`
		Amplitude   []float64
	}
	require.NoError(t, json.Unmarshal(r.body, &sp))
	assert.Equal(t, "y", sp.Axis)
	require.Len(t, sp.FrequencyHz, 4097)
	peak := 0
	for i, a := range sp.Amplitude {
		if a > sp.Amplitude[peak] {
			peak = i
		}
	}
	sig := ctctest.SignalFor(ctctest.DefaultSensors(1)[0])
	assert.InDelta(t, sig.Y.FrequencyHz, sp.FrequencyHz[peak], 25600.0/8192)
	within(t, sig.Y.Amplitude, sp.Amplitude[peak], 0.02, "a sine of amplitude A peaks at A")
	assert.Equal(t, 400, e.do("GET", "/api/readings/"+id+"/spectrum?axis=w", nil).status)
	assert.Equal(t, 400, e.do("GET", "/api/readings/"+id+"/spectrum?limit=5", nil).status)
	r = e.do("GET", "/api/readings/"+uuid.NewString()+"/waveform", nil)
	assert.Equal(t, 404, r.status)
	code, _ := r.errorBody(t)
	assert.Equal(t, "READING_NOT_FOUND", code)
}

// Each fault of the gateway ends the reading FAILED with the right words;
// the connection and later readings are unharmed.
func TestReadingFaults(t *testing.T) {
	// Short timeouts: two of the faults are a gateway that never answers.
	// Not too short: the other faults' answers must beat them on a loaded
	// machine (at make test -p 4 a refusal took over 1 s).
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.CommandTimeout, c.ReadingStartTimeout, c.ReadingTimeout = 2*time.Second, 2*time.Second, 4*time.Second
	})
	sensor := sensors[10001]["id"].(string)
	cases := []struct {
		fault func(*ctctest.Faults)
		want  string
	}{
		{func(f *ctctest.Faults) { f.RefuseReadings = true }, "Sensor busy"},
		{func(f *ctctest.Faults) { f.NeverDeliverReadings = true }, "no NOT_DYN_READING within 4s"},
		{func(f *ctctest.Faults) { f.MalformedSamples = true }, gatewayd.ReadingErrMalformed},
		{func(f *ctctest.Faults) { f.IgnoreTakeReading = true }, "no answer to TAKE_DYN_READING within 2s"},
		{func(f *ctctest.Faults) { f.DropMidCapture = true }, gatewayd.ReadingErrConnectionLost},
	}
	for _, tc := range cases {
		sg.SetFaults(ctctest.Faults{})
		sg.UpdateFaults(tc.fault)
		e.waitState(id, "AUTHENTICATED")
		rd := e.take(sensor)
		assert.Equal(t, "FAILED", rd["status"], tc.want)
		assert.Equal(t, tc.want, rd["error"])
		assertTime(t, rd["completed_at"], "completed_at")
		assert.Nil(t, rd["summary"])
		assert.Equal(t, 404, e.do("GET", "/api/readings/"+rd["id"].(string)+"/waveform", nil).status)
	}
	sg.SetFaults(ctctest.Faults{})
	e.waitState(id, "AUTHENTICATED")
	assert.Equal(t, "COMPLETE", e.take(sensor)["status"], "the next reading works")

	// A capture longer than READING_START_TIMEOUT (2 s) but within
	// READING_TIMEOUT (4 s) after its start completes: the wait for the
	// samples is the reading timeout's.
	sg.UpdateFaults(func(f *ctctest.Faults) { f.CaptureDelay = 2500 * time.Millisecond })
	rd := e.take(sensor)
	assert.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
}

// Past READING_QUEUE_LIMIT waiting readings the answer is 429 and nothing
// is stored; not authenticated is 409.
func TestReadingQueueLimit(t *testing.T) {
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingQueueLimit = 2
		c.ReadingTimeout = time.Minute
	})
	sensor := sensors[10001]["id"].(string)
	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = true })
	var ids []string
	for range 3 { // one running, two waiting
		r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
		require.Equal(t, 202, r.status, string(r.body))
		ids = append(ids, r.json(t)["id"].(string))
	}
	r := e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(t, 429, r.status, string(r.body))
	code, _ := r.errorBody(t)
	assert.Equal(t, "READING_QUEUE_FULL", code)
	list := e.do("GET", "/api/sensors/"+sensor+"/readings?limit=100", nil).json(t)
	assert.Equal(t, 3.0, list["pagination"].(map[string]any)["total"], "the refused request left nothing behind")

	// A lost connection fails every reading the gateway held.
	require.Equal(t, 202, e.do("POST", "/api/gateways/"+id+"/disconnect", nil).status)
	for _, rid := range ids {
		rd := e.waitReading(rid)
		assert.Equal(t, "FAILED", rd["status"])
		assert.Equal(t, gatewayd.ReadingErrConnectionLost, rd["error"])
	}
	r = e.do("POST", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(t, 409, r.status)
	assert.Equal(t, 404, e.do("POST", "/api/sensors/"+uuid.NewString()+"/readings", nil).status)

	// The list is newest first and filters by status and time.
	list = e.do("GET", "/api/sensors/"+sensor+"/readings?status=FAILED", nil).json(t)
	data := list["data"].([]any)
	require.Len(t, data, 3)
	assert.Equal(t, ids[2], data[0].(map[string]any)["id"], "newest first")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	assert.Equal(t, 0.0, e.do("GET", "/api/sensors/"+sensor+"/readings?since="+future, nil).json(t)["pagination"].(map[string]any)["total"])
	assert.Equal(t, 3.0, e.do("GET", "/api/sensors/"+sensor+"/readings?until="+future, nil).json(t)["pagination"].(map[string]any)["total"])
	lower := strings.ToLower(future) // RFC 3339 allows a lower-case t and z
	assert.Equal(t, 3.0, e.do("GET", "/api/sensors/"+sensor+"/readings?until="+lower, nil).json(t)["pagination"].(map[string]any)["total"])
	assert.Equal(t, 400, e.do("GET", "/api/sensors/"+sensor+"/readings?status=DONE", nil).status)
	assert.Equal(t, 400, e.do("GET", "/api/sensors/"+sensor+"/readings?since=yesterday", nil).status)

	// A deleted sensor's list is gone with it, readings or not; a reading
	// itself stays readable by its id.
	require.Equal(t, 204, e.do("DELETE", "/api/gateways/"+id, nil).status)
	r = e.do("GET", "/api/sensors/"+sensor+"/readings", nil)
	require.Equal(t, 404, r.status, string(r.body))
	code, _ = r.errorBody(t)
	assert.Equal(t, "SENSOR_NOT_FOUND", code)
	assert.Equal(t, 200, e.do("GET", "/api/readings/"+ids[0], nil).status)
}

// latestComplete waits until the sensor's newest reading is COMPLETE and
// returns it.
func (e *liveEnv) latestComplete(sensor string) map[string]any {
	e.t.Helper()
	var rd map[string]any
	require.Eventually(e.t, func() bool {
		list := e.do("GET", "/api/sensors/"+sensor+"/readings", nil).json(e.t)["data"].([]any)
		if len(list) == 0 {
			return false
		}
		rd = list[0].(map[string]any)
		return rd["status"] == "COMPLETE"
	}, 30*time.Second, 10*time.Millisecond, "stored")
	return rd
}

// A reading the gateway pushes unasked is stored with trigger GATEWAY.
func TestGatewayPushedReading(t *testing.T) {
	e, _, sg, sensors := readingEnv(t)
	require.Equal(t, 1, sg.PushReading(10002))
	sensor := sensors[10002]["id"].(string)
	rd := e.latestComplete(sensor)
	assert.Equal(t, "GATEWAY", rd["trigger"])
	assert.Equal(t, 8192.0, rd["samples"])
}

// A reading of a sensor whose rate the gateway's actor does not know (it
// restarted, and the gateway answers no discovery) gets the rate stored
// for the sensor: it was stored without one, with a velocity and a
// dominant frequency of 0 and no spectrum.
func TestPushedReadingGetsTheStoredRate(t *testing.T) {
	e, id, sg, sensors := readingEnv(t)
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreDiscovery = true })
	gid := uuid.MustParse(id)
	require.NoError(t, e.runtime.Crash(t.Context(), gid))
	// The restarted actor logs in again, asks for sensors in vain, then
	// subscribes once that request has timed out.
	require.Eventually(t, func() bool {
		return sg.Stats().Logins >= 2 && e.h.Status(gid).State == gatewayd.StateAuthenticated && sg.PushReading(10002) == 1
	}, 30*time.Second, 20*time.Millisecond, "pushed on the new, subscribed session")
	sensor := sensors[10002]["id"].(string)
	rd := e.latestComplete(sensor)
	assert.Equal(t, "GATEWAY", rd["trigger"])
	assert.Equal(t, sensors[10002]["read_rate_hz"], rd["sample_rate_hz"], "the sensor's stored rate")
	x := rd["summary"].(map[string]any)["x"].(map[string]any)
	assert.Greater(t, x["velocity_rms_mm_s"], 0.0)
	assert.Greater(t, x["dominant_frequency_hz"], 0.0)
}

// A reading on a schedule: set through the API (at least 1m there); the
// actor runs it, as its target says.
func TestScheduledReadings(t *testing.T) {
	e, id, _, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	r := e.do("PUT", "/api/sensors/"+sensor, map[string]any{"reading_interval": "1m"})
	require.Equal(t, 200, r.status)
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	require.Len(t, target.Schedules, 1, "the schedule travels with the gateway's target")
	assert.Equal(t, time.Minute, target.Schedules[0].Interval)
	// So does every description the store hands the runtime after a
	// change of the gateway: one without schedules stopped them all.
	up, err := e.h.Store.UpdateGateway(t.Context(), uuid.MustParse(id), store.GatewayPatch{Name: store.Some("renamed")})
	require.NoError(t, err)
	assert.Equal(t, target.Schedules, up.Target.Schedules, "after a rename")
	desired, _, err := e.h.Store.SetDesiredState(t.Context(), uuid.MustParse(id), gatewayd.DesiredConnected)
	require.NoError(t, err)
	assert.Equal(t, target.Schedules, desired.Schedules, "after a connect")

	// A minute is long for a test: the runtime is given a short interval
	// directly (the API refuses one), the way the store would hand it over.
	target.Schedules[0].Interval = time.Second
	start := time.Now()
	e.runtime.GatewayUpdated(target)
	var reqs []time.Time
	require.Eventually(t, func() bool {
		reqs = reqs[:0]
		list := e.do("GET", "/api/sensors/"+sensor+"/readings?status=COMPLETE&limit=100", nil).json(t)["data"].([]any)
		for _, x := range list {
			m := x.(map[string]any)
			assert.Equal(t, "SCHEDULED", m["trigger"])
			at, _ := time.Parse(time.RFC3339, m["requested_at"].(string))
			reqs = append(reqs, at)
		}
		return len(reqs) >= 3
	}, 30*time.Second, 20*time.Millisecond)
	first := reqs[len(reqs)-1]
	assert.Less(t, first.Sub(start), 1500*time.Millisecond, "the first within one interval (plus scheduling)")
	// Then every interval. A tick whose previous scheduled reading still
	// waits is skipped (never two of a sensor queued), which a loaded
	// machine can cause: a gap is a whole number of intervals.
	for i := 1; i < len(reqs); i++ {
		gap := reqs[i-1].Sub(reqs[i]).Seconds()
		k := math.Max(1, math.Round(gap))
		assert.InDelta(t, k, gap, 0.5, "then every interval (gap %.3fs)", gap)
	}

	// Disconnected: the schedule stops (the actor settles with no timer).
	// A reading in flight at the disconnect is written FAILED a flush
	// later (its row may not exist yet when the actor settles), so what
	// is checked is that none was requested after the settle.
	require.Equal(t, 202, e.do("POST", "/api/gateways/"+id+"/disconnect", nil).status)
	e.h.WaitSettled(uuid.MustParse(id), gatewayd.StateDisconnected)
	settled := time.Now()
	var list, unfinished []any
	if !assert.Eventually(t, func() bool {
		list = e.do("GET", "/api/sensors/"+sensor+"/readings?limit=100", nil).json(t)["data"].([]any)
		unfinished = unfinished[:0]
		for _, x := range list {
			if s := x.(map[string]any)["status"]; s == "QUEUED" || s == "RUNNING" {
				unfinished = append(unfinished, x)
			}
		}
		return len(unfinished) == 0
	}, 20*time.Second, 20*time.Millisecond) {
		t.Fatalf("readings not finished 20 s after the disconnect settled (%s): %v", settled.Format(time.RFC3339Nano), unfinished)
	}
	for _, x := range list {
		at, err := time.Parse(time.RFC3339Nano, x.(map[string]any)["requested_at"].(string))
		require.NoError(t, err)
		assert.False(t, at.After(settled), "requested at %s, after the disconnect settled", at)
	}
}

// The samples the API serves are exactly the float32 of each number the
// gateway sent, however they are packed in the database: the JSON and CSV
// waveforms to the bit, and the spectrum is the one of those samples,
// number for number. CSV sends 5 decimals in g, base64 int16 milli-g.
func TestServedSamplesAreExactlyTheGatewaysNumbers(t *testing.T) {
	e, _, sg, sensors := readingEnv(t)
	sensor := sensors[10001]["id"].(string)
	const rate, n = 25600.0, 8192
	x, y, z := ctctest.SignalFor(ctctest.DefaultSensors(1)[0]).Waveform(rate, n)
	for _, enc := range []ctctest.Encoding{ctctest.EncodingCSV, ctctest.EncodingBase64} {
		t.Run(string(enc), func(t *testing.T) {
			var sent [3][]float32
			for a, axis := range [][]float64{x, y, z} {
				for _, v := range axis {
					if enc == ctctest.EncodingBase64 {
						v = float64(int16(math.Round(v*1000))) / 1000 // as the gateway sends and gatewayd decodes
					} else {
						v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'f', 5, 64), 64)
					}
					sent[a] = append(sent[a], float32(v))
				}
			}
			sg.UpdateFaults(func(f *ctctest.Faults) { f.Encoding = enc })
			rd := e.take(sensor)
			require.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
			id := rd["id"].(string)

			r := e.do("GET", "/api/readings/"+id+"/waveform", nil)
			require.Equal(t, 200, r.status)
			var w struct{ X, Y, Z []json.Number }
			require.NoError(t, json.Unmarshal(r.body, &w))
			for a, got := range [][]json.Number{w.X, w.Y, w.Z} {
				require.Len(t, got, n)
				for i, num := range got {
					v, err := strconv.ParseFloat(string(num), 32)
					require.NoError(t, err)
					if math.Float32bits(float32(v)) != math.Float32bits(sent[a][i]) {
						t.Fatalf("JSON axis %d sample %d: served %s, sent %v", a, i, num, sent[a][i])
					}
				}
			}

			r = e.do("GET", "/api/readings/"+id+"/waveform", nil, "Accept", "text/csv")
			require.Equal(t, 200, r.status)
			lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
			require.Len(t, lines, n+1)
			for i, line := range lines[1:] {
				f := strings.Split(line, ",")
				require.Len(t, f, 4)
				for a := range 3 {
					v, err := strconv.ParseFloat(f[a+1], 32)
					require.NoError(t, err)
					if math.Float32bits(float32(v)) != math.Float32bits(sent[a][i]) {
						t.Fatalf("CSV axis %d sample %d: served %s, sent %v", a, i, f[a+1], sent[a][i])
					}
				}
			}

			var an vibration.Analyzer
			for a, axis := range []string{"x", "y", "z"} {
				r = e.do("GET", "/api/readings/"+id+"/spectrum?axis="+axis, nil)
				require.Equal(t, 200, r.status, string(r.body))
				var sp struct {
					FrequencyHz []float64 `json:"frequency_hz"`
					Amplitude   []float64
				}
				require.NoError(t, json.Unmarshal(r.body, &sp))
				values := make([]float64, n)
				for i, v := range sent[a] {
					values[i] = float64(v)
				}
				freq, amp := an.Spectrum(values, rate)
				require.Equal(t, freq, sp.FrequencyHz, axis)
				require.Equal(t, amp, sp.Amplitude, "axis %s: the spectrum of the samples sent", axis)
			}
		})
	}
}

// Scheduled readings keep to the queue's rules: never two of a sensor
// waiting (a tick whose sensor's scheduled reading has not finished is
// skipped), and never past READING_QUEUE_LIMIT (a tick finding the queue
// full is skipped; a manual reading then gets 429).
func TestScheduledReadingsKeepToTheQueue(t *testing.T) {
	type skip struct {
		sensor    uuid.UUID
		queueFull bool
	}
	var mu sync.Mutex
	skips := map[skip]int{}
	skipped := func(sensor string, queueFull bool, n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return skips[skip{uuid.MustParse(sensor), queueFull}] >= n
		}
	}
	e, id, sg, sensors := readingEnv(t, func(c *actors.Config) {
		c.ReadingQueueLimit, c.ReadingStartTimeout, c.ReadingTimeout = 1, 30*time.Second, 30*time.Second
		c.Hooks.ScheduleSkipped = func(_, sensor uuid.UUID, queueFull bool) {
			mu.Lock()
			skips[skip{sensor, queueFull}]++
			mu.Unlock()
		}
	})
	sg.UpdateFaults(func(f *ctctest.Faults) { f.NeverDeliverReadings = true }) // each reading holds the gateway
	a, b := sensors[10001]["id"].(string), sensors[10002]["id"].(string)
	target, err := e.h.Store.Target(t.Context(), uuid.MustParse(id))
	require.NoError(t, err)
	every := func(sensorIDs ...string) {
		// A new slice each time: the runtime keeps the one it was given
		// (noticed by an audit, helper 9).
		target.Schedules = nil
		for _, s := range sensorIDs {
			serial := int64(sensors[10001]["serial"].(float64))
			if s == b {
				serial = int64(sensors[10002]["serial"].(float64))
			}
			target.Schedules = append(target.Schedules, gatewayd.Schedule{SensorID: uuid.MustParse(s), Serial: serial, Interval: time.Second})
		}
		e.runtime.GatewayUpdated(target)
	}
	unfinished := func(sensor string) (scheduled, queued int) {
		for _, x := range e.do("GET", "/api/sensors/"+sensor+"/readings?limit=100", nil).json(t)["data"].([]any) {
			m := x.(map[string]any)
			if m["status"] == "QUEUED" || m["status"] == "RUNNING" {
				if m["trigger"] == "SCHEDULED" {
					scheduled++
				}
				if m["status"] == "QUEUED" {
					queued++
				}
			}
		}
		return scheduled, queued
	}

	every(a)
	require.Eventually(t, func() bool { s, _ := unfinished(a); return s == 1 }, 10*time.Second, 20*time.Millisecond)
	// Ticks of a keep finding its reading unfinished: skipped.
	require.Eventually(t, skipped(a, false, 2), 10*time.Second, 10*time.Millisecond,
		"a's ticks skipped while its scheduled reading runs")
	sa, _ := unfinished(a)
	require.Equal(t, 1, sa, "never two scheduled readings of a sensor waiting")

	// The queue full (a manual reading waits behind the running one):
	// b's ticks are skipped, and another manual reading is refused.
	r := e.do("POST", "/api/sensors/"+a+"/readings", nil)
	require.Equal(t, 202, r.status, "%s", r.body)
	every(a, b)
	require.Eventually(t, skipped(b, true, 2), 10*time.Second, 10*time.Millisecond,
		"b's ticks skipped: the queue is full")
	sb, qb := unfinished(b)
	_, qa := unfinished(a)
	require.Zero(t, sb, "no scheduled reading of b while the queue is full")
	require.Equal(t, 1, qa+qb, "READING_QUEUE_LIMIT (1) readings waiting, no more")
	assert.Equal(t, 429, e.do("POST", "/api/sensors/"+b+"/readings", nil).status)
}

// GET /api/sensors/:id/readings?status= takes each of the four statuses
// and lists only the readings in it.
func TestReadingListFiltersEveryStatus(t *testing.T) {
	e := newEnv(t, api.Options{})
	gw := e.gateway(e.factory(e.org("O"), "F"), "G")["id"].(string)
	ctx := context.Background()
	_, err := e.st.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: uuid.MustParse(gw), At: time.Now(),
		Sensors: []gatewayd.SensorReport{{Serial: 1, Connected: true}}}})
	require.NoError(t, err)
	sensor := e.do("GET", "/api/gateways/"+gw+"/sensors", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	byStatus := map[gatewayd.ReadingStatus]string{}
	var updates []gatewayd.ReadingUpdate
	for _, st := range []gatewayd.ReadingStatus{gatewayd.ReadingQueued, gatewayd.ReadingRunning, gatewayd.ReadingFailed} {
		r, s, err := e.st.CreateReading(ctx, uuid.New(), uuid.MustParse(sensor), gatewayd.TriggerManual)
		require.NoError(t, err)
		byStatus[st] = r.ID.String()
		now := time.Now()
		switch st {
		case gatewayd.ReadingRunning:
			r.Status, r.StartedAt = st, &now
		case gatewayd.ReadingFailed:
			msg := gatewayd.ReadingErrRefused
			r.Status, r.StartedAt, r.CompletedAt, r.Error = st, &now, &now, &msg
		default:
			continue
		}
		updates = append(updates, gatewayd.ReadingUpdate{Reading: r, Serial: s.Serial})
	}
	_, err = e.st.SaveReadings(ctx, updates)
	require.NoError(t, err)

	for _, st := range []gatewayd.ReadingStatus{gatewayd.ReadingQueued, gatewayd.ReadingRunning, gatewayd.ReadingComplete, gatewayd.ReadingFailed} {
		r := e.do("GET", "/api/sensors/"+sensor+"/readings?status="+string(st), nil)
		require.Equal(t, 200, r.status, "%s: %s", st, r.body)
		var ids []string
		for _, x := range r.json(t)["data"].([]any) {
			assert.Equal(t, string(st), x.(map[string]any)["status"])
			ids = append(ids, x.(map[string]any)["id"].(string))
		}
		if want, ok := byStatus[st]; ok {
			assert.Equal(t, []string{want}, ids, st)
		} else {
			assert.Empty(t, ids, st)
		}
	}
}

// README: "A reading's rate is the sensor's read rate as the gateway's
// last discovery reported it, else as stored for the sensor". A manual
// reading took the rate stored in the database instead: while the
// discovery that reported a new rate had not been written yet (sensor
// rows are batched, and held through login bursts), the reading was
// stored at the old rate, and its summary read every tone at the wrong
// frequency.
func TestManualReadingTakesTheRateOfTheLastDiscovery(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.SensorFlushInterval = time.Hour // the batched sensor writes lag, as in a login burst
	e := newLiveEnv(t, cfg)
	id, sg := e.add("rate")
	e.waitState(id, "AUTHENTICATED")
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil) // written at once
	require.Equal(t, 200, r.status, string(r.body))
	sensors := e.sensorsIn(r)
	sensor := sensors[10002]["id"].(string)
	require.Equal(t, 25600.0, sensors[10002]["read_rate_hz"])

	// The sensor is reconfigured on the gateway to 12.8 kHz; the
	// discovery after the next login reports it.
	s := ctctest.DefaultSensors(2)[1]
	s.ReadRate = 12800
	sg.AddSensor(s)
	before := sg.Stats()
	sg.Drop(1001)
	testutil.Eventually(t, func() bool {
		st := sg.Stats()
		return st.Logins > before.Logins && st.DiscoveriesAnswered > before.DiscoveriesAnswered && sg.PushTemperature(10002, 20) == 1
	}, 15*time.Second, "logged in again, sensors discovered, subscribed")
	e.waitState(id, "AUTHENTICATED")

	rd := e.take(sensor)
	require.Equal(t, "COMPLETE", rd["status"], "%v", rd["error"])
	assert.Equal(t, 12800.0, rd["sample_rate_hz"], "the rate the gateway's last discovery reported")
	want := ctctest.SignalFor(s).X.FrequencyHz
	x := rd["summary"].(map[string]any)["x"].(map[string]any)
	assert.InDelta(t, want, x["dominant_frequency_hz"].(float64), 12800.0/8192, "x's tone")
}

// API.md §8: the waveform is CSV with Accept: text/csv. A media range
// with a parameter (RFC 9110 §12.5.1), such as the charset the CSV is
// served in, got JSON; and the answer, which depends on Accept, carried
// no Vary: Accept (RFC 9110 §12.5.5), so a cache could give one client
// the other's representation. (Found by an audit, helper 2.)
func TestWaveformNegotiation(t *testing.T) {
	e, _, _, sensors := readingEnv(t)
	rd := e.take(sensors[10001]["id"].(string))
	require.Equal(t, "COMPLETE", rd["status"])
	path := "/api/readings/" + rd["id"].(string) + "/waveform"

	t.Run("a parameter on text/csv", func(t *testing.T) {
		for _, accept := range []string{"text/csv; charset=utf-8", "text/csv;header=present"} {
			r := e.do("GET", path, nil, "Accept", accept)
			require.Equal(t, 200, r.status)
			assert.Contains(t, r.header.Get("Content-Type"), "text/csv", "Accept: %s", accept)
		}
	})
	t.Run("Vary: Accept", func(t *testing.T) {
		for _, accept := range []string{"text/csv", "application/json"} {
			r := e.do("GET", path, nil, "Accept", accept)
			require.Equal(t, 200, r.status)
			vary := strings.ToLower(strings.Join(r.header.Values("Vary"), ","))
			assert.Contains(t, strings.Split(strings.ReplaceAll(vary, " ", ""), ","), "accept", "Accept: %s; Vary: %q", accept, vary)
		}
	})
}
