package store_test

import (
	"testing"

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
