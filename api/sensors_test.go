package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/store"
)

// sensorsOf lists a gateway's sensors through the API, keyed by serial.
func (e *liveEnv) sensorsOf(id string) map[float64]map[string]any {
	e.t.Helper()
	r := e.do("GET", "/api/gateways/"+id+"/sensors?limit=100", nil)
	require.Equal(e.t, 200, r.status, string(r.body))
	return e.sensorsIn(r)
}

// sensorsIn keys a sensor list's answer by serial.
func (e *liveEnv) sensorsIn(r response) map[float64]map[string]any {
	out := map[float64]map[string]any{}
	for _, s := range r.json(e.t)["data"].([]any) {
		m := s.(map[string]any)
		out[m["serial"].(float64)] = m
	}
	return out
}

func (e *liveEnv) waitSensors(id string, cond func(map[float64]map[string]any) bool, what string) map[float64]map[string]any {
	e.t.Helper()
	// Generous: it returns as soon as cond holds, and under make test with
	// -p 4 a login took 1.5 s and discovery outlasted 5 s.
	return e.waitSensorsWithin(15*time.Second, id, cond, what)
}

func (e *liveEnv) waitSensorsWithin(d time.Duration, id string, cond func(map[float64]map[string]any) bool, what string) map[float64]map[string]any {
	e.t.Helper()
	var last map[float64]map[string]any
	e.pollGET("/api/gateways/"+id+"/sensors?limit=100", d, 20*time.Millisecond, what,
		func(r response) bool { last = e.sensorsIn(r); return cond(last) })
	return last
}

var sensorKeys = []string{"id", "gateway_id", "serial", "name", "part_number", "read_rate_hz", "samples", "connected",
	"equipment_id", "reading_interval", "last_temperature_c", "last_temperature_at", "first_seen_at", "last_seen_at",
	"metadata", "created_at", "updated_at"}

