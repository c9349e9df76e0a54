package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// FactoriesByID and GatewaysByID answer ids with the one statement that
// answers coalesced GETs (many): each id's row, or pgx.ErrNoRows.
func FactoriesByID(ctx context.Context, s *Store, ids ...uuid.UUID) ([]gatewayd.Factory, []error, error) {
	return answerAll(ctx, s.factories, ids)
}

func GatewaysByID(ctx context.Context, s *Store, ids ...uuid.UUID) ([]gatewayd.Gateway, []error, error) {
	return answerAll(ctx, s.gateways, ids)
}

// ErrNoRows is what a coalesced GET of a missing row is answered.
var ErrNoRows = pgx.ErrNoRows

func answerAll[K comparable, V any](ctx context.Context, c *coalescer[K, V], keys []K) ([]V, []error, error) {
	answer, err := c.many(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	vs, errs := make([]V, len(keys)), make([]error, len(keys))
	for i, k := range keys {
		vs[i], errs[i] = answer(k)
	}
	return vs, errs, nil
}

// Totals counts lists of table with the statement that answers coalesced
// list totals: one list per parent id, nil for every live row.
func Totals(ctx context.Context, s *Store, table, parent string, ids ...*uuid.UUID) ([]int, error) {
	fs := make([]listFilter, len(ids))
	for i, id := range ids {
		fs[i] = listFilter{table: table}.of(parent, id)
	}
	out, errs, err := answerAll(ctx, s.totals[table], fs)
	if err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
