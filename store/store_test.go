package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

var tmpl *testdb.Template

func TestMain(m *testing.M) { testdb.Exit(testdb.Run(m, &tmpl)) }

// newStore gives a test its own database; tests that use it run in
// parallel. Its store keeps the rows read by id for far longer than a
// test (ReadsKeptFor): a write the cache misses shows as a stale read in
// whichever test reads the row back.
func newStore(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	t.Parallel()
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	return store.New(pool, sealer, store.ReadsKeptFor(time.Minute)), pool
}

func ptr[T any](v T) *T { return &v }

type fixture struct {
	org     gatewayd.Organization
	factory gatewayd.Factory
}

func setup(t *testing.T, s *store.Store) fixture {
	t.Helper()
	ctx := context.Background()
	org, err := s.CreateOrganization(ctx, "Acme", nil)
	require.NoError(t, err)
	f, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "Plant 1"})
	require.NoError(t, err)
	return fixture{org, f}
}

// withGateway is a test's store (newStore) with its fixture (setup) and
// one gateway of gateway_id gid.
func withGateway(t *testing.T, gid string) (*store.Store, *pgxpool.Pool, fixture, gatewayd.Gateway) {
	t.Helper()
	s, pool := newStore(t)
	fx := setup(t, s)
	g, err := s.CreateGateway(context.Background(), newGateway(fx.factory.ID, gid))
	require.NoError(t, err)
	return s, pool, fx, g
}

func newGateway(factory uuid.UUID, gid string) store.NewGateway {
	return store.NewGateway{FactoryID: factory, GatewayID: gid, Name: "GW " + gid, URL: "ws://127.0.0.1:1/gw/" + gid,
		Email: "ops@example.com", Password: "s3cret-" + gid}
}

func TestMigrateTwiceChangesNothing(t *testing.T) {
	ctx := context.Background()
	_, pool := newStore(t)
	n, err := store.MigrationCount()
	require.NoError(t, err)
	v, err := store.Migrate(ctx, pool)
	require.NoError(t, err)
	assert.Equal(t, int32(n), v)
	var orgs int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM organizations WHERE name = 'Default Organization'`).Scan(&orgs))
	assert.Equal(t, 1, orgs, "the default organization is inserted once")
}

func TestSchemaHasEveryIndexAndConstraint(t *testing.T) {
	ctx := context.Background()
	_, pool := newStore(t)
	indexes := map[string]string{}
	rows, err := pool.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'`)
	require.NoError(t, err)
	for rows.Next() {
		var n, d string
		require.NoError(t, rows.Scan(&n, &d))
		indexes[n] = d
	}
	require.NoError(t, rows.Err())
	want := map[string][]string{
		"organizations_name_idx":              {"(name, id)", "WHERE (deleted_at IS NULL)"},
		"factories_organization_id_idx":       {"(organization_id)", "WHERE (deleted_at IS NULL)"},
		"factories_name_idx":                  {"(name, id)", "WHERE (deleted_at IS NULL)"},
		"gateways_factory_id_idx":             {"(factory_id)", "WHERE (deleted_at IS NULL)"},
		"gateways_name_idx":                   {"(name, id)", "WHERE (deleted_at IS NULL)"},
		"gateways_last_seen_at_idx":           {"(last_seen_at)"},
		"gateways_gateway_id_key":             {"UNIQUE", "(gateway_id)", "WHERE (deleted_at IS NULL)"},
		"equipment_factory_id_idx":            {"(factory_id)", "WHERE (deleted_at IS NULL)"},
		"equipment_name_idx":                  {"(name, id)", "WHERE (deleted_at IS NULL)"},
		"sensors_gateway_id_serial_key":       {"UNIQUE", "(gateway_id, serial)", "WHERE (deleted_at IS NULL)"},
		"sensors_equipment_id_idx":            {"(equipment_id)", "WHERE (deleted_at IS NULL)"},
		"readings_sensor_id_requested_at_idx": {"(sensor_id, requested_at DESC, id DESC)"},
		"reading_samples_created_at_idx":      {"(created_at)"},
	}
	for name, parts := range want {
		def, ok := indexes[name]
		if !assert.True(t, ok, "index %s missing", name) {
			continue
		}
		for _, p := range parts {
			assert.Contains(t, def, p, name)
		}
	}
	var fks []string
	rows, err = pool.Query(ctx, `SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY conname`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		fks = append(fks, n)
	}
	assert.Equal(t, []string{"equipment_factory_id_fkey", "factories_organization_id_fkey", "gateways_factory_id_fkey",
		"reading_samples_reading_id_fkey", "readings_gateway_id_fkey", "readings_sensor_id_fkey",
		"sensor_lists_gateway_id_fkey", "sensors_equipment_id_fkey", "sensors_gateway_id_fkey"}, fks)
	var triggers int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%_updated_at'`).Scan(&triggers))
	assert.Equal(t, 5, triggers)
	var checks []string
	rows, err = pool.Query(ctx, `SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid <> 0 ORDER BY conname`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		checks = append(checks, n)
	}
	assert.Equal(t, []string{"api_tokens_role_check", "gateways_desired_state_check", "reading_samples_format_check", "readings_status_check", "readings_trigger_check",
		"sensors_reading_interval_check"}, checks)
	var def string
	require.NoError(t, pool.QueryRow(ctx, `SELECT column_default FROM information_schema.columns WHERE table_name='gateways' AND column_name='id'`).Scan(&def))
	assert.Equal(t, "gen_random_uuid()", def)
}

func TestOrganizationCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	o, err := s.CreateOrganization(ctx, "Beta", json.RawMessage(`{"tier":"gold"}`))
	require.NoError(t, err)
	assert.Equal(t, "Beta", o.Name)
	assert.JSONEq(t, `{"tier":"gold"}`, string(o.Metadata))

	got, err := s.GetOrganization(ctx, o.ID)
	require.NoError(t, err)
	assert.Equal(t, o.ID, got.ID)

	time.Sleep(5 * time.Millisecond) // updated_at must move by a measurable amount
	up, err := s.UpdateOrganization(ctx, o.ID, store.OrganizationPatch{Name: store.Some("Gamma")})
	require.NoError(t, err)
	assert.Equal(t, "Gamma", up.Name)
	assert.JSONEq(t, `{"tier":"gold"}`, string(up.Metadata), "partial update leaves metadata alone")
	assert.True(t, up.UpdatedAt.After(o.UpdatedAt), "updated_at moves")
	assert.Equal(t, o.CreatedAt, up.CreatedAt)

	same, err := s.UpdateOrganization(ctx, o.ID, store.OrganizationPatch{})
	require.NoError(t, err)
	assert.Equal(t, up.UpdatedAt, same.UpdatedAt, "an empty patch changes nothing")

	_, err = s.DeleteOrganization(ctx, o.ID)
	require.NoError(t, err)
	_, err = s.GetOrganization(ctx, o.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.UpdateOrganization(ctx, o.ID, store.OrganizationPatch{Name: store.Some("x")})
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.DeleteOrganization(ctx, o.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

func TestPagingTotalsAndOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	org, err := s.CreateOrganization(ctx, "Paging", nil)
	require.NoError(t, err)
	names := []string{"b", "a", "c", "a", "b"}
	for _, n := range names {
		_, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: n})
		require.NoError(t, err)
	}
	all, total, err := s.ListFactories(ctx, &org.ID, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, 5, total)
	require.Len(t, all, 5)
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		assert.True(t, prev.Name < cur.Name || (prev.Name == cur.Name && prev.ID.String() < cur.ID.String()),
			"order by name then id: %s/%s before %s/%s", prev.Name, prev.ID, cur.Name, cur.ID)
	}
	page, total, err := s.ListFactories(ctx, &org.ID, store.Page{Limit: 2, Offset: 2})
	require.NoError(t, err)
	assert.Equal(t, 5, total)
	assert.Equal(t, []uuid.UUID{all[2].ID, all[3].ID}, []uuid.UUID{page[0].ID, page[1].ID})
	beyond, total, err := s.ListFactories(ctx, &org.ID, store.Page{Limit: 10, Offset: 50})
	require.NoError(t, err)
	assert.Equal(t, 5, total, "total is known past the end")
	assert.Empty(t, beyond)
	assert.NotNil(t, beyond)

	_, err = s.DeleteFactory(ctx, all[0].ID)
	require.NoError(t, err)
	_, total, err = s.ListFactories(ctx, &org.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 4, total, "deleted rows are not counted")

	orgs, total, err := s.ListOrganizations(ctx, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 2, total) // Default Organization and Paging
	assert.Equal(t, "Default Organization", orgs[0].Name)
}

