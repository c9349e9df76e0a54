package ctctest

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/ctc"
)

// session dials g and logs in with g's credentials.
func session(t *testing.T, g *Gateway) *websocket.Conn {
	t.Helper()
	ws := dial(t, g.URL())
	g.mu.Lock()
	email, password := g.cfg.Email, g.cfg.Password
	g.mu.Unlock()
	ok, reason := ctc.LoginOutcome(login(t, ws, email, password))
	require.True(t, ok, reason)
	return ws
}

// subscribe sends POST_SUB_CHANGES and reads its answer.
func subscribe(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	send(t, ws, ctc.TypePostSubChanges, nil)
	recvType(t, ws, ctc.TypeRtnDyn)
}

// recvType reads frames until one of type typ and returns it with the
// frames read before it.
func recvType(t *testing.T, ws *websocket.Conn, typ string) (ctc.Message, []ctc.Message) {
	t.Helper()
	var before []ctc.Message
	for {
		m := recv(t, ws)
		if m.MessageType() == typ {
			return m, before
		}
		before = append(before, m)
	}
}

// discover sends GET_DYN_CONNECTED and requires the very next frame to be
// its answer: a round trip that also proves nothing else was sent before.
func discover(t *testing.T, ws *websocket.Conn) json.RawMessage {
	t.Helper()
	send(t, ws, ctc.TypeGetDynConnected, nil)
	m := recv(t, ws)
	dyn, ok := m.(*ctc.DynResult)
	require.True(t, ok, "got %#v", m)
	return dyn.Data
}

func TestDefaultSensorsAreStable(t *testing.T) {
	t.Parallel()
	a, b := DefaultSensors(12), DefaultSensors(12)
	assert.Equal(t, a, b)
	seen := map[int64]bool{}
	names := map[string]bool{}
	for _, s := range a {
		assert.False(t, seen[s.Serial], "serial %d twice", s.Serial)
		assert.False(t, names[s.Name], "name %q twice", s.Name)
		seen[s.Serial], names[s.Name] = true, true
		assert.Equal(t, 1, s.Connected)
		assert.Equal(t, float64(DefaultReadRate), s.ReadRate)
		assert.Equal(t, DefaultSamples, s.Samples)
	}
	assert.Equal(t, ctc.Sensor{Serial: 10001, Connected: 1, PartNum: "TA-CE-WS-1", ReadRate: 25600, Samples: 8192, Name: "Pump 1"}, a[0])
	assert.Equal(t, "Fan 2", a[1].Name)
	assert.Equal(t, "Pump 9", a[8].Name)
	assert.Equal(t, a[:3], DefaultSensors(3), "a prefix of a longer list")
	assert.NotNil(t, DefaultSensors(0))
	assert.Empty(t, DefaultSensors(0))
	assert.Empty(t, DefaultSensors(-1))

	s := newServer(t)
	assert.Equal(t, DefaultSensors(2), s.Add("nil", Config{}).Sensors(), "nil config: two default sensors")
}

func TestDiscoveryAnswersAnObjectKeyedBySerial(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("obj", Config{Email: "e", Password: "p", Sensors: DefaultSensors(3)})
	ws := session(t, g)
	var byKey map[string]map[string]any
	require.NoError(t, json.Unmarshal(discover(t, ws), &byKey))
	require.Len(t, byKey, 3)
	assert.Equal(t, map[string]any{"Serial": 10002.0, "Connected": 1.0, "PartNum": "TA-CE-WS-1", "ReadRate": 25600.0, "Samples": 8192.0, "Name": "Fan 2"}, byKey["10002"])
	for key, v := range byKey {
		assert.Equal(t, key, strconv.FormatFloat(v["Serial"].(float64), 'f', -1, 64))
	}
	assert.Equal(t, 1, g.Stats().DiscoveriesAnswered)
}

func TestSensorsAddedAndRemovedWhileRunning(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	caller := DefaultSensors(1)
	g := s.Add("dyn", Config{Email: "e", Password: "p", Sensors: caller})
	ws := session(t, g)
	list, _, err := ctc.Sensors(discover(t, ws))
	require.NoError(t, err)
	require.Len(t, list, 1)

	added := ctc.Sensor{Serial: 777, Connected: 1, PartNum: "X", ReadRate: 1000, Samples: 512, Name: "Spindle"}
	g.AddSensor(added)
	list, _, err = ctc.Sensors(discover(t, ws))
	require.NoError(t, err)
	assert.Equal(t, []ctc.Listed{listed(added), listed(caller[0])}, list, "ordered by serial")
	assert.Len(t, g.Sensors(), 2)
	assert.Len(t, caller, 1, "the caller's slice is not changed")

	added.Name = "Spindle (renamed)"
	g.AddSensor(added)
	assert.Len(t, g.Sensors(), 2, "same serial replaces")
	assert.Equal(t, "Spindle (renamed)", g.Sensors()[1].Name)

	assert.True(t, g.RemoveSensor(10001))
	assert.False(t, g.RemoveSensor(10001), "already gone")
	list, _, err = ctc.Sensors(discover(t, ws))
	require.NoError(t, err)
	assert.Equal(t, []int64{777}, []int64{list[0].Serial})
	require.True(t, g.RemoveSensor(777))
	assert.JSONEq(t, `[]`, string(discover(t, ws)), "no sensors left: []")
}

