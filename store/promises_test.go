package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// byUUID orders ids as PostgreSQL orders uuids (byte by byte, which is
// the order of their canonical text).
func byUUID(ids []uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// API.md §3: lists are ordered by name, then id, and the database does the
// paging. Rows whose names tie are paged by id too: walking a list one row
// at a time, or three at a time, neither repeats nor skips a row, whether
// a page is read alone or with other pages in one statement.
func TestPagingThroughTiedNamesIsByID(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	const n = 9
	ids := make([]uuid.UUID, n)
	for i := range n {
		g := newGateway(fx.factory.ID, fmt.Sprintf("TIE-%d", i))
		g.Name = "Same name"
		created, err := s.CreateGateway(ctx, g)
		require.NoError(t, err)
		ids[i] = created.ID
	}
	want := byUUID(ids)

	var alone []uuid.UUID
	for off := range n {
		page, total, err := s.ListGateways(ctx, &fx.factory.ID, store.Page{Limit: 1, Offset: off})
		require.NoError(t, err)
		require.Len(t, page, 1)
		assert.Equal(t, n, total)
		alone = append(alone, page[0].ID)
	}
	assert.Equal(t, want, alone, "pages of one, read alone")

	var asks []store.ListAsk
	for off := 0; off < n; off += 3 {
		asks = append(asks, store.ListAsk{Factory: &fx.factory.ID, Page: store.Page{Limit: 3, Offset: off}})
	}
	pages, _, err := store.GatewayPages(ctx, s, asks...)
	require.NoError(t, err)
	var shared []uuid.UUID
	for _, p := range pages {
		for _, g := range p {
			shared = append(shared, g.ID)
		}
	}
	assert.Equal(t, want, shared, "pages of three, read in one statement")
}

// API.md §2: a deleted factory is gone. Deleting it again is ErrNotFound
// (404 FACTORY_NOT_FOUND), not a second, silent success.
func TestDeletingADeletedFactoryIsNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	_, err := s.DeleteFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	_, err = s.DeleteFactory(ctx, fx.factory.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.DeleteFactory(ctx, uuid.New())
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

// API.md §3/§7: equipment names a factory that must exist and not be
// deleted, else 422 INVALID_REFERENCE.
func TestEquipmentOfADeletedFactoryIsAnInvalidReference(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	_, err := s.DeleteFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	_, err = s.CreateEquipment(ctx, store.NewEquipment{FactoryID: fx.factory.ID, Name: "late"})
	assert.ErrorIs(t, err, gatewayd.ErrInvalidReference)
	_, total, err := s.ListEquipment(ctx, &fx.factory.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total, "nothing was inserted under the deleted factory")
}

// A cascade returns the gateways it deleted, for their actors to be
// stopped and their gateway.deleted events: not those deleted earlier on
// their own, which already had theirs.
func TestCascadeReturnsOnlyTheGatewaysItDeleted(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	early, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "EARLY"))
	require.NoError(t, err)
	live, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "LIVE"))
	require.NoError(t, err)
	_, err = s.DeleteGateway(ctx, early.ID)
	require.NoError(t, err)
	gone, err := s.DeleteFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{live.ID}, refIDs(gone), "factory cascade")

	other := setup(t, s)
	early, err = s.CreateGateway(ctx, newGateway(other.factory.ID, "EARLY-2"))
	require.NoError(t, err)
	live, err = s.CreateGateway(ctx, newGateway(other.factory.ID, "LIVE-2"))
	require.NoError(t, err)
	_, err = s.DeleteGateway(ctx, early.ID)
	require.NoError(t, err)
	gone, err = s.DeleteOrganization(ctx, other.org.ID)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{live.ID}, refIDs(gone), "organization cascade")
}