func TestSensorsAreDiscoveredOnLoginAndRefresh(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.SensorRefreshInterval = 200 * time.Millisecond
	e := newLiveEnv(t, cfg)
	id, sg := e.add("disc")
	e.waitState(id, "AUTHENTICATED")
	got := e.waitSensors(id, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "two default sensors")
	s1 := got[10001]
	assert.ElementsMatch(t, sensorKeys, keysOf(s1))
	assert.Equal(t, "Pump 1", s1["name"])
	assert.Equal(t, id, s1["gateway_id"])
	assert.Equal(t, "TA-CE-WS-1", s1["part_number"])
	assert.Equal(t, 25600.0, s1["read_rate_hz"])
	assert.Equal(t, 8192.0, s1["samples"])
	assert.Equal(t, true, s1["connected"])
	assert.Nil(t, s1["reading_interval"])
	assert.Equal(t, "Fan 2", got[10002]["name"])
	assertTime(t, s1["first_seen_at"], "first_seen_at")
	require.Eventually(t, func() bool { return sg.Stats().DiscoveriesAnswered >= 1 }, 10*time.Second, 5*time.Millisecond)
	// The actor subscribes once the answer is in; the writer may have
	// stored the sensors before that frame is on the wire.
	assert.Eventually(t, func() bool {
		for _, f := range sg.Stats().Frames {
			if f.Type == ctc.TypePostSubChanges {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "POST_SUB_CHANGES after discovery")

	// A sensor added on the gateway appears on the next refresh; one
	// removed is disconnected, never deleted.
	sg.AddSensor(ctc.Sensor{Serial: 777, Connected: 1, PartNum: "TA-X", ReadRate: 12800, Samples: 4096, Name: "Spindle"})
	sg.RemoveSensor(10002)
	got = e.waitSensors(id, func(m map[float64]map[string]any) bool {
		return len(m) == 3 && m[10002]["connected"] == false && m[777] != nil
	}, "refresh merged")
	assert.Equal(t, "Spindle", got[777]["name"])
	assert.Equal(t, true, got[10001]["connected"])

	// An operator's name survives discoveries.
	r := e.do("PUT", "/api/sensors/"+got[10001]["id"].(string), map[string]any{"name": "Main pump"})
	require.Equal(t, 200, r.status, string(r.body))
	sg.UpdateFaults(func(f *ctctest.Faults) {}) // nothing changes on the gateway
	before := sg.Stats().DiscoveriesAnswered
	require.Eventually(t, func() bool { return sg.Stats().DiscoveriesAnswered > before+1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "Main pump", e.sensorsOf(id)[10001]["name"])
}

func TestDiscoverEndpoint(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.CommandTimeout = 2 * time.Second // one case is a gateway that never answers: 504 after it
	e := newLiveEnv(t, cfg)
	id, sg := e.add("ep")
	e.waitState(id, "AUTHENTICATED")
	require.Eventually(t, func() bool { return sg.Stats().DiscoveriesAnswered >= 1 }, 5*time.Second, 5*time.Millisecond)

	// A discovery is on the wire (slow to answer) when a sensor is added
	// and the operator asks again: the answer is the gateway's from after
	// the asking, not the one already on its way.
	sg.UpdateFaults(func(f *ctctest.Faults) { f.DiscoveryDelay = 300 * time.Millisecond })
	asked := sg.Stats().DiscoveriesAnswered
	// The first request runs beside the test, which waits for it however
	// it ends (its answer is read after the second's).
	var earlier response
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); earlier = e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil) }()
	defer wg.Wait()
	require.Eventually(t, func() bool { return sg.Stats().DiscoveriesAnswered > asked }, 5*time.Second, time.Millisecond)
	sg.AddSensor(ctc.Sensor{Serial: 5, Connected: 1, Name: "Five", ReadRate: 25600, Samples: 8192})
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	data := r.json(t)["data"].([]any)
	require.Len(t, data, 3, "merged before the answer: every sensor of the gateway")
	assert.Equal(t, 5.0, data[0].(map[string]any)["serial"], "ordered by serial")
	wg.Wait()
	require.Equal(t, 200, earlier.status, string(earlier.body))
	sg.UpdateFaults(func(f *ctctest.Faults) { f.DiscoveryDelay = 0 })

	// A gateway that never answers: 504, the connection stays, and the next
	// command is still matched to its own answer.
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreDiscovery = true })
	r = e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 504, r.status, string(r.body))
	code, _ := r.errorBody(t)
	assert.Equal(t, "GATEWAY_TIMEOUT", code)
	assert.Equal(t, "AUTHENTICATED", e.status(id)["state"])
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreDiscovery = false })
	sg.RemoveSensor(5)
	r = e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	for _, s := range r.json(t)["data"].([]any) {
		m := s.(map[string]any)
		assert.Equal(t, m["serial"] != 5.0, m["connected"], "serial %v", m["serial"])
	}
	assert.Equal(t, 1, sg.Stats().Accepted, "never reconnected")

	// Garbage for an answer: 502, the connection stays.
	sg.UpdateFaults(func(f *ctctest.Faults) { f.GarbageDiscovery = true })
	r = e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 502, r.status, string(r.body))
	sg.UpdateFaults(func(f *ctctest.Faults) { f.GarbageDiscovery = false })
	assert.Equal(t, "AUTHENTICATED", e.status(id)["state"])

	// Not authenticated: 409.
	require.Equal(t, 202, e.do("POST", "/api/gateways/"+id+"/disconnect", nil).status)
	r = e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 409, r.status)
	code, _ = r.errorBody(t)
	assert.Equal(t, "GATEWAY_NOT_CONNECTED", code)
	assert.Equal(t, 404, e.do("POST", "/api/gateways/00000000-0000-4000-8000-000000000000/sensors/discover", nil).status)
}