func TestFactoryInvalidReferenceAndUpdate(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: uuid.New(), Name: "x"})
	assert.ErrorIs(t, err, gatewayd.ErrInvalidReference)

	fx := setup(t, s)
	assert.Equal(t, "UTC", fx.factory.Timezone)
	assert.Nil(t, fx.factory.Location)
	f, err := s.UpdateFactory(ctx, fx.factory.ID, store.FactoryPatch{Location: store.Some(ptr("Hall 3")), Timezone: store.Some("Europe/Berlin")})
	require.NoError(t, err)
	assert.Equal(t, "Hall 3", *f.Location)
	assert.Equal(t, "Europe/Berlin", f.Timezone)
	assert.Equal(t, "Plant 1", f.Name)
	f, err = s.UpdateFactory(ctx, fx.factory.ID, store.FactoryPatch{Location: store.Some[*string](nil)})
	require.NoError(t, err)
	assert.Nil(t, f.Location, "a set nil clears location")
	assert.Equal(t, "Europe/Berlin", f.Timezone)

	_, err = s.DeleteOrganization(ctx, fx.org.ID)
	require.NoError(t, err)
	_, err = s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: "late"})
	assert.ErrorIs(t, err, gatewayd.ErrInvalidReference, "a deleted parent counts as missing")
}

