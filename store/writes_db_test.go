package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// The statement that creates many factories at once gives each request
// the row it asked for, and no row to a request whose organization is
// gone, exactly as CreateFactory alone does.
func TestCreateStatementForManyFactories(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	other, err := s.CreateOrganization(ctx, "Other", nil)
	require.NoError(t, err)
	gone, err := s.CreateOrganization(ctx, "Gone", nil)
	require.NoError(t, err)
	require.NoError(t, errOf(s.DeleteOrganization(ctx, gone.ID)))

	reqs := []store.NewFactory{
		{OrganizationID: fx.org.ID, Name: "A"},
		{OrganizationID: gone.ID, Name: "B"},
		{OrganizationID: other.ID, Name: "C", Location: ptr("Hall 3"), Timezone: "Europe/Berlin", Metadata: json.RawMessage(`{"line":2}`)},
		{OrganizationID: uuid.New(), Name: "D"},
		{OrganizationID: fx.org.ID, Name: "A"}, // the same again: a second factory
	}
	got, errs, err := store.CreateFactoriesAtOnce(ctx, s, reqs...)
	require.NoError(t, err)
	assert.Equal(t, []error{nil, pgx.ErrNoRows, nil, pgx.ErrNoRows, nil}, errs)
	for _, i := range []int{0, 2, 4} {
		r, f := reqs[i], got[i]
		assert.Equal(t, r.OrganizationID, f.OrganizationID, "request %d", i)
		assert.Equal(t, r.Name, f.Name)
		assert.Equal(t, r.Location, f.Location)
		alone, err := s.GetFactory(ctx, f.ID)
		require.NoError(t, err)
		assert.Equal(t, alone, f, "the row as a GET gives it")
	}
	assert.Equal(t, "UTC", got[0].Timezone)
	assert.JSONEq(t, `{}`, string(got[0].Metadata))
	assert.Equal(t, "Europe/Berlin", got[2].Timezone)
	assert.JSONEq(t, `{"line":2}`, string(got[2].Metadata))
	assert.NotEqual(t, got[0].ID, got[4].ID)
	assert.Equal(t, 3, factoryCount(t, s, fx.org.ID), "Plant 1 and the two A")
}

// The statement that updates many factories at once applies each patch
// to its own factory only, the fields it sets and no others; a second
// patch of the same factory runs after the first, and sees it.
func TestUpdateStatementForManyFactories(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	fs := factoriesNamed(t, s, fx.org.ID, 4)
	f3, err := s.UpdateFactory(ctx, fs[3].ID, store.FactoryPatch{Location: store.Some(ptr("Dock")), Metadata: store.Some(json.RawMessage(`{"a":1}`))})
	require.NoError(t, err)
	deleted := fs[2].ID
	require.NoError(t, errOf(s.DeleteFactory(ctx, deleted)))

	got, errs, err := store.UpdateFactoriesAtOnce(ctx, s,
		store.FactoryUpdate{ID: fs[0].ID, Patch: store.FactoryPatch{Name: store.Some("zero")}},
		store.FactoryUpdate{ID: fs[1].ID, Patch: store.FactoryPatch{Timezone: store.Some("Asia/Tokyo")}},
		store.FactoryUpdate{ID: deleted, Patch: store.FactoryPatch{Name: store.Some("ghost")}},
		store.FactoryUpdate{ID: fs[3].ID, Patch: store.FactoryPatch{Location: store.Some[*string](nil)}},
		store.FactoryUpdate{ID: uuid.New(), Patch: store.FactoryPatch{Name: store.Some("nobody")}},
		store.FactoryUpdate{ID: fs[0].ID, Patch: store.FactoryPatch{Metadata: store.Some(json.RawMessage(`{"b":2}`))}},
	)
	require.NoError(t, err)
	assert.Equal(t, []error{nil, nil, pgx.ErrNoRows, nil, pgx.ErrNoRows, nil}, errs)

	assert.Equal(t, "zero", got[0].Name)
	assert.JSONEq(t, `{}`, string(got[0].Metadata), "the first patch of F00 does not see the second")
	assert.Equal(t, "zero", got[5].Name, "the second patch of F00 sees the first")
	assert.JSONEq(t, `{"b":2}`, string(got[5].Metadata))
	assert.Equal(t, fs[1].Name, got[1].Name)
	assert.Equal(t, "Asia/Tokyo", got[1].Timezone)
	assert.Nil(t, got[3].Location, "a set nil clears")
	assert.JSONEq(t, string(f3.Metadata), string(got[3].Metadata), "what is not set stays")
	assert.Equal(t, f3.Name, got[3].Name)
	for _, i := range []int{1, 3, 5} {
		alone, err := s.GetFactory(ctx, got[i].ID)
		require.NoError(t, err)
		assert.Equal(t, alone, got[i], "request %d: the row as a GET gives it", i)
	}
	_, err = s.GetFactory(ctx, deleted)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound, "a deleted factory stays deleted")
}