func TestEmptySensorListAndTemperatures(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	email, pw := actorstest.Credentials("bare")
	sg := e.sim.Add("bare", ctctest.Config{Email: email, Password: secret(pw), Sensors: []ctc.Sensor{}})
	g := e.create("/api/gateways", map[string]any{"factory_id": e.factoryID, "gateway_id": "bare", "name": "bare",
		"url": sg.URL(), "email": email, "password": pw})
	id := g["id"].(string)
	e.waitState(id, "AUTHENTICATED")
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Empty(t, r.json(t)["data"], "an answer of [] is no sensors")

	// A temperature of a serial nobody listed inserts that sensor.
	require.Eventually(t, func() bool { return sg.PushTemperature(4242, 31.5) == 1 }, 10*time.Second, 10*time.Millisecond,
		"subscribed")
	got := e.waitSensors(id, func(m map[float64]map[string]any) bool { return m[4242] != nil }, "inserted by its temperature")
	assert.Equal(t, 31.5, got[4242]["last_temperature_c"])
	assert.Equal(t, "Sensor 4242", got[4242]["name"])
	assertTime(t, got[4242]["last_temperature_at"], "last_temperature_at")
	sg.PushTemperature(4242, 33)
	e.waitSensors(id, func(m map[float64]map[string]any) bool { return m[4242]["last_temperature_c"] == 33.0 }, "updated")

	// So does a reading start nobody asked for.
	require.Equal(t, 1, sg.PushReadingStarted(5353))
	got = e.waitSensors(id, func(m map[float64]map[string]any) bool { return m[5353] != nil }, "inserted by its reading start")
	assert.Equal(t, "Sensor 5353", got[5353]["name"])
	assert.Nil(t, got[5353]["last_temperature_c"])
}

