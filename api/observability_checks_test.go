package api_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// Checks of the metrics and the event stream against API.md §9, under
// churn, hostile paths and a database outage. (Checked by an audit,
// helper 6, whose tests these are.)

// metricFamilies scrapes /metrics and parses it.
func metricFamilies(t *testing.T, e *liveEnv) map[string]*dto.MetricFamily {
	t.Helper()
	r := e.do("GET", "/metrics", nil)
	require.Equal(t, 200, r.status)
	fams, err := parseMetrics(string(r.body))
	require.NoError(t, err, "Prometheus text format")
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// gaugeSum is the gauges by state, and their sum.
func gaugeSum(t *testing.T, e *liveEnv) (map[string]float64, float64) {
	t.Helper()
	g := stateGauges(t, e)
	sum := 0.0
	for _, v := range g {
		sum += v
	}
	return g, sum
}

// waitGaugesMatch waits until gatewayd_gateways{state} equals the status
// list's counts and sums to want gateways.
func waitGaugesMatch(t *testing.T, e *liveEnv, want int, what string) {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		r := e.do("GET", "/api/gateways/status", nil)
		if r.status != 200 {
			last = fmt.Sprintf("status list %d", r.status)
			return false
		}
		counts := r.json(t)["counts"].(map[string]any)
		g, sum := gaugeSum(t, e)
		last = fmt.Sprintf("counts %v, gauges %v (sum %v)", counts, g, sum)
		if sum != float64(want) {
			return false
		}
		for s, c := range counts {
			if g[s] != c.(float64) {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond, "%s: the gauges never matched: %s", what, last)
}

// Every metric API.md §9 names is exposed with the type and exactly the
// label names it gives. Would catch a renamed metric or label, a counter
// exposed as a gauge or untyped, a histogram turned summary, or a label
// added (a gateway id would be one).
func TestMetricTypesAndLabelsAreTheContracts(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	id, _ := e.add("types")
	e.waitState(id, "AUTHENTICATED")
	sensors := e.waitSensors(id, func(s map[float64]map[string]any) bool { return len(s) > 0 }, "sensors")
	var sensor string
	for _, s := range sensors {
		sensor = s["id"].(string)
		break
	}
	rd := e.take(sensor)
	e.waitReading(rd["id"].(string))
	require.Eventually(t, func() bool {
		_, ok := metricFamilies(t, e)["gatewayd_readings_total"]
		return ok
	}, 10*time.Second, 10*time.Millisecond)

	fams := metricFamilies(t, e)
	want := []struct {
		name   string
		typ    dto.MetricType
		labels []string
	}{
		{"gatewayd_gateways", dto.MetricType_GAUGE, []string{"state"}},
		{"gatewayd_gateway_state_changes_total", dto.MetricType_COUNTER, []string{"to"}},
		{"gatewayd_dials_total", dto.MetricType_COUNTER, []string{"result"}},
		{"gatewayd_dial_seconds", dto.MetricType_HISTOGRAM, nil},
		{"gatewayd_logins_total", dto.MetricType_COUNTER, []string{"result"}},
		{"gatewayd_actor_restarts_total", dto.MetricType_COUNTER, nil},
		{"gatewayd_readings_total", dto.MetricType_COUNTER, []string{"status", "trigger"}},
		{"gatewayd_reading_seconds", dto.MetricType_HISTOGRAM, nil},
		{"gatewayd_http_requests_total", dto.MetricType_COUNTER, []string{"method", "route", "status"}},
		{"gatewayd_http_request_seconds", dto.MetricType_HISTOGRAM, []string{"method", "route"}},
		{"go_goroutines", dto.MetricType_GAUGE, nil},
		{"process_resident_memory_bytes", dto.MetricType_GAUGE, nil},
	}
	for _, w := range want {
		f, ok := fams[w.name]
		if !assert.True(t, ok, "%s exposed", w.name) {
			continue
		}
		assert.Equal(t, w.typ, f.GetType(), "%s type", w.name)
		require.NotEmpty(t, f.GetMetric(), w.name)
		for _, m := range f.GetMetric() {
			var names []string
			for n := range labelsOf(m) {
				names = append(names, n)
			}
			sort.Strings(names)
			assert.Equal(t, w.labels, names, "%s labels", w.name)
		}
	}
	states := map[string]bool{}
	for _, m := range fams["gatewayd_gateways"].GetMetric() {
		states[labelsOf(m)["state"]] = true
	}
	assert.Equal(t, map[string]bool{"CONNECTING": true, "CONNECTED": true, "AUTHENTICATED": true, "BACKOFF": true,
		"AUTH_FAILED": true, "DISCONNECTED": true, "FAILED": true}, states, "every state of API.md §4, and only those")
	for _, m := range fams["gatewayd_readings_total"].GetMetric() {
		l := labelsOf(m)
		assert.Contains(t, []string{"MANUAL", "SCHEDULED", "GATEWAY"}, l["trigger"])
		assert.Contains(t, []string{"COMPLETE", "FAILED"}, l["status"], "a final status only")
	}
}

// A hostile client cannot grow the HTTP metrics' label sets: random ids
// and junk in paths, upper case, trailing and doubled slashes, dot
// segments, unknown methods, random query strings and static-file names
// all land on a fixed set of series. Would catch a raw path, a method or
// a client-chosen string becoming a label value.
func TestHTTPLabelsStayBoundedUnderHostilePaths(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	base := e.listen()
	addr := strings.TrimPrefix(base, "http://")
	round := func(i int) {
		r := fmt.Sprintf("%d%x", i, rand.Uint64())
		uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, rand.Uint64()&0xffffffffffff)
		for _, p := range []string{
			"/api/gateways/" + r + "/status", "/api/gateways/" + uid + "/status", "/API/GATEWAYS/" + uid + "/STATUS/",
			"/ui/" + r + ".js", "/ui/" + r + "/../../metrics", "/" + r, "/api/" + r, "//api//gateways//" + r,
			"/api/events/" + r, "/api/gateways/" + uid + "/sensors/discover/" + r, "/api/organizations?limit=" + r,
			"/api/gateways/" + uid + "%2F" + r, "/metrics/" + r,
		} {
			e.do("GET", p, nil)
		}
		e.do("PATCH", "/api/sensors/"+uid, nil)
		e.do("OPTIONS", "/api/gateways/"+uid, nil, "Origin", "http://x.example", "Access-Control-Request-Method", "GET")
		exchange(t, addr, "M"+strings.ToUpper(r[:4])+" /api/health HTTP/1.1\r\nHost: x\r\n\r\n", 5*time.Second)
		exchange(t, addr, "GET /api/"+r+" HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 5*time.Second)
	}
	seriesNow := func() (int, []string) {
		var all []string
		for _, name := range []string{"gatewayd_http_requests_total", "gatewayd_http_request_seconds"} {
			for _, m := range metricFamilies(t, e)[name].GetMetric() {
				all = append(all, fmt.Sprint(labelsOf(m)))
			}
		}
		return len(all), all
	}
	for i := range 3 {
		round(i)
	}
	seriesNow() // its own GET /metrics 200 is counted after it answered
	before, _ := seriesNow()
	for i := 3; i < 40; i++ {
		round(i)
	}
	after, all := seriesNow()
	assert.Equal(t, before, after, "new series from new junk: %v", all)
	body := string(e.do("GET", "/metrics", nil).body)
	assert.NotContains(t, body, "0000-4000-8000", "a path's id became a label")
}

// The state gauges sum to the number of gateways and equal the status
// list's counts through a database outage: while the database refuses
// connections gateways drop and reconnect, one is refused (its
// AUTH_FAILED cannot be stored), one crashes, a reconciliation fails and
// a disconnect is refused (503); after it, a reconciliation, a delete and
// a crash past the limit. Would catch a gauge moved twice, or not at all,
// when the runtime's database writes or reads fail.
func TestStateGaugesHoldThroughADatabaseOutage(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartLimit, cfg.RestartWindow = 1, 10*time.Second
	e := newLiveEnv(t, cfg)
	const n = 5
	ids := make([]string, n)
	sims := make([]*ctctest.Gateway, n)
	for i := range n {
		ids[i], sims[i] = e.add(fmt.Sprintf("outage-%d", i))
	}
	for _, id := range ids {
		e.waitState(id, "AUTHENTICATED")
	}
	waitGaugesMatch(t, e, n, "before the outage")

	reopen := tmpl.Close(t, e.h.DBURL)
	// The runtime answers statuses without the database.
	sims[0].Drop(websocket.CloseGoingAway)
	sims[1].SetFaults(ctctest.Faults{RefuseLogins: true})
	sims[1].Drop(websocket.CloseGoingAway)
	require.Equal(t, 202, e.do("POST", "/api/debug/gateways/"+ids[2]+"/crash", nil).status)
	e.runtime.Reconcile()
	r := e.do("POST", "/api/gateways/"+ids[3]+"/disconnect", nil)
	assert.Equal(t, 503, r.status, "the desired state cannot be stored: %s", r.body)
	e.waitState(ids[1], "AUTH_FAILED")
	e.waitState(ids[0], "AUTHENTICATED")
	waitGaugesMatch(t, e, n, "during the outage")
	reopen()

	e.runtime.Reconcile()
	e.waitState(ids[2], "AUTHENTICATED")
	waitGaugesMatch(t, e, n, "after the outage")
	require.Equal(t, 204, e.do("DELETE", "/api/gateways/"+ids[4], nil).status)
	// Past the restart limit (1): FAILED.
	for range 2 {
		e.do("POST", "/api/debug/gateways/"+ids[0]+"/crash", nil)
	}
	e.runtime.Reconcile()
	waitGaugesMatch(t, e, n-1, "after a delete and crashes")
}

// Every state change a gateway goes through is one gateway.state event,
// and a gateway's events chain: the first comes from null, each comes
// from the state the one before went to, their ids increase, and the
// last goes to the state /status shows at rest, at its since. Each
// state entered is counted once in gatewayd_gateway_state_changes_total.
// A deleted gateway's gateway.deleted is its last event. Payloads have
// exactly the fields API.md §9 and the README name. Churn: crashes (past
// the limit too), drops, refusals, connects, disconnects, password PUTs,
// deletes, all at once. Would catch a state change not published (a gap
// in the chain), published twice or out of order, a counter that
// disagrees with the stream, or a payload field missing or renamed.
func TestEveryStateChangeIsOneEventInOrder(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartWindow = 2 * time.Second
	e := newLiveEnv(t, cfg)
	stream, stop := subscribe(t, e.listen(), "")
	defer stop()
	require.Eventually(t, func() bool { return e.h.Telemetry.Events.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)

	const n = 8
	ids := make([]string, n)
	sims := make([]*ctctest.Gateway, n)
	for i := range n {
		ids[i], sims[i] = e.add(fmt.Sprintf("chain-%d", i))
	}
	deleted := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				i := rand.IntN(n)
				id := ids[i]
				switch rand.IntN(8) {
				case 0, 1:
					e.do("POST", "/api/debug/gateways/"+id+"/crash", nil)
				case 2:
					e.do("POST", "/api/gateways/"+id+"/disconnect", nil)
				case 3:
					e.do("POST", "/api/gateways/"+id+"/connect", nil)
				case 4:
					sims[i].SetFaults(ctctest.Faults{RefuseLogins: rand.IntN(2) == 0})
					sims[i].Drop(websocket.CloseGoingAway)
				case 5:
					sims[i].Drop(websocket.CloseGoingAway)
				case 6:
					e.do("PUT", "/api/gateways/"+id, map[string]any{"password": secret(fmt.Sprintf("pw-%d", rand.IntN(1000)))})
				case 7:
					if w == 0 && rand.IntN(4) == 0 && i < n/2 {
						if e.do("DELETE", "/api/gateways/"+id, nil).status == 204 {
							mu.Lock()
							deleted[id] = true
							mu.Unlock()
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	// At rest: nothing connecting or backing off except what is stuck by
	// a refusal; let retries settle by making every simulator accept and
	// connecting every gateway still there.
	for i, id := range ids {
		if deleted[id] {
			continue
		}
		sims[i].SetFaults(ctctest.Faults{})
		name := fmt.Sprintf("chain-%d", i)
		require.Equal(t, 200, e.do("PUT", "/api/gateways/"+id, map[string]any{"password": secret("pw-" + name + "-Xk2")}).status)
		require.Equal(t, 202, e.do("POST", "/api/gateways/"+id+"/connect", nil).status)
	}
	for _, id := range ids {
		if !deleted[id] {
			e.waitState(id, "AUTHENTICATED")
		}
	}
	// A marker event after everything: every state event before it has
	// been published by the time it is read.
	marker := "chain-marker"
	mid, _ := e.add(marker)
	byGateway := map[string][]sse{}
	typesSeen := map[string]int{}
	for {
		ev := next(t, stream, func(sse) bool { return true }, "events up to the marker")
		id, _ := ev.Data["id"].(string)
		typesSeen[ev.Event]++
		if ev.Event == "gateway.state" && id == mid && ev.Data["to"] == "AUTHENTICATED" {
			break
		}
		byGateway[id] = append(byGateway[id], ev)
	}
	fams := metricFamilies(t, e)
	entered := map[string]float64{}
	for _, evs := range byGateway {
		for _, ev := range evs {
			if ev.Event == "gateway.state" {
				entered[ev.Data["to"].(string)]++
			}
		}
	}
	// The marker's entry into AUTHENTICATED ended the reading above.
	entered["AUTHENTICATED"]++
	counted := map[string]float64{}
	for _, m := range fams["gatewayd_gateway_state_changes_total"].GetMetric() {
		if v := m.GetCounter().GetValue(); v > 0 {
			counted[labelsOf(m)["to"]] = v
		}
	}
	assert.Equal(t, entered, counted, "gatewayd_gateway_state_changes_total{to} against the stream's gateway.state events")

	stateKeys := []string{"at", "factory_id", "from", "gateway_id", "id", "last_error", "name", "to"}
	for _, id := range ids {
		evs := byGateway[id]
		require.NotEmpty(t, evs, id)
		assert.Equal(t, "gateway.created", evs[0].Event, "%s: created first", id)
		var prev any // null before the first state
		var lastID uint64
		var lastState sse
		for i, ev := range evs {
			assert.Greater(t, ev.ID, lastID, "%s: ids increase", id)
			lastID = ev.ID
			switch ev.Event {
			case "gateway.state":
				var keys []string
				for k := range ev.Data {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				assert.Equal(t, stateKeys, keys, "gateway.state fields")
				assert.Equal(t, e.factoryID, ev.Data["factory_id"])
				assertTime(t, ev.Data["at"], "at")
				require.Equal(t, prev, ev.Data["from"], "%s: event %d (#%d) comes from the state the one before went to", id, ev.ID, i)
				assert.NotEqual(t, ev.Data["from"], ev.Data["to"], "%s: a change, not a repeat", id)
				prev, lastState = ev.Data["to"], ev
			case "gateway.created", "gateway.updated", "gateway.deleted":
				assert.Equal(t, map[string]any{"id": id, "factory_id": e.factoryID}, ev.Data, "%s fields", ev.Event)
				if ev.Event == "gateway.deleted" {
					assert.Equal(t, len(evs)-1, i, "%s: gateway.deleted is its last event", id)
				}
			case "sensor.updated":
				assert.Len(t, ev.Data, 2, "sensor.updated {id, gateway_id}: %v", ev.Data)
				assert.Equal(t, id, ev.Data["gateway_id"])
			}
		}
		if deleted[id] {
			assert.Equal(t, "gateway.deleted", evs[len(evs)-1].Event, "%s: deleted", id)
			continue
		}
		st := e.status(id)
		assert.Equal(t, st["state"], lastState.Data["to"], "%s: the last event goes to the state /status shows", id)
		assert.Equal(t, st["since"], lastState.Data["at"], "%s: at the status's since", id)
	}
	waitGaugesMatch(t, e, n+1-len(deleted), "after the churn")
}

func parseMetrics(text string) (map[string]*dto.MetricFamily, error) {
	var p expfmt.TextParser
	return p.TextToMetricFamilies(strings.NewReader(text))
}

// A client filtered to one gateway resumes with the Last-Event-ID it had
// from an unfiltered stream: it gets exactly that gateway's events since
// then (its drop and reconnect, its reading's reading.completed with
// {id, sensor_id, gateway_id, trigger, status}), none of the other
// gateway's, no reset, in order; a factory filter of another factory
// gets none of them. Would catch a filtered replay that skips or leaks
// events, or a reading event missing a field of API.md §9.
func TestFilteredResumeGetsExactlyItsGatewaysMissedEvents(t *testing.T) {
	e := newLiveEnv(t, actorstest.FastConfig())
	base := e.listen()
	a, sa := e.add("fr-a")
	b, sb := e.add("fr-b")
	e.waitState(a, "AUTHENTICATED")
	e.waitState(b, "AUTHENTICATED")
	sensors := e.waitSensors(a, func(s map[float64]map[string]any) bool { return len(s) > 0 }, "sensors")
	var sensor string
	for _, s := range sensors {
		sensor = s["id"].(string)
		break
	}
	// The newest event now: what a client that saw everything would hold.
	last := e.h.Telemetry.Events.Published() + actorstest.EventBase

	// Away: both gateways drop and come back; a reading on a.
	logins := sa.Stats().Logins
	sa.Drop(websocket.CloseGoingAway)
	sb.Drop(websocket.CloseGoingAway)
	require.Eventually(t, func() bool { return sa.Stats().Logins > logins }, 10*time.Second, 5*time.Millisecond)
	e.waitState(a, "AUTHENTICATED")
	e.waitState(b, "AUTHENTICATED")
	rd := e.take(sensor)
	require.Equal(t, "COMPLETE", rd["status"])

	// What the ring holds for a since last, seen unfiltered.
	all, stop := subscribe(t, base, "", "Last-Event-ID", fmt.Sprint(last))
	var want []uint64
	for {
		ev := next(t, all, func(sse) bool { return true }, "the unfiltered replay")
		require.NotEqual(t, "reset", ev.Event)
		gw, _ := ev.Data["id"].(string)
		if ev.Event != "gateway.state" {
			gw, _ = ev.Data["gateway_id"].(string)
		}
		if gw == a {
			want = append(want, ev.ID)
		}
		if ev.Event == "reading.completed" && ev.Data["id"] == rd["id"] {
			assert.Equal(t, map[string]any{"id": rd["id"], "sensor_id": sensor, "gateway_id": a, "trigger": "MANUAL",
				"status": "COMPLETE"}, ev.Data, "reading.completed fields")
			break
		}
	}
	stop()

	mine, stop := subscribe(t, base, "?gateway_id="+a, "Last-Event-ID", fmt.Sprint(last))
	defer stop()
	for i, id := range want {
		ev := next(t, mine, func(sse) bool { return true }, fmt.Sprintf("filtered event %d", i))
		require.NotEqual(t, "reset", ev.Event)
		require.Equal(t, id, ev.ID, "event %d of a's: in order, none skipped, none of b's", i)
	}
	require.NotEmpty(t, want)

	other, stop2 := subscribe(t, base, "?factory_id="+e.h.Factory.String(), "Last-Event-ID", fmt.Sprint(last))
	defer stop2()
	// A marker in that other factory: the first event this stream gets.
	_, err := e.h.Telemetry.Events.PublishJSON("test.marker", e.h.Factory, e.h.Factory, map[string]any{})
	require.NoError(t, err)
	ev := next(t, other, func(sse) bool { return true }, "the marker")
	assert.Equal(t, "test.marker", ev.Event, "another factory's stream got none of this factory's events")
}