// EquipmentPatch: a set nil Kind clears it (PUT {"kind": null}).
func TestEquipmentKindNullClearsIt(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	kind := "pump"
	eq, err := s.CreateEquipment(ctx, store.NewEquipment{FactoryID: fx.factory.ID, Name: "P-1", Kind: &kind})
	require.NoError(t, err)
	up, err := s.UpdateEquipment(ctx, eq.ID, store.EquipmentPatch{Name: store.Some("P-2")})
	require.NoError(t, err)
	require.NotNil(t, up.Kind, "a patch without kind leaves it")
	assert.Equal(t, "pump", *up.Kind)
	up, err = s.UpdateEquipment(ctx, eq.ID, store.EquipmentPatch{Kind: store.Some[*string](nil)})
	require.NoError(t, err)
	assert.Nil(t, up.Kind, "a set nil kind clears it")
	got, err := s.GetEquipment(ctx, eq.ID)
	require.NoError(t, err)
	assert.Nil(t, got.Kind)
	assert.Equal(t, "P-2", got.Name)
}

// DeleteEquipment returns the live sensors it unassigned, for their
// sensor.updated events: a sensor deleted with its gateway gets none.
func TestDeletingEquipmentReportsOnlyLiveSensors(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	eq, err := s.CreateEquipment(ctx, store.NewEquipment{FactoryID: fx.factory.ID, Name: "P-1"})
	require.NoError(t, err)
	var assigned []uuid.UUID
	for _, gid := range []string{"KEEP", "DROP"} {
		g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, gid))
		require.NoError(t, err)
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
			Sensors: []gatewayd.SensorReport{report(7, "S")}}})))
		sensor := sensorsBySerial(t, s, g.ID)[7]
		_, err = s.UpdateSensor(ctx, sensor.ID, store.SensorPatch{EquipmentID: store.Some(&eq.ID)})
		require.NoError(t, err)
		assigned = append(assigned, sensor.ID)
		if gid == "DROP" {
			_, err = s.DeleteGateway(ctx, g.ID)
			require.NoError(t, err)
		}
	}
	refs, err := s.DeleteEquipment(ctx, eq.ID)
	require.NoError(t, err)
	var got []uuid.UUID
	for _, r := range refs {
		got = append(got, r.ID)
	}
	assert.Equal(t, []uuid.UUID{assigned[0]}, got, "only the live sensor")
}

// API.md §4: connect and disconnect of a deleted gateway are 404; its
// desired state cannot be stored.
func TestDesiredStateOfADeletedGatewayIsNotFound(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "GONE")
	_, err := s.DeleteGateway(ctx, g.ID)
	require.NoError(t, err)
	_, _, err = s.SetDesiredState(ctx, g.ID, gatewayd.DesiredDisconnected)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, _, err = s.SetDesiredState(ctx, uuid.New(), gatewayd.DesiredConnected)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

// twoGatewaysWithSensors makes two gateways of factory, with the given
// serials each, and returns them.
func twoGatewaysWithSensors(t *testing.T, s *store.Store, factory uuid.UUID, prefix string, serials ...[]int64) []gatewayd.Gateway {
	t.Helper()
	ctx := context.Background()
	var out []gatewayd.Gateway
	for i, list := range serials {
		g, err := s.CreateGateway(ctx, newGateway(factory, fmt.Sprintf("%s-%d", prefix, i)))
		require.NoError(t, err)
		var reports []gatewayd.SensorReport
		for _, n := range list {
			reports = append(reports, report(n, ""))
		}
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(), Sensors: reports}})))
		out = append(out, g)
	}
	return out
}

// API.md §7: GET /api/sensors is ordered by gateway, then serial.
func TestSensorListIsOrderedByGatewayThenSerial(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	gws := twoGatewaysWithSensors(t, s, fx.factory.ID, "ORD", []int64{5, 1}, []int64{3, 2})
	type key struct {
		gw     string
		serial int64
	}
	var want []key
	for _, g := range gws {
		for serial := range sensorsBySerial(t, s, g.ID) {
			want = append(want, key{g.ID.String(), serial})
		}
	}
	slices.SortFunc(want, func(a, b key) int {
		if c := strings.Compare(a.gw, b.gw); c != 0 {
			return c
		}
		return int(a.serial - b.serial)
	})
	list, total, err := s.ListSensors(ctx, store.SensorFilter{}, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, 4, total)
	var got []key
	for _, x := range list {
		got = append(got, key{x.GatewayID.String(), x.Serial})
	}
	assert.Equal(t, want, got, "the whole list")
	got = nil
	for off := range 4 {
		page, _, err := s.ListSensors(ctx, store.SensorFilter{}, store.Page{Limit: 1, Offset: off})
		require.NoError(t, err)
		require.Len(t, page, 1)
		got = append(got, key{page[0].GatewayID.String(), page[0].Serial})
	}
	assert.Equal(t, want, got, "page by page")
}