func TestEquipmentAndAssignment(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, _ := e.add("eq")
	e.waitState(id, "AUTHENTICATED")
	sensors := e.waitSensors(id, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "discovered")
	sensor := sensors[10001]["id"].(string)

	eq := e.create("/api/equipment", map[string]any{"factory_id": e.factoryID, "name": "P-101", "kind": "pump",
		"metadata": map[string]any{"line": 4}})
	assert.ElementsMatch(t, []string{"id", "factory_id", "name", "kind", "metadata", "created_at", "updated_at"}, keysOf(eq))
	eqID := eq["id"].(string)
	other := e.factory(e.org("Elsewhere"), "Plant 2")
	foreign := e.create("/api/equipment", map[string]any{"factory_id": other, "name": "F-1"})["id"].(string)

	r := e.do("PUT", "/api/sensors/"+sensor, map[string]any{"equipment_id": eqID, "reading_interval": "15m"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, eqID, r.json(t)["equipment_id"])
	assert.Equal(t, "15m0s", r.json(t)["reading_interval"])
	r = e.do("PUT", "/api/sensors/"+sensor, map[string]any{"equipment_id": foreign})
	require.Equal(t, 422, r.status, string(r.body))
	code, fields := r.errorBody(t)
	assert.Equal(t, "INVALID_REFERENCE", code)
	assert.Equal(t, []string{"equipment_id"}, fields)
	assert.Contains(t, string(r.body), "belongs to another factory", "says why a piece of equipment that exists is refused")
	for _, bad := range []map[string]any{{"reading_interval": "30s"}, {"reading_interval": "soon"}, {"reading_interval": 60},
		{"equipment_id": "nope"}, {"serial": 5}, {"name": ""}} {
		r = e.do("PUT", "/api/sensors/"+sensor, bad)
		assert.Equal(t, 400, r.status, "%v: %s", bad, r.body)
	}
	r = e.do("GET", "/api/sensors?equipment_id="+eqID, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, 1.0, r.json(t)["pagination"].(map[string]any)["total"])
	r = e.do("GET", "/api/sensors?factory_id="+e.factoryID+"&limit=1", nil)
	assert.Equal(t, 2.0, r.json(t)["pagination"].(map[string]any)["total"])
	assert.Equal(t, 400, e.do("GET", "/api/sensors?color=red", nil).status)

	r = e.do("PUT", "/api/equipment/"+eqID, map[string]any{"name": "P-101b", "kind": nil})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Nil(t, r.json(t)["kind"])
	assert.Equal(t, 400, e.do("PUT", "/api/equipment/"+eqID, map[string]any{"factory_id": other}).status)
	require.Equal(t, 204, e.do("DELETE", "/api/equipment/"+eqID, nil).status)
	assert.Nil(t, e.do("GET", "/api/sensors/"+sensor, nil).json(t)["equipment_id"], "deleting equipment unassigns")
	r = e.do("GET", "/api/equipment/"+eqID, nil)
	assert.Equal(t, 404, r.status)
	code, _ = r.errorBody(t)
	assert.Equal(t, "EQUIPMENT_NOT_FOUND", code)

	// Deleting the gateway deletes its sensors.
	require.Equal(t, 204, e.do("DELETE", "/api/gateways/"+id, nil).status)
	r = e.do("GET", "/api/sensors/"+sensor, nil)
	assert.Equal(t, 404, r.status)
	code, _ = r.errorBody(t)
	assert.Equal(t, "SENSOR_NOT_FOUND", code)
	assert.Equal(t, 404, e.do("GET", "/api/gateways/"+id+"/sensors", nil).status)
}

// A cold start of 1,000 gateways with four sensors each: every sensor row
// is in the database, right, through the batching writer.
func TestColdStartDiscoversEverySensor(t *testing.T) {
	const n = 1000
	e := newLiveEnv(t, actorstest.FastConfig())
	for i := range n {
		name := fmt.Sprintf("cold-%04d", i)
		email, pw := actorstest.Credentials(name)
		sg := e.sim.Add(name, ctctest.Config{Email: email, Password: pw, Sensors: ctctest.DefaultSensors(4)})
		_, err := e.h.Store.CreateGateway(t.Context(), newGatewayInput(e, name, sg.URL(), email, pw))
		require.NoError(t, err)
	}
	e.restart() // a cold start: the runtime loads them all at once
	var count int
	assert.Eventually(t, func() bool {
		err := e.h.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sensors WHERE connected AND read_rate_hz = 25600
			AND samples = 8192 AND deleted_at IS NULL`).Scan(&count)
		return err == nil && count == 4*n
	}, time.Minute, 50*time.Millisecond)
	require.Equal(t, 4*n, count, "every sensor row")
	var gateways, names int
	require.NoError(t, e.h.Pool.QueryRow(t.Context(), `SELECT count(DISTINCT gateway_id), count(DISTINCT name) FROM sensors`).Scan(&gateways, &names))
	assert.Equal(t, n, gateways)
	assert.Equal(t, 4, names, "Pump 1, Fan 2, Compressor 3, Motor 4")
}

func newGatewayInput(e *liveEnv, name, url, email, pw string) store.NewGateway {
	return store.NewGateway{FactoryID: uuid.MustParse(e.factoryID), GatewayID: name, Name: name, URL: url, Email: email, Password: pw}
}

// A discovery still waiting for its gateway when the server stops
// waiting for its requests (Options.Base ends: the HTTP shutdown ran out
// of time) is answered 503 SERVICE_UNAVAILABLE, not 504 GATEWAY_TIMEOUT:
// the gateway did not time out, the server gave up. (The runtime tells
// the two apart: actors.Runtime.Discover.)
func TestDiscoverAbandonedAtShutdownIsNotAGatewayTimeout(t *testing.T) {
	base, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	e := newLiveEnvWith(t, actorstest.FastConfig(), api.Options{Base: base}) // CommandTimeout: 5 s
	id, sg := e.add("shut")
	e.waitState(id, "AUTHENTICATED")
	require.Eventually(t, func() bool { return sg.Stats().DiscoveriesAnswered >= 1 }, 5*time.Second, 5*time.Millisecond,
		"discovered at login")
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreDiscovery = true })
	asked := func() int {
		n := 0
		for _, f := range sg.Stats().Frames {
			if f.Type == ctc.TypeGetDynConnected {
				n++
			}
		}
		return n
	}
	before := asked()
	done := make(chan response, 1)
	go func() { done <- e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil) }()
	require.Eventually(t, func() bool { return asked() > before }, 5*time.Second, time.Millisecond, "the request is on the wire")
	endRequests()
	var r response
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not end with the server's wait")
	}
	require.Equal(t, 503, r.status, string(r.body))
	code, _ := r.errorBody(t)
	assert.Equal(t, "SERVICE_UNAVAILABLE", code)
}

// A discovery that gets no answer is tried again soon (three command
// timeouts), not only at the next refresh: a gateway too busy to answer
// at login would otherwise stay without its sensors for the whole
// SENSOR_REFRESH_INTERVAL (10 minutes by default).
func TestFailedDiscoveryIsRetriedSoon(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.SensorRefreshInterval = time.Hour
	cfg.CommandTimeout = time.Second // the retry comes three of them after the timeout
	e := newLiveEnv(t, cfg)
	id, sg := e.add("busy")
	e.waitState(id, "AUTHENTICATED")
	e.waitSensors(id, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "discovered at login")

	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreDiscovery = true })
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 504, r.status, string(r.body))
	sg.UpdateFaults(func(f *ctctest.Faults) { f.IgnoreDiscovery = false })
	sg.AddSensor(ctc.Sensor{Serial: 42, Connected: 1, Name: "Late", ReadRate: 25600, Samples: 8192})
	// The retry comes 3 s after the timeout; anything well short of the
	// hour between refreshes proves it, and 15 s leaves a loaded machine
	// room for the retry's own command timeout and the batched write.
	got := e.waitSensorsWithin(15*time.Second, id, func(m map[float64]map[string]any) bool { return m[42] != nil }, "found by the retry, unasked")
	assert.Equal(t, "Late", got[42]["name"])
}

// Text a gateway sends that PostgreSQL cannot hold (a NUL) is stored with
// U+FFFD in its place, and never holds up another gateway's rows: the
// writer once sent every gateway's pending rows in one statement and
// retried it whole, so one such row kept every reading and discovery of
// the fleet unwritten until a restart.
func TestGatewayTextTheDatabaseCannotHoldHarmsNoOne(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	bad, badGW := e.add("nul")
	good, goodGW := e.add("fine")
	e.waitState(bad, "AUTHENTICATED")
	e.waitState(good, "AUTHENTICATED")
	badSensors := e.waitSensors(bad, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "discovered")
	goodSensors := e.waitSensors(good, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "discovered")

	badGW.UpdateFaults(func(f *ctctest.Faults) { f.RefuseReadings, f.RefusalText = true, "busy\x00now" })
	rd := e.take(badSensors[10001]["id"].(string))
	assert.Equal(t, "FAILED", rd["status"])
	assert.Equal(t, "busy\uFFFDnow", rd["error"])
	rd = e.take(goodSensors[10001]["id"].(string))
	assert.Equal(t, "COMPLETE", rd["status"], "the other gateway's reading is stored")

	badGW.AddSensor(ctc.Sensor{Serial: 30001, Connected: 1, Name: "Bad\x00Name", PartNum: "P\x00N", ReadRate: 25600, Samples: 8192})
	r := e.do("POST", "/api/gateways/"+bad+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	got := e.sensorsOf(bad)[30001]
	require.NotNil(t, got)
	assert.Equal(t, "Bad\uFFFDName", got["name"])
	assert.Equal(t, "P\uFFFDN", got["part_number"])
	goodGW.AddSensor(ctc.Sensor{Serial: 40001, Connected: 1, Name: "Press", ReadRate: 25600, Samples: 8192})
	goodGW.Drop(1001) // logs in again and discovers again, through the writer
	e.waitSensors(good, func(m map[float64]map[string]any) bool { return m[40001] != nil }, "the other gateway's new sensor")
}

// Each filter of GET /api/sensors (API.md §7: gateway_id, equipment_id,
// factory_id) narrows the list to its own sensors, alone or together.
func TestSensorListFilters(t *testing.T) {
	e := newEnv(t, api.Options{})
	org := e.org("O")
	fa, fb := e.factory(org, "A"), e.factory(org, "B")
	ga, gb := e.gateway(fa, "GA")["id"].(string), e.gateway(fb, "GB")["id"].(string)
	now := time.Now()
	_, err := e.st.MergeDiscoveries(context.Background(), []gatewayd.Discovery{
		{GatewayID: uuid.MustParse(ga), At: now, Sensors: []gatewayd.SensorReport{{Serial: 1, Connected: true}, {Serial: 2, Connected: true}}},
		{GatewayID: uuid.MustParse(gb), At: now, Sensors: []gatewayd.SensorReport{{Serial: 3, Connected: true}}},
	})
	require.NoError(t, err)
	serials := func(query string) []float64 {
		t.Helper()
		r := e.do("GET", "/api/sensors?"+query, nil)
		require.Equal(t, 200, r.status, "%s: %s", query, r.body)
		body := r.json(t)
		out := []float64{}
		for _, s := range body["data"].([]any) {
			out = append(out, s.(map[string]any)["serial"].(float64))
		}
		assert.Equal(t, float64(len(out)), body["pagination"].(map[string]any)["total"], query)
		return out
	}
	one := serials("gateway_id=" + ga)[0]
	var sensor string
	for _, s := range e.do("GET", "/api/gateways/"+ga+"/sensors", nil).json(t)["data"].([]any) {
		if s.(map[string]any)["serial"] == one {
			sensor = s.(map[string]any)["id"].(string)
		}
	}
	eq := e.create("/api/equipment", map[string]any{"factory_id": fa, "name": "P-1"})["id"].(string)
	require.Equal(t, 200, e.do("PUT", "/api/sensors/"+sensor, map[string]any{"equipment_id": eq}).status)

	assert.ElementsMatch(t, []float64{1, 2, 3}, serials(""), "every sensor")
	assert.Equal(t, []float64{1, 2}, serials("factory_id="+fa))
	assert.Equal(t, []float64{3}, serials("factory_id="+fb))
	assert.Equal(t, []float64{1, 2}, serials("gateway_id="+ga))
	assert.Equal(t, []float64{3}, serials("gateway_id="+gb))
	assert.Equal(t, []float64{one}, serials("equipment_id="+eq))
	assert.Empty(t, serials("factory_id="+fb+"&gateway_id="+ga), "filters combine")
	assert.Empty(t, serials("factory_id="+uuid.NewString()))

	// One gateway's list takes the same filters but the gateway, which
	// its path names (API.md: "same, one gateway").
	of := func(gw, query string) []float64 {
		t.Helper()
		r := e.do("GET", "/api/gateways/"+gw+"/sensors?"+query, nil)
		require.Equal(t, 200, r.status, "%s: %s", query, r.body)
		out := []float64{}
		for _, s := range r.json(t)["data"].([]any) {
			out = append(out, s.(map[string]any)["serial"].(float64))
		}
		return out
	}
	assert.Equal(t, []float64{1, 2}, of(ga, ""))
	assert.Equal(t, []float64{one}, of(ga, "equipment_id="+eq))
	assert.Empty(t, of(gb, "equipment_id="+eq), "equipment of another gateway's sensors")
	assert.Equal(t, []float64{1, 2}, of(ga, "factory_id="+fa))
	assert.Empty(t, of(ga, "factory_id="+fb))
	r := e.do("GET", "/api/gateways/"+ga+"/sensors?gateway_id="+gb, nil)
	require.Equal(t, 400, r.status, "the path names the gateway: %s", r.body)
	r = e.do("GET", "/api/gateways/"+uuid.NewString()+"/sensors?equipment_id="+eq, nil)
	code, _ := r.errorBody(t)
	assert.Equal(t, "GATEWAY_NOT_FOUND", code, "an unknown gateway is 404 whatever the filters")
}

// reading_interval takes a duration from 1m to 366d (the OpenAPI
// document's bounds), or null to turn the schedule off.
func TestReadingIntervalBounds(t *testing.T) {
	e := newEnv(t, api.Options{})
	gw := e.gateway(e.factory(e.org("O"), "F"), "G")["id"].(string)
	_, err := e.st.MergeDiscoveries(context.Background(), []gatewayd.Discovery{{GatewayID: uuid.MustParse(gw), At: time.Now(),
		Sensors: []gatewayd.SensorReport{{Serial: 1, Connected: true}}}})
	require.NoError(t, err)
	sensor := e.do("GET", "/api/gateways/"+gw+"/sensors", nil).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	for in, out := range map[string]string{"1m": "1m0s", "366d": "8784h0m0s", "8784h": "8784h0m0s", "1h1us": "1h0m0.000001s"} {
		r := e.do("PUT", "/api/sensors/"+sensor, map[string]any{"reading_interval": in})
		require.Equal(t, 200, r.status, "%s: %s", in, r.body)
		assert.Equal(t, out, r.json(t)["reading_interval"], in)
	}
	for _, in := range []string{"59s", "367d", "8784h1s", "0s", "1h1ns", "1m0.0000005s"} { // PostgreSQL keeps microseconds
		r := e.do("PUT", "/api/sensors/"+sensor, map[string]any{"reading_interval": in})
		require.Equal(t, 400, r.status, "%s: %s", in, r.body)
		_, fields := r.errorBody(t)
		assert.Equal(t, []string{"reading_interval"}, fields, in)
	}
	r := e.do("PUT", "/api/sensors/"+sensor, map[string]any{"reading_interval": nil})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Nil(t, r.json(t)["reading_interval"], "null turns the schedule off")
}

// A sensor's last_seen_at moves each time a discovery finds it again, and
// its first_seen_at stays (API.md §7: known sensors are updated, their
// last_seen_at included).
func TestRediscoveryMovesLastSeen(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, _ := e.add("seen")
	e.waitState(id, "AUTHENTICATED")
	before := e.waitSensors(id, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "discovered")[10001]
	// The login's discovery reached the API through the writer's flush
	// (SensorFlushInterval): the next one is seen milliseconds later.
	first, err := time.Parse(time.RFC3339, before["first_seen_at"].(string))
	require.NoError(t, err)

	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	var after map[string]any
	for _, s := range r.json(t)["data"].([]any) {
		if m := s.(map[string]any); m["serial"] == 10001.0 {
			after = m
		}
	}
	require.NotNil(t, after)
	assert.Equal(t, before["first_seen_at"], after["first_seen_at"], "first seen once")
	last, err := time.Parse(time.RFC3339, after["last_seen_at"].(string))
	require.NoError(t, err)
	assert.True(t, last.After(first), "last_seen_at %s moved past first_seen_at %s", after["last_seen_at"], before["first_seen_at"])
	assert.Equal(t, after["last_seen_at"], e.do("GET", "/api/sensors/"+after["id"].(string), nil).json(t)["last_seen_at"])
}

// A gateway with gatewayd.MaxGatewaySensors sensors stored lists new
// serials: the discovery answers 200 with every stored sensor (the new
// ones are not stored), not an error for the part that was stored.
func TestDiscoverAtTheGatewaysSensorLimit(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, sg := e.add("full")
	e.waitState(id, "AUTHENTICATED")
	e.waitSensors(id, func(m map[float64]map[string]any) bool { return len(m) == 2 }, "two default sensors")
	fill := make([]gatewayd.SensorReport, gatewayd.MaxGatewaySensors-2)
	for i := range fill {
		fill[i] = gatewayd.SensorReport{Serial: int64(1_000_000 + i)}
	}
	_, err := e.st.MergeDiscoveries(context.Background(), []gatewayd.Discovery{{GatewayID: uuid.MustParse(id), At: time.Now(), Sensors: fill}})
	require.NoError(t, err)

	sg.AddSensor(ctc.Sensor{Serial: 5, Connected: 1, Name: "Five", ReadRate: 25600, Samples: 8192})
	r := e.do("POST", "/api/gateways/"+id+"/sensors/discover", nil)
	require.Equal(t, 200, r.status, string(r.body))
	data := r.json(t)["data"].([]any)
	require.Len(t, data, gatewayd.MaxGatewaySensors)
	for _, s := range data {
		assert.NotEqual(t, 5.0, s.(map[string]any)["serial"], "a new serial past the limit is not stored")
	}
	assert.Equal(t, 10001.0, data[0].(map[string]any)["serial"])
	assert.Equal(t, true, data[0].(map[string]any)["connected"], "what is known is still merged")
}
