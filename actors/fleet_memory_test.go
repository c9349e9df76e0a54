package actors_test

// (Found by an audit, helper 1, whose test this is.)

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// listPeer serves gateways that log in, answer every GET_DYN_CONNECTED
// with list and accept the subscription. The list is encoded once and
// shared by every peer, so that the peers' side costs the same per
// gateway whatever it lists.
func listPeer(t *testing.T, list string) string {
	t.Helper()
	return actorstest.ServePeer(t, func(ws *websocket.Conn) {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			answerLogin(func(m []byte) { _ = ws.WriteMessage(websocket.TextMessage, m) }, b, list)
		}
	})
}

// sensorListFrame is an RTN_DYN listing n sensors, serials from first,
// each with a read rate of its own.
func sensorListFrame(first int64, n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"Type":"RTN_DYN","From":"SERV","Target":"UI","Data":{`)
	for i := range int64(n) {
		if i > 0 {
			buf.WriteByte(',')
		}
		s := first + i
		fmt.Fprintf(&buf, `"%d":{"Serial":%d,"Connected":1,"PartNum":"P","ReadRate":%d.5,"Samples":8,"Name":"s"}`, s, s, 1000+i)
	}
	buf.WriteString(`}}`)
	return buf.Bytes()
}

// README, "What a hostile peer can and cannot do": a gateway "can make
// its own connection fail, and nothing more", and a flood "costs bounded
// memory"; the mission: "one flooding gateway can still exhaust the
// process's memory: its promise must hold against hostile peers too".
// Every per-connection bound is multiplied by the fleet: a compromised
// plant network answers at every gateway's URL.
//
// Fleets of authenticated gateways each list 4,096 sensors (the most a
// list merges, maxListedSensors), each with a rate of its own, within
// every flood limit, and then stay quiet; beside them, as many honest
// gateways list 20. The live heap is measured once each fleet's lists
// are stored: what the hostile fleet made gatewayd hold in all.
//
// Measured on the code before the fix (fleets of 100): honest ~31 KiB a
// gateway; the first hostile fleet ~1,160 KiB a gateway (~113 MiB, a
// thousand gateways ~1.1 GiB): the writer merged up to 1,000 discoveries
// in one statement whatever they listed, here all 409,600 sensors, and
// pgx keeps a pooled connection's last statement's encoded parameters
// (~100 MiB) after it ran; under -race, on a loaded machine, that
// statement ran past its 30 s timeout at every try, and none of the
// fleet's sensors was stored in 3 minutes (an honest gateway's list in
// the same flush neither). And, for each gateway, ~150 KiB more than an
// honest one's for the connection's life: the actor's map of serials to
// rates (map[int64]float64 of 4,096, ~144 KiB). The actor must know the
// serials its gateway listed and their rates: 16 bytes each, 64 KiB at
// 4,096. Fleets of 64 under -race, before: the first hostile fleet
// ~1,550 KiB a gateway (96 MiB), the second 186 KiB more than an honest
// one's; after: ~310 KiB (19 MiB, most of it bounded for the fleet), and
// the second within the noise of 64 KiB (in CI once +149 KiB: that check
// is now TestListedRatesHoldSixteenBytesASensor's).
func TestHostileFleetSensorListsCostLittleMoreThanHonest(t *testing.T) {
	if testutil.OwnProcess(t) {
		return
	}
	const n = 64
	const hostileSensors = 4096 // maxListedSensors
	cfg := actorstest.FastConfig()
	// One discovery per login, and few pings: a quiet steady state.
	cfg.SensorRefreshInterval = time.Hour
	cfg.PingInterval = 5 * time.Second
	// 64 lists of ~330 KB are decoded a few at a time, slowly under -race.
	cfg.CommandTimeout = time.Minute
	h := actorstest.New(t, tmpl, cfg)
	h.ShutdownWait = time.Minute
	peers := map[string]string{
		"/honest":  listPeer(t, string(sensorListFrame(1, 20))),
		"/hostile": listPeer(t, string(sensorListFrame(1_000_000, hostileSensors))),
	}
	ctx := context.Background()

	// fleet registers n gateways at path, waits until every one is
	// authenticated and its list is stored (the writer then holds none
	// of it), and returns the live heap's growth per gateway.
	fleets := 0
	fleet := func(path string, listed int) (perGateway int64) {
		fleets++
		before := liveHeap()
		ids := make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = addRawGateway(t, h, fmt.Sprintf("%s-%d-%d", path[1:], fleets, i), peers[path]).ID
		}
		for _, id := range ids {
			h.WaitState(id, gatewayd.StateAuthenticated, time.Minute)
		}
		var stored int
		testutil.Poll(func() bool {
			require.NoError(t, h.Pool.QueryRow(ctx, `SELECT count(*) FROM sensors WHERE gateway_id = ANY($1)`, ids).Scan(&stored))
			return stored == n*listed
		}, 5*time.Minute)
		require.Equal(t, n*listed, stored, "%s sensors stored", path)
		// The writer's last flush and the parsed lists are garbage by
		// now; the actors keep what they keep for the connection's life.
		after := liveHeap()
		for _, id := range ids {
			require.Equal(t, gatewayd.StateAuthenticated, h.Status(id).State, "%s gateways stay connected", path)
		}
		return (int64(after) - int64(before)) / n
	}
	honest := fleet("/honest", 20)
	first := fleet("/hostile", hostileSensors)
	t.Logf("live heap per gateway: honest (20 sensors) %d KiB; hostile (%d sensors) %d KiB (%d MiB in all)",
		honest>>10, hostileSensors, first>>10, first*n>>20)
	// The serials and their rates, 16 bytes a sensor, and half again. A
	// second fleet's cost per gateway (what the actors keep) is not
	// asserted here: what pgx keeps of the last statements moves it by
	// as much as the actors' map did (+149 KiB over an honest gateway's
	// in CI with the map gone, +186 with it), so
	// TestListedRatesHoldSixteenBytesASensor measures that alone.
	own := int64(hostileSensors * 16)
	// What is bounded for the fleet: the event ring, and what pgx keeps
	// of the last statement on each pooled connection (4 here, each at
	// most about maxMergeBytes of lists), with room.
	const fleetWide = 32 << 20
	assert.LessOrEqual(t, first*n, n*(honest+own*3/2)+fleetWide,
		"the first hostile fleet holds %d MiB", first*n>>20)
}
