package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// NewFactory is what CreateFactory needs. An empty Timezone means UTC.
type NewFactory struct {
	OrganizationID uuid.UUID
	Name           string
	Location       *string
	Timezone       string
	Metadata       json.RawMessage
}

// FactoryPatch changes the fields that are set; a set nil Location clears it.
type FactoryPatch struct {
	Name     Opt[string]
	Location Opt[*string]
	Timezone Opt[string]
	Metadata Opt[json.RawMessage]
}

const factoryColumns = `id, organization_id, name, location, timezone, metadata, created_at, updated_at`

// factorySize is what a factory's variable fields hold, for recent.
func factorySize(f *gatewayd.Factory) int {
	n := len(f.Name) + len(f.Timezone) + len(f.Metadata)
	if f.Location != nil {
		n += len(*f.Location)
	}
	return n
}

func scanFactory(row pgx.CollectableRow) (gatewayd.Factory, error) {
	var f gatewayd.Factory
	err := row.Scan(&f.ID, &f.OrganizationID, &f.Name, &f.Location, &f.Timezone, &f.Metadata, &f.CreatedAt, &f.UpdatedAt)
	return f, err
}

// CreateFactory inserts a factory under a non-deleted organization, else
// ErrInvalidReference. The parent row is share-locked so a concurrent
// cascade delete either sees the new factory or makes this insert fail.
// Concurrent calls share statements (writes.go).
func (s *Store) CreateFactory(ctx context.Context, f NewFactory) (gatewayd.Factory, error) {
	if f.Timezone == "" {
		f.Timezone = "UTC"
	}
	out, err := s.factoryCreates.get(ctx, &factoryCreate{id: uuid.New(), f: f})
	if err != nil {
		err = classify(err)
		if errors.Is(err, gatewayd.ErrNotFound) {
			err = fmt.Errorf("%w: organization_id", gatewayd.ErrInvalidReference)
		}
		return gatewayd.Factory{}, fmt.Errorf("create factory: %w", err)
	}
	return out, nil
}

// GetFactory returns a non-deleted factory or ErrNotFound.
// Concurrent calls share statements (byID).
func (s *Store) GetFactory(ctx context.Context, id uuid.UUID) (gatewayd.Factory, error) {
	f, err := s.recentFactories.get(ctx, id, s.factories.get)
	if err != nil {
		return gatewayd.Factory{}, fmt.Errorf("get factory: %w", classify(err))
	}
	return f, nil
}

// KeptFactory answers a factory from the rows GetFactory read lately
// (ReadsKeptFor), without the database; false when it has none in time.
func (s *Store) KeptFactory(id uuid.UUID) (gatewayd.Factory, bool) {
	return s.recentFactories.peek(id)
}

// ListFactories returns a page, optionally of one organization.
func (s *Store) ListFactories(ctx context.Context, organizationID *uuid.UUID, page Page) ([]gatewayd.Factory, int, error) {
	items, total, err := s.factoryList.list(ctx, organizationID, page)
	if err != nil {
		return nil, 0, fmt.Errorf("list factories: %w", err)
	}
	return items, total, nil
}

// UpdateFactory changes the set fields. Concurrent calls share
// statements (writes.go).
func (s *Store) UpdateFactory(ctx context.Context, id uuid.UUID, p FactoryPatch) (gatewayd.Factory, error) {
	f, err := s.factoryUpdates.get(ctx, &factoryUpdate{id: id, p: p})
	s.recentFactories.written(err, id)
	if err != nil {
		return gatewayd.Factory{}, fmt.Errorf("update factory: %w", classify(err))
	}
	return f, nil
}

// DeleteFactory soft-deletes a factory, its equipment, gateways and their
// sensors in one transaction and returns the ids of the gateways deleted.
func (s *Store) DeleteFactory(ctx context.Context, id uuid.UUID) ([]gatewayd.GatewayRef, error) {
	var gateways []gatewayd.GatewayRef
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE factories SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gatewayd.ErrNotFound
		}
		gateways, err = deleteFactoriesContents(ctx, tx, []uuid.UUID{id})
		return err
	})
	s.recentFactories.written(err, id)
	s.recentGateways.writtenAll(err)
	if err != nil {
		return nil, fmt.Errorf("delete factory: %w", classify(err))
	}
	return gateways, nil
}