// When the shared statement fails, nothing of it is written and each
// request runs alone: the bad one gets its own error, the others succeed.
func TestSharedWriteThatFailsIsRunRequestByRequest(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	fs := factoriesNamed(t, s, fx.org.ID, 3)
	bad := json.RawMessage(`{"not json`)

	got, errs, err := store.UpdateFactoriesAtOnce(ctx, s,
		store.FactoryUpdate{ID: fs[0].ID, Patch: store.FactoryPatch{Name: store.Some("good 0")}},
		store.FactoryUpdate{ID: fs[1].ID, Patch: store.FactoryPatch{Metadata: store.Some(bad)}},
		store.FactoryUpdate{ID: fs[2].ID, Patch: store.FactoryPatch{Name: store.Some("good 2")}},
	)
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.Error(t, errs[1])
	require.NoError(t, errs[2])
	_, retried := store.SharedWrites(s)
	assert.EqualValues(t, 1, retried)
	assert.Equal(t, "good 0", got[0].Name)
	assert.Equal(t, "good 2", got[2].Name)
	still, err := s.GetFactory(ctx, fs[1].ID)
	require.NoError(t, err)
	assert.Equal(t, fs[1], still, "the bad request changed nothing")

	made, errs, err := store.CreateFactoriesAtOnce(ctx, s,
		store.NewFactory{OrganizationID: fx.org.ID, Name: "new good"},
		store.NewFactory{OrganizationID: fx.org.ID, Name: "new bad", Metadata: bad},
	)
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.Error(t, errs[1])
	assert.Equal(t, "new good", made[0].Name)
	assert.Equal(t, 5, factoryCount(t, s, fx.org.ID), "Plant 1, the three, and the good new one")
}

// Many clients writing at once (so that their writes share statements)
// each get their own row back, with their own change in it, while
// organizations full of the factories being renamed are deleted: rows
// locked in the same order by both, neither fails with a deadlock.
func TestConcurrentWritesAnswerEachTheirOwn(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	const clients, rounds = 32, 20
	shared := factoriesNamed(t, s, fx.org.ID, 8)
	// Doomed organizations, each deleted by one client midway, with
	// factories every client renames until then.
	const doomedOrgs = 4
	doomed := make([][]gatewayd.Factory, doomedOrgs)
	doomedOrg := make([]uuid.UUID, doomedOrgs)
	for d := range doomed {
		o, err := s.CreateOrganization(ctx, fmt.Sprintf("Doomed %d", d), nil)
		require.NoError(t, err)
		doomedOrg[d] = o.ID
		doomed[d] = factoriesNamed(t, s, o.ID, 16)
	}

	atOnce(t, clients, func(i int) error {
		var own gatewayd.Factory
		for k := range rounds {
			name := fmt.Sprintf("c%d-r%d", i, k)
			if k == 0 {
				f, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: name, Location: ptr(fmt.Sprint(i))})
				if err != nil {
					return err
				}
				if f.Name != name || f.Location == nil || *f.Location != fmt.Sprint(i) {
					return fmt.Errorf("client %d created %q and got %q", i, name, f.Name)
				}
				own = f
			}
			// Its own factory: the answer has its own new name.
			f, err := s.UpdateFactory(ctx, own.ID, store.FactoryPatch{Name: store.Some(name)})
			if err != nil {
				return err
			}
			if f.ID != own.ID || f.Name != name || *f.Location != fmt.Sprint(i) {
				return fmt.Errorf("client %d renamed %s to %q and got %s %q", i, own.ID, name, f.ID, f.Name)
			}
			// A factory others rename too: the answer is that factory
			// with this client's name (the row as this update left it).
			sh := shared[rand.IntN(len(shared))]
			f, err = s.UpdateFactory(ctx, sh.ID, store.FactoryPatch{Name: store.Some(name)})
			if err != nil {
				return err
			}
			if f.ID != sh.ID || f.Name != name {
				return fmt.Errorf("client %d renamed shared %s to %q and got %s %q", i, sh.ID, name, f.ID, f.Name)
			}
			// A gateway under a shared factory, while others rename it.
			gid := fmt.Sprintf("GW-%d-%d", i, k)
			g, err := s.CreateGateway(ctx, newGateway(sh.ID, gid))
			if err != nil {
				return err
			}
			if g.GatewayID != gid || g.FactoryID != sh.ID {
				return fmt.Errorf("client %d created gateway %s and got %s", i, gid, g.GatewayID)
			}
			// Doomed factories, several at a time, in random order.
			d := rand.IntN(doomedOrgs)
			for range 3 {
				df := doomed[d][rand.IntN(len(doomed[d]))]
				if _, err := s.UpdateFactory(ctx, df.ID, store.FactoryPatch{Name: store.Some(name)}); err != nil && !assert.ErrorIs(t, err, gatewayd.ErrNotFound) {
					return err
				}
			}
			if i < doomedOrgs && k == rounds/2 {
				if _, err := s.DeleteOrganization(ctx, doomedOrg[i]); err != nil {
					return fmt.Errorf("delete organization %d: %w", i, err)
				}
			}
		}
		return nil
	})
	together, retried := store.SharedWrites(s)
	assert.Positive(t, together, "writes shared statements")
	assert.Zero(t, retried, "no shared write failed (a deadlock would)")
	t.Logf("%d shared write statements", together)
	for d := range doomed {
		for _, f := range doomed[d] {
			_, err := s.GetFactory(ctx, f.ID)
			assert.ErrorIs(t, err, gatewayd.ErrNotFound, "every factory of a deleted organization is deleted")
		}
	}
	assert.Equal(t, 1+len(shared)+clients, factoryCount(t, s, fx.org.ID))
	_, total, err := s.ListGateways(ctx, nil, store.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, clients*rounds, total)
}

