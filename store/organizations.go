package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ctcgw/gatewayd"
)

// OrganizationPatch changes the fields that are set.
type OrganizationPatch struct {
	Name     Opt[string]
	Metadata Opt[json.RawMessage]
}

const orgColumns = `id, name, metadata, created_at, updated_at`

func scanOrganization(row pgx.CollectableRow) (gatewayd.Organization, error) {
	var o gatewayd.Organization
	err := row.Scan(&o.ID, &o.Name, &o.Metadata, &o.CreatedAt, &o.UpdatedAt)
	return o, err
}

// CreateOrganization inserts an organization.
func (s *Store) CreateOrganization(ctx context.Context, name string, metadata json.RawMessage) (gatewayd.Organization, error) {
	rows, _ := s.pool.Query(ctx, `INSERT INTO organizations (name, metadata) VALUES ($1, $2) RETURNING `+orgColumns,
		name, metadataOrEmpty(metadata))
	o, err := pgx.CollectExactlyOneRow(rows, scanOrganization)
	if err != nil {
		return gatewayd.Organization{}, fmt.Errorf("create organization: %w", classify(err))
	}
	return o, nil
}

// GetOrganization returns a non-deleted organization or ErrNotFound.
func (s *Store) GetOrganization(ctx context.Context, id uuid.UUID) (gatewayd.Organization, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1 AND deleted_at IS NULL`, id)
	o, err := pgx.CollectExactlyOneRow(rows, scanOrganization)
	if err != nil {
		return gatewayd.Organization{}, fmt.Errorf("get organization: %w", classify(err))
	}
	return o, nil
}

// ListOrganizations returns a page ordered by name, then id, and the total.
func (s *Store) ListOrganizations(ctx context.Context, page Page) ([]gatewayd.Organization, int, error) {
	items, total, err := s.orgList.list(ctx, nil, page)
	if err != nil {
		return nil, 0, fmt.Errorf("list organizations: %w", err)
	}
	return items, total, nil
}

// UpdateOrganization changes the set fields; an empty patch returns the row.
func (s *Store) UpdateOrganization(ctx context.Context, id uuid.UUID, p OrganizationPatch) (gatewayd.Organization, error) {
	var meta json.RawMessage
	if p.Metadata.Set {
		meta = metadataOrEmpty(p.Metadata.Value)
	}
	rows, _ := s.pool.Query(ctx, `
		UPDATE organizations SET
			name     = CASE WHEN $2 THEN $3 ELSE name END,
			metadata = CASE WHEN $4 THEN $5::jsonb ELSE metadata END
		WHERE id = $1 AND deleted_at IS NULL
		RETURNING `+orgColumns,
		id, p.Name.Set, p.Name.Value, p.Metadata.Set, meta)
	o, err := pgx.CollectExactlyOneRow(rows, scanOrganization)
	if err != nil {
		return gatewayd.Organization{}, fmt.Errorf("update organization: %w", classify(err))
	}
	return o, nil
}

// DeleteOrganization soft-deletes an organization, its factories, their
// equipment, gateways and sensors in one transaction and returns the ids
// of the gateways deleted.
func (s *Store) DeleteOrganization(ctx context.Context, id uuid.UUID) ([]gatewayd.GatewayRef, error) {
	var gateways []gatewayd.GatewayRef
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE organizations SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gatewayd.ErrNotFound
		}
		// Separate statements on purpose: each sees rows committed by a
		// concurrent insert that waited on the parent's lock. The
		// factories are locked in id order, as shared factory updates lock
		// theirs (writes.go): in any other order the two could deadlock.
		rows, _ := tx.Query(ctx, `
			UPDATE factories SET deleted_at = now()
			WHERE id IN (SELECT id FROM factories WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY id FOR NO KEY UPDATE)
			RETURNING id`, id)
		factories, err := collectIDs(rows)
		if err != nil {
			return err
		}
		gateways, err = deleteFactoriesContents(ctx, tx, factories)
		return err
	})
	s.recentFactories.writtenAll(err)
	s.recentGateways.writtenAll(err)
	if err != nil {
		return nil, fmt.Errorf("delete organization: %w", classify(err))
	}
	return gateways, nil
}

// deleteFactoriesContents soft-deletes the equipment and the gateways of
// factories, and the gateways' sensors, and returns the gateways' ids.
func deleteFactoriesContents(ctx context.Context, tx pgx.Tx, factories []uuid.UUID) ([]gatewayd.GatewayRef, error) {
	if len(factories) == 0 {
		return []gatewayd.GatewayRef{}, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE equipment SET deleted_at = now() WHERE factory_id = ANY($1) AND deleted_at IS NULL`, factories); err != nil {
		return nil, err
	}
	// Locked FOR UPDATE, in id order: the sensor writers' key checks wait
	// for the deletion (see orphanSweep). The writers take those locks
	// first, in id order too (lockForNewSensors): one that took them
	// after updating some of the gateways' sensors deadlocked with the
	// deletion, noticed only after deadlock_timeout.
	rows, _ := tx.Query(ctx, `UPDATE gateways SET deleted_at = now() WHERE id IN (
			SELECT id FROM gateways WHERE factory_id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR UPDATE)
		RETURNING id, factory_id`, factories)
	gateways, err := pgx.CollectRows(rows, pgx.RowToStructByPos[gatewayd.GatewayRef])
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(gateways))
	for i, g := range gateways {
		ids[i] = g.ID
	}
	return gateways, deleteSensorsOf(ctx, tx, ids)
}

// deleteSensorsOf soft-deletes the sensors of gateways.
func deleteSensorsOf(ctx context.Context, tx pgx.Tx, gateways []uuid.UUID) error {
	if len(gateways) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE sensors SET deleted_at = now() WHERE gateway_id = ANY($1) AND deleted_at IS NULL`, gateways)
	return err
}
