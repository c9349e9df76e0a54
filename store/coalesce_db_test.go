package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// The statement that answers many coalesced GETs at once returns each
// live row once, whatever the ids repeat or miss.
func TestLookupStatementsForManyIDs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	var fs []gatewayd.Factory
	var gs []gatewayd.Gateway
	for i := range 3 {
		f, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: fmt.Sprintf("F%d", i)})
		require.NoError(t, err)
		fs = append(fs, f)
		g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, fmt.Sprintf("GW-%d", i)))
		require.NoError(t, err)
		gs = append(gs, g)
	}
	require.NoError(t, errOf(s.DeleteFactory(ctx, fs[2].ID)))
	require.NoError(t, errOf(s.DeleteGateway(ctx, gs[2].ID)))

	gone := uuid.New()
	gotF, errsF, err := store.FactoriesByID(ctx, s, fs[0].ID, fs[1].ID, fs[0].ID, fs[2].ID, gone)
	require.NoError(t, err)
	assert.Equal(t, []gatewayd.Factory{fs[0], fs[1], fs[0]}, gotF[:3], "each live row as GetFactory gives it")
	assert.Equal(t, []error{nil, nil, nil, pgx.ErrNoRows, pgx.ErrNoRows}, errsF, "deleted and missing have no row")
	gotG, errsG, err := store.GatewaysByID(ctx, s, gs[1].ID, gs[2].ID, gone, gs[0].ID, gs[1].ID)
	require.NoError(t, err)
	assert.Equal(t, []error{nil, pgx.ErrNoRows, pgx.ErrNoRows, nil, nil}, errsG)
	assert.Equal(t, []gatewayd.Gateway{gs[1], gs[0], gs[1]}, []gatewayd.Gateway{gotG[0], gotG[3], gotG[4]})
	for _, f := range fs[:2] {
		one, err := s.GetFactory(ctx, f.ID)
		require.NoError(t, err)
		assert.Equal(t, f, one)
	}
}

// Many clients reading at once (so that their GETs share statements) each
// get the row they asked for, never one a neighbour asked for, and each
// sees its own write of a moment ago.
func TestConcurrentGetsAnswerEachTheirOwn(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	const clients, rounds = 32, 25
	factories := factoriesNamed(t, s, fx.org.ID, clients)
	gateways := make([]gatewayd.Gateway, clients)
	for i := range clients {
		g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, fmt.Sprintf("GW-%d", i)))
		require.NoError(t, err)
		gateways[i] = g
	}
	deleted := gateways[clients-1].ID
	require.NoError(t, errOf(s.DeleteGateway(ctx, deleted)))

	atOnce(t, clients, func(i int) error {
		for k := range rounds {
			// Its own factory, renamed just before: the GET sees it.
			name := fmt.Sprintf("F%d-%d", i, k)
			if _, err := s.UpdateFactory(ctx, factories[i].ID, store.FactoryPatch{Name: store.Some(name)}); err != nil {
				return err
			}
			f, err := s.GetFactory(ctx, factories[i].ID)
			if err != nil {
				return err
			}
			if f.ID != factories[i].ID || f.Name != name {
				return fmt.Errorf("client %d read factory %s %q after writing %q", i, f.ID, f.Name, name)
			}
			// Someone's gateway, or the deleted one, or none.
			j := rand.IntN(clients + 1)
			id := uuid.New()
			if j < clients {
				id = gateways[j].ID
			}
			g, err := s.GetGateway(ctx, id)
			switch {
			case j >= clients-1:
				if !assert.ErrorIs(t, err, gatewayd.ErrNotFound) {
					return fmt.Errorf("client %d: gateway %d: %v", i, j, err)
				}
			case err != nil:
				return err
			case g.ID != id || g.GatewayID != gateways[j].GatewayID:
				return fmt.Errorf("client %d asked for gateway %s and got %s", i, id, g.ID)
			}
		}
		return nil
	})
}