// API.md §7: the factory_id filter of GET /api/sensors keeps the sensors
// of that factory's gateways, and the total counts those only.
func TestSensorListFactoryFilter(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	other, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: "Plant 2"})
	require.NoError(t, err)
	mine := twoGatewaysWithSensors(t, s, fx.factory.ID, "MINE", []int64{1, 2}, []int64{3})
	twoGatewaysWithSensors(t, s, other.ID, "THEIRS", []int64{1, 4, 5})
	list, total, err := s.ListSensors(ctx, store.SensorFilter{FactoryID: &fx.factory.ID}, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	require.Len(t, list, 3)
	for _, x := range list {
		assert.Contains(t, []uuid.UUID{mine[0].ID, mine[1].ID}, x.GatewayID)
	}
	_, total, err = s.ListSensors(ctx, store.SensorFilter{FactoryID: &other.ID}, store.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 3, total)
	nobody := uuid.New()
	list, total, err = s.ListSensors(ctx, store.SensorFilter{FactoryID: &nobody}, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Zero(t, total)
	assert.Empty(t, list)
}

// API.md §7: a discovery updates a known sensor's name unless an operator
// set one, and keeps any name when the gateway reports none (then only a
// placeholder, "Sensor <serial>", is what a new sensor gets).
func TestDiscoveryWithoutANameKeepsTheGatewaysEarlierName(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "NAMES")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "Pump A")}}})))
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0.Add(time.Minute),
		Sensors: []gatewayd.SensorReport{report(1, "")}}})))
	assert.Equal(t, "Pump A", sensorsBySerial(t, s, g.ID)[1].Name)
}

// A part number the gateway leaves out keeps the stored one, as a rate or
// a sample count does.
func TestDiscoveryWithoutAPartNumberKeepsTheStoredOne(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "PARTS")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
	bare := report(1, "A")
	bare.PartNumber = ""
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0.Add(time.Minute),
		Sensors: []gatewayd.SensorReport{bare}}})))
	got := sensorsBySerial(t, s, g.ID)[1]
	require.NotNil(t, got.PartNumber)
	assert.Equal(t, "TA-CE-WS-1", *got.PartNumber)
}

// A discovery answer that arrives after a newer one (merges of several
// gateways are batched) does not move a sensor's last_seen_at back.
func TestDiscoveryNeverMovesLastSeenBack(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "SEEN")
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	t0 := t1.Add(-time.Minute)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1,
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
	got := sensorsBySerial(t, s, g.ID)[1]
	assert.True(t, t1.Equal(got.LastSeenAt), "last_seen_at %s, want %s", got.LastSeenAt, t1)
}

// MergeDiscoveries returns the sensors that changed, for their
// sensor.updated events: a sensor reported again as it was is no change,
// though its last_seen_at moves.
func TestRediscoveringAnUnchangedSensorIsNoChange(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "SAME")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	changed, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})
	require.NoError(t, err)
	require.Len(t, changed, 1, "a new sensor is a change")
	changed, err = s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0.Add(time.Minute),
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})
	require.NoError(t, err)
	assert.Empty(t, changed, "the same report again")
	assert.True(t, t0.Add(time.Minute).Equal(sensorsBySerial(t, s, g.ID)[1].LastSeenAt))
}

// A sensor missing from the answer is a change once, when it becomes
// disconnected; missing again, it is no change.
func TestASensorAlreadyDisconnectedIsNoChange(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "GONE")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
	changed, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0.Add(time.Minute)}})
	require.NoError(t, err)
	require.Len(t, changed, 1, "disconnected: a change")
	changed, err = s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0.Add(2 * time.Minute)}})
	require.NoError(t, err)
	assert.Empty(t, changed, "still disconnected: no change")
}