func TestDiscoveryFaults(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("df", Config{Email: "e", Password: "p"})
	ws := session(t, g)

	g.SetFaults(Faults{IgnoreDiscovery: true})
	send(t, ws, ctc.TypeGetDynConnected, nil)
	send(t, ws, ctc.TypePostSubChanges, nil)
	dyn := recv(t, ws).(*ctc.DynResult)
	assert.JSONEq(t, `{}`, string(dyn.Data), "the first answer is the subscription's: discovery went unanswered")
	assert.Equal(t, 0, g.Stats().DiscoveriesAnswered)

	g.SetFaults(Faults{GarbageDiscovery: true})
	first, second := discover(t, ws), discover(t, ws)
	assert.JSONEq(t, `"oops"`, string(first))
	assert.JSONEq(t, `{"1":"x"}`, string(second))
	_, _, err := ctc.Sensors(first)
	assert.ErrorIs(t, err, ctc.ErrMalformed)
	_, _, err = ctc.Sensors(second)
	assert.ErrorIs(t, err, ctc.ErrMalformed)
	assert.Equal(t, 2, g.Stats().DiscoveriesAnswered)

	g.SetFaults(Faults{})
	list, _, err := ctc.Sensors(discover(t, ws))
	require.NoError(t, err)
	assert.Len(t, list, 2, "healed")
}

func TestSimulatedTemperature(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 21.0, SimulatedTemperature(10001, 0))
	assert.Equal(t, 21.5, SimulatedTemperature(10001, 4))
	assert.Equal(t, 21.0, SimulatedTemperature(10001, 8))
	assert.Equal(t, 20.5, SimulatedTemperature(10001, 12))
	assert.Equal(t, 29.0, SimulatedTemperature(10009, 16))
	assert.Equal(t, 27.0, SimulatedTemperature(-3, 0), "non-negative remainder: -3 mod 10 = 7")
}

func TestTemperaturesOnlyWhileSubscribed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("temp", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{TempEvery: 5 * time.Millisecond})
	ws := session(t, g)
	assert.False(t, workerRunning(g, workTemp), "no pushes before subscribing")
	discover(t, ws)

	subscribe(t, ws)
	temps := map[string]string{}
	for len(temps) < 2 {
		m := recv(t, ws).(*ctc.Temperature)
		temps[string(m.Serial)] = string(m.Temp)
	}
	assert.Equal(t, map[string]string{"10001": "21", "10002": "22"}, temps, "first tick")
	require.Eventually(t, func() bool { return g.Stats().TemperaturesPushed >= 6 }, 10*time.Second, time.Millisecond, "keeps pushing")

	send(t, ws, ctc.TypePostUnsubChanges, nil)
	_, before := recvType(t, ws, ctc.TypeRtnDyn)
	for _, m := range before {
		assert.IsType(t, &ctc.Temperature{}, m)
	}
	// Nothing is written after the answer to POST_UNSUB_CHANGES.
	discover(t, ws)
	require.Eventually(t, func() bool { return !workerRunning(g, workTemp) }, 10*time.Second, time.Millisecond, "pusher ends")
	discover(t, ws)

	// Subscribing again starts it again; switching it off stops it.
	subscribe(t, ws)
	_, _ = recvType(t, ws, ctc.TypeNotDynTemp)
	g.SetFaults(Faults{})
	require.Eventually(t, func() bool { return !workerRunning(g, workTemp) }, 10*time.Second, time.Millisecond, "switched off")
	send(t, ws, ctc.TypeGetDynConnected, nil)
	_, before = recvType(t, ws, ctc.TypeRtnDyn)
	for _, m := range before {
		assert.IsType(t, &ctc.Temperature{}, m, "pushed before the switch")
	}
	discover(t, ws)
}

func TestTempEveryChangeTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("slow", Config{Email: "e", Password: "p"})
	g.SetFaults(Faults{TempEvery: time.Hour})
	ws := session(t, g)
	subscribe(t, ws)
	require.Eventually(t, func() bool { return workerRunning(g, workTemp) }, 10*time.Second, time.Millisecond)
	g.SetFaults(Faults{TempEvery: time.Millisecond})
	_, _ = recvType(t, ws, ctc.TypeNotDynTemp)
}

func TestPushTemperature(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("push", Config{Email: "e", Password: "p"})
	sub, unsub := session(t, g), session(t, g)
	subscribe(t, sub)

	assert.Equal(t, 1, g.PushTemperature(999, 30.5), "one subscribed socket")
	m := recv(t, sub).(*ctc.Temperature)
	assert.Equal(t, ctc.Temperature{Serial: "999", Temp: ctc.Scalar("30.5")}, *m, "a serial the gateway does not list")
	assert.Equal(t, int64(1), g.withheld.Load(), "not sent on the other socket")
	discover(t, unsub)
	assert.Equal(t, 1, g.Stats().TemperaturesPushed)
}

func TestPushTemperatureThatJSONCannotCarry(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	g := s.Add("nan", Config{Email: "e", Password: "p"})
	ws := session(t, g)
	subscribe(t, ws)
	assert.Zero(t, g.PushTemperature(10001, math.NaN()))
	discover(t, ws)
}

// listed is s as the decoder reads it back.
func listed(s ctc.Sensor) ctc.Listed {
	rate, samples := s.ReadRate, int64(s.Samples)
	return ctc.Listed{Serial: s.Serial, Connected: s.Connected != 0, PartNum: s.PartNum, ReadRate: &rate, Samples: &samples, Name: s.Name}
}