// Lists that run at once share statements: one round trip answers every
// page of every list of a batch, each exactly as the list alone would.
func TestPagesOfSeveralListsAtOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	other, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: "Plant 2"})
	require.NoError(t, err)
	for i := range 12 {
		_, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, fmt.Sprintf("GW-%02d", i)))
		require.NoError(t, err)
	}
	for i := range 3 {
		g, err := s.CreateGateway(ctx, newGateway(other.ID, fmt.Sprintf("GW-other-%d", i)))
		require.NoError(t, err)
		if i == 1 {
			_, err = s.DeleteGateway(ctx, g.ID)
			require.NoError(t, err)
		}
	}
	nobody := uuid.New()
	asks := []store.ListAsk{
		{Factory: &fx.factory.ID, Page: store.Page{Limit: 5}},
		{Factory: &fx.factory.ID, Page: store.Page{Limit: 5, Offset: 3}}, // overlaps the first
		{Page: store.Page{Limit: 4, Offset: 10}},
		{Factory: &other.ID, Page: store.Page{Limit: 20}},
		{Factory: &fx.factory.ID, Page: store.Page{Limit: 5, Offset: 10}}, // runs past the end
		{Factory: &fx.factory.ID, Page: store.Page{Limit: 5, Offset: 40}}, // beyond it
		{Factory: &nobody, Page: store.Page{Limit: 5}},
		{Factory: &fx.factory.ID, Page: store.Page{Limit: 5}}, // asked twice
	}
	items, totals, err := store.GatewayPages(ctx, s, asks...)
	require.NoError(t, err)
	for i, a := range asks {
		alone, total, err := s.ListGateways(ctx, a.Factory, a.Page)
		require.NoError(t, err)
		assert.Equal(t, total, totals[i], "ask %d", i)
		require.Len(t, items[i], len(alone), "ask %d", i)
		for j := range alone {
			assert.Equal(t, alone[j].ID, items[i][j].ID, "ask %d, row %d", i, j)
			assert.Equal(t, alone[j].Name, items[i][j].Name)
		}
	}
	assert.Equal(t, []int{12, 12, 14, 2, 12, 12, 0, 12}, totals)
	assert.Equal(t, []int{5, 5, 4, 2, 2, 0, 0, 5}, []int{len(items[0]), len(items[1]), len(items[2]), len(items[3]),
		len(items[4]), len(items[5]), len(items[6]), len(items[7])})
	items[0][0].Name = "changed"
	assert.NotEqual(t, "changed", items[7][0].Name, "pages do not share their rows")
}

// Many clients listing at once (so that their lists share statements) each
// get their own page and the total of their own list, counted after their
// own write of a moment ago.
func TestConcurrentListsAnswerEachTheirOwn(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	const clients, rounds = 16, 10
	factories := factoriesNamed(t, s, fx.org.ID, clients)
	atOnce(t, clients, func(i int) error {
		for k := range rounds {
			// Its own factory's gateways: k+1 after this create.
			if _, err := s.CreateGateway(ctx, newGateway(factories[i].ID, fmt.Sprintf("GW-%d-%d", i, k))); err != nil {
				return err
			}
			items, total, err := s.ListGateways(ctx, &factories[i].ID, store.Page{Limit: 100})
			if err != nil {
				return err
			}
			if total != k+1 || len(items) != k+1 {
				return fmt.Errorf("client %d, round %d: total %d, %d items, want %d", i, k, total, len(items), k+1)
			}
			for _, g := range items {
				if g.FactoryID != factories[i].ID {
					return fmt.Errorf("client %d got a gateway of factory %s", i, g.FactoryID)
				}
			}
			// Every factory: F00…F15, then the fixture's "Plant 1".
			off := (i + k) % 10
			page, total, err := s.ListFactories(ctx, nil, store.Page{Limit: 5, Offset: off})
			if err != nil {
				return err
			}
			if total != clients+1 || len(page) != 5 {
				return fmt.Errorf("client %d: %d factories in all, page of %d", i, total, len(page))
			}
			for j, f := range page {
				if want := fmt.Sprintf("F%02d", off+j); f.Name != want {
					return fmt.Errorf("client %d: row %d of the page at %d is %q, want %q", i, j, off, f.Name, want)
				}
			}
		}
		return nil
	})
}

// factoriesNamed creates n factories of org, named F00, F01, …
func factoriesNamed(t *testing.T, s *store.Store, org uuid.UUID, n int) []gatewayd.Factory {
	t.Helper()
	out := make([]gatewayd.Factory, n)
	for i := range out {
		f, err := s.CreateFactory(context.Background(), store.NewFactory{OrganizationID: org, Name: fmt.Sprintf("F%02d", i)})
		require.NoError(t, err)
		out[i] = f
	}
	return out
}

// atOnce runs client(0) … client(n-1) concurrently and fails the test
// with the first error any of them returns.
func atOnce(t *testing.T, n int, client func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- client(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