func TestGatewayLifecycle(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	in := newGateway(fx.factory.ID, "GW-1")
	in.Model = ptr("CTC-1")
	g, err := s.CreateGateway(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, "GW-1", g.GatewayID)
	assert.Equal(t, "CTC-1", *g.Model)
	assert.Nil(t, g.FirmwareVersion)
	assert.Nil(t, g.LastSeenAt)

	var sealed string
	require.NoError(t, pool.QueryRow(ctx, `SELECT password_encrypted FROM gateways WHERE id=$1`, g.ID).Scan(&sealed))
	assert.True(t, strings.HasPrefix(sealed, "v2:"+store.KeyID(testutil.Key)+":"))
	assert.NotContains(t, sealed, in.Password)

	conn, err := s.Target(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.Target{ID: g.ID, FactoryID: fx.factory.ID, GatewayID: in.GatewayID, Name: in.Name, Desired: gatewayd.DesiredConnected,
		Credentials: gatewayd.Credentials{URL: in.URL, Email: in.Email, Password: in.Password}}, conn)

	// A patch that repeats the current url and password is no reconnect.
	up, err := s.UpdateGateway(ctx, g.ID, store.GatewayPatch{URL: store.Some(in.URL), Password: store.Some(in.Password), Name: store.Some("Renamed")})
	require.NoError(t, err)
	assert.False(t, up.Reconnect)
	assert.Equal(t, "Renamed", up.Gateway.Name)
	var sealed2 string
	require.NoError(t, pool.QueryRow(ctx, `SELECT password_encrypted FROM gateways WHERE id=$1`, g.ID).Scan(&sealed2))
	assert.Equal(t, sealed, sealed2, "an unchanged password is not sealed again")

	for _, tc := range []struct {
		name  string
		patch store.GatewayPatch
	}{
		// A new url or email comes with a password (API.md §4), here
		// the current one.
		{"url", store.GatewayPatch{URL: store.Some("ws://127.0.0.1:2/gw/x"), Password: store.Some(in.Password)}},
		{"email", store.GatewayPatch{Email: store.Some("new@example.com"), Password: store.Some(in.Password)}},
		{"password", store.GatewayPatch{Password: store.Some("another")}},
	} {
		up, err := s.UpdateGateway(ctx, g.ID, tc.patch)
		require.NoError(t, err, tc.name)
		assert.True(t, up.Reconnect, tc.name)
	}
	// Without one, the store refuses it against the row it would write
	// over, whatever the caller read before.
	_, err = s.UpdateGateway(ctx, g.ID, store.GatewayPatch{URL: store.Some("ws://127.0.0.1:3/gw/y")})
	require.ErrorIs(t, err, store.ErrPasswordRequired)
	_, err = s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Email: store.Some("newer@example.com"), Name: store.Some("x")})
	require.ErrorIs(t, err, store.ErrPasswordRequired)
	conn, err = s.Target(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, "another", conn.Password)
	assert.Equal(t, "new@example.com", conn.Email)
	assert.Equal(t, "CTC-1", *up.Gateway.Model, "model untouched")

	up, err = s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Model: store.Some[*string](nil)})
	require.NoError(t, err)
	assert.Nil(t, up.Gateway.Model)

	require.NoError(t, errOf(s.DeleteGateway(ctx, g.ID)))
	_, err = s.GetGateway(ctx, g.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.Target(ctx, g.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	assert.ErrorIs(t, errOf(s.DeleteGateway(ctx, g.ID)), gatewayd.ErrNotFound)
	_, err = s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Name: store.Some("x")})
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
}

func TestGatewayIDConflictAndReuse(t *testing.T) {
	ctx := context.Background()
	s, _, fx, g := withGateway(t, "DUP")
	_, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "DUP"))
	assert.ErrorIs(t, err, gatewayd.ErrConflict)
	other, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "OTHER"))
	require.NoError(t, err)
	_, err = s.UpdateGateway(ctx, other.ID, store.GatewayPatch{GatewayID: store.Some("DUP")})
	assert.ErrorIs(t, err, gatewayd.ErrConflict)

	require.NoError(t, errOf(s.DeleteGateway(ctx, g.ID)))
	_, err = s.CreateGateway(ctx, newGateway(fx.factory.ID, "DUP"))
	assert.NoError(t, err, "a deleted gateway's id can be reused")
}

func TestConcurrentCreatesOfOneGatewayID(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateGateway(ctx, newGateway(fx.factory.ID, "RACE"))
		}()
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, gatewayd.ErrConflict):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, 19, conflicts)
}