// ListReadings: a deleted sensor has no reading list (its readings stay,
// for GET /api/readings/:id).
func TestADeletedSensorListsNoReadings(t *testing.T) {
	ctx := context.Background()
	s, _, g, sensor := readingFixture(t)
	r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	list, total, err := s.ListReadings(ctx, sensor.ID, store.ReadingFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Len(t, list, 1)
	_, err = s.DeleteGateway(ctx, g.ID) // and its sensors
	require.NoError(t, err)
	list, total, err = s.ListReadings(ctx, sensor.ID, store.ReadingFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Zero(t, total)
	assert.Empty(t, list)
	_, err = s.GetReading(ctx, r.ID)
	assert.NoError(t, err, "the reading itself stays")
}

// MarkSeen leaves deleted gateways alone: a sighting that raced the
// deletion writes nothing to the deleted row.
func TestMarkSeenLeavesDeletedGatewaysAlone(t *testing.T) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "SEEN-LATE")
	_, err := s.DeleteGateway(ctx, g.ID)
	require.NoError(t, err)
	require.NoError(t, s.MarkSeen(ctx, map[uuid.UUID]time.Time{g.ID: time.Now()}))
	var seen *time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT last_seen_at FROM gateways WHERE id = $1`, g.ID).Scan(&seen))
	assert.Nil(t, seen)
}

// API.md §2: every read and write excludes deleted rows: updating a
// deleted factory is ErrNotFound (404), and changes nothing.
func TestUpdatingADeletedFactoryIsNotFound(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	_, err := s.DeleteFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	_, err = s.UpdateFactory(ctx, fx.factory.ID, store.FactoryPatch{Name: store.Some("revived")})
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	var name string
	require.NoError(t, pool.QueryRow(ctx, `SELECT name FROM factories WHERE id = $1`, fx.factory.ID).Scan(&name))
	assert.Equal(t, "Plant 1", name)
}

// A factory update shared with others keeps what its patch does not set,
// location included (as a lone update does).
func TestSharedFactoryUpdateKeepsTheUnsetLocation(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	fs := factoriesNamed(t, s, fx.org.ID, 2)
	for _, f := range fs {
		_, err := s.UpdateFactory(ctx, f.ID, store.FactoryPatch{Location: store.Some(ptr("Hall " + f.Name))})
		require.NoError(t, err)
	}
	got, errs, err := store.UpdateFactoriesAtOnce(ctx, s,
		store.FactoryUpdate{ID: fs[0].ID, Patch: store.FactoryPatch{Name: store.Some("renamed")}},
		store.FactoryUpdate{ID: fs[1].ID, Patch: store.FactoryPatch{Timezone: store.Some("Asia/Tokyo")}},
	)
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, errs)
	for i, f := range fs {
		if assert.NotNil(t, got[i].Location, "request %d", i) {
			assert.Equal(t, "Hall "+f.Name, *got[i].Location)
		}
	}
}

// A temperature or sighting older than what is stored (notifications of
// several gateways are batched) does not move a sensor's last_seen_at
// back.
func TestTemperatureNeverMovesLastSeenBack(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "TEMP-SEEN")
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{{GatewayID: g.ID, Serial: 1, Celsius: 20, At: t1}})))
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{
		{GatewayID: g.ID, Serial: 1, Celsius: 19, At: t1.Add(-time.Minute)}})))
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{
		{GatewayID: g.ID, Serial: 1, At: t1.Add(-2 * time.Minute), Sighting: true}})))
	got := sensorsBySerial(t, s, g.ID)[1]
	assert.True(t, t1.Equal(got.LastSeenAt), "last_seen_at %s, want %s", got.LastSeenAt, t1)
}

// MergeDiscoveries skips the discovery of a gateway deleted meanwhile:
// nothing is written for it, and no sensor of it is reported changed
// (which would publish sensor.updated for a deleted gateway).
func TestDiscoveryOfADeletedGatewayReportsNothing(t *testing.T) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "DELETED-DISCOVERY")
	_, err := s.DeleteGateway(ctx, g.ID)
	require.NoError(t, err)
	changed, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(1, "A"), report(2, "B")}}})
	require.NoError(t, err)
	assert.Empty(t, changed)
	var rows int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM sensors WHERE gateway_id = $1`, g.ID).Scan(&rows))
	assert.Zero(t, rows, "no row, not even a deleted one")
}