// The statement that creates many gateways at once gives each request its
// own row (its password sealed as alone), none to a request whose factory
// is gone; a gateway_id used twice fails it, and run one by one the
// second gets ErrConflict.
func TestCreateStatementForManyGateways(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	fs := factoriesNamed(t, s, fx.org.ID, 2)
	require.NoError(t, errOf(s.DeleteFactory(ctx, fs[1].ID)))

	reqs := []store.NewGateway{newGateway(fx.factory.ID, "A"), newGateway(fs[1].ID, "B"), newGateway(fs[0].ID, "C"), newGateway(uuid.New(), "D")}
	reqs[2].Model, reqs[2].DesiredState, reqs[2].Metadata = ptr("CTC-1"), gatewayd.DesiredDisconnected, json.RawMessage(`{"x":1}`)
	got, errs, err := store.CreateGatewaysAtOnce(ctx, s, reqs...)
	require.NoError(t, err)
	assert.Equal(t, []error{nil, pgx.ErrNoRows, nil, pgx.ErrNoRows}, errs)
	for _, i := range []int{0, 2} {
		assert.Equal(t, reqs[i].GatewayID, got[i].GatewayID)
		assert.Equal(t, reqs[i].FactoryID, got[i].FactoryID)
		alone, err := s.GetGateway(ctx, got[i].ID)
		require.NoError(t, err)
		assert.Equal(t, alone, got[i])
		target, err := s.Target(ctx, got[i].ID)
		require.NoError(t, err)
		assert.Equal(t, reqs[i].Password, target.Password, "sealed as alone")
	}
	assert.Equal(t, gatewayd.DesiredConnected, got[0].DesiredState)
	assert.Equal(t, gatewayd.DesiredDisconnected, got[2].DesiredState)
	assert.Equal(t, "CTC-1", *got[2].Model)
	assert.JSONEq(t, `{"x":1}`, string(got[2].Metadata))

	_, retried0 := store.SharedWrites(s)
	got, errs, err = store.CreateGatewaysAtOnce(ctx, s, newGateway(fx.factory.ID, "E"), newGateway(fx.factory.ID, "E"), newGateway(fx.factory.ID, "A"))
	require.NoError(t, err)
	// The two E run alone side by side: one is created, the other is a
	// conflict, whichever PostgreSQL takes first.
	won := 0
	if errs[0] != nil {
		won = 1
	}
	require.NoError(t, errs[won])
	assert.Equal(t, "E", got[won].GatewayID)
	assert.ErrorIs(t, store.Classify(errs[1-won]), gatewayd.ErrConflict)
	assert.ErrorIs(t, store.Classify(errs[2]), gatewayd.ErrConflict, "A exists")
	_, retried := store.SharedWrites(s)
	assert.Equal(t, retried0+1, retried)
}

// factoryCount is how many live factories org has.
func factoryCount(t *testing.T, s *store.Store, org uuid.UUID) int {
	t.Helper()
	_, total, err := s.ListFactories(context.Background(), &org, store.Page{Limit: 1})
	require.NoError(t, err)
	return total
}
