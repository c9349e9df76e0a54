package store_test

import (
	"context"
	"testing"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

func BenchmarkSeal(b *testing.B) {
	s, err := store.NewSealer(testutil.Key)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Seal("a-gateway-password"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s, err := store.NewSealer(testutil.Key)
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := s.Seal("a-gateway-password")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Open(sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetDesiredState is a connect's or disconnect's write,
// alternating, on one gateway: the UPDATE with its BEGIN, then the
// COMMIT, two round trips (storeDesired).
func BenchmarkSetDesiredState(b *testing.B) {
	pool, _ := tmpl.Pool(b)
	sealer, err := store.NewSealer(testutil.Key)
	if err != nil {
		b.Fatal(err)
	}
	s := store.New(pool, sealer)
	ctx := context.Background()
	org, err := s.CreateOrganization(ctx, "Bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	f, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "Bench plant"})
	if err != nil {
		b.Fatal(err)
	}
	g, err := s.CreateGateway(ctx, newGateway(f.ID, "bench-1"))
	if err != nil {
		b.Fatal(err)
	}
	states := []gatewayd.DesiredState{gatewayd.DesiredDisconnected, gatewayd.DesiredConnected}
	i := 0
	for b.Loop() {
		if _, _, err := s.SetDesiredState(ctx, g.ID, states[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