func TestCascades(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	f2, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: "Plant 2"})
	require.NoError(t, err)
	var ids []uuid.UUID
	for i, f := range []uuid.UUID{fx.factory.ID, fx.factory.ID, f2.ID} {
		g, err := s.CreateGateway(ctx, newGateway(f, fmt.Sprintf("C%d", i)))
		require.NoError(t, err)
		ids = append(ids, g.ID)
	}
	other := setup(t, s)
	survivor, err := s.CreateGateway(ctx, newGateway(other.factory.ID, "SURVIVOR"))
	require.NoError(t, err)

	gone, err := s.DeleteFactory(ctx, f2.ID)
	require.NoError(t, err)
	assert.ElementsMatch(t, []uuid.UUID{ids[2]}, refIDs(gone))
	assert.Equal(t, f2.ID, gone[0].FactoryID)
	_, err = s.CreateGateway(ctx, newGateway(f2.ID, "LATE"))
	assert.ErrorIs(t, err, gatewayd.ErrInvalidReference)

	gone, err = s.DeleteOrganization(ctx, fx.org.ID)
	require.NoError(t, err)
	assert.ElementsMatch(t, ids[:2], refIDs(gone), "deleting the organization returns the gateways it took")
	_, err = s.GetFactory(ctx, fx.factory.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	for _, id := range ids {
		_, err = s.GetGateway(ctx, id)
		assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	}
	list, total, err := s.ListGateways(ctx, nil, store.Page{Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Equal(t, survivor.ID, list[0].ID)
	active, err := s.Targets(ctx)
	require.NoError(t, err)
	require.Len(t, active, 1)
	assert.Equal(t, survivor.ID, active[0].ID)

	empty, err := s.DeleteFactory(ctx, other.factory.ID)
	require.NoError(t, err)
	assert.Equal(t, []uuid.UUID{survivor.ID}, refIDs(empty))
}

func TestMarkSeenBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	a, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "A"))
	require.NoError(t, err)
	b, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "B"))
	require.NoError(t, err)
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, s.MarkSeen(ctx, map[uuid.UUID]time.Time{a.ID: t1, b.ID: t1, uuid.New(): t1}))
	ga, err := s.GetGateway(ctx, a.ID)
	require.NoError(t, err)
	require.NotNil(t, ga.LastSeenAt)
	assert.True(t, t1.Equal(*ga.LastSeenAt))
	assert.Equal(t, a.UpdatedAt, ga.UpdatedAt, "last_seen_at alone does not move updated_at")
	require.NoError(t, s.MarkSeen(ctx, map[uuid.UUID]time.Time{a.ID: t1.Add(-time.Hour)}))
	ga, err = s.GetGateway(ctx, a.ID)
	require.NoError(t, err)
	assert.True(t, t1.Equal(*ga.LastSeenAt), "last_seen_at never moves backwards")
}

func TestUnreadablePasswordIsFlagged(t *testing.T) {
	ctx := context.Background()
	_, pool, _, g := withGateway(t, "K")
	otherKey := make([]byte, 32)
	other, err := store.NewSealer(otherKey)
	require.NoError(t, err)
	conn, err := store.New(pool, other).Target(ctx, g.ID)
	require.NoError(t, err)
	assert.True(t, conn.Unreadable)
	assert.Empty(t, conn.Password)
}

func TestDatabaseDownIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := store.Connect(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable", time.Second, 0)
	assert.ErrorIs(t, err, gatewayd.ErrUnavailable)

	s, pool := newStore(t)
	pool.Close()
	_, err = s.GetOrganization(ctx, uuid.New())
	assert.ErrorIs(t, err, gatewayd.ErrUnavailable)
}

func TestInvalidInputIsNotInternal(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := s.CreateOrganization(ctx, "nul\x00byte", nil)
	assert.ErrorIs(t, err, gatewayd.ErrInvalidInput)
}

func TestUUIDCodec(t *testing.T) {
	ctx := context.Background()
	_, pool := newStore(t)
	id := uuid.New()
	var back uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid`, id).Scan(&back))
	assert.Equal(t, id, back)
	var text string
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid::text`, id).Scan(&text))
	assert.Equal(t, id.String(), text)
	var arr []uuid.UUID
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid[]`, ids).Scan(&arr))
	assert.Equal(t, ids, arr)
	var n uuid.UUID
	err := pool.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&n)
	assert.ErrorContains(t, err, "cannot scan NULL", "a NULL is never a silent uuid.Nil")
	var p *uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&p))
	assert.Nil(t, p)
	// The text protocol path (simple protocol) too.
	require.NoError(t, pool.QueryRow(ctx, `SELECT '`+id.String()+`'::uuid`, pgx.QueryExecModeSimpleProtocol).Scan(&back))
	assert.Equal(t, id, back)
}

func refIDs(refs []gatewayd.GatewayRef) []uuid.UUID {
	out := make([]uuid.UUID, len(refs))
	for i, r := range refs {
		out[i] = r.ID
	}
	return out
}
