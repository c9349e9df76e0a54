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

// NewEquipment is what CreateEquipment needs.
type NewEquipment struct {
	FactoryID uuid.UUID
	Name      string
	Kind      *string
	Metadata  json.RawMessage
}

// EquipmentPatch changes the set fields; a set nil Kind clears it.
type EquipmentPatch struct {
	Name     Opt[string]
	Kind     Opt[*string]
	Metadata Opt[json.RawMessage]
}

const equipmentColumns = `id, factory_id, name, kind, metadata, created_at, updated_at`

func scanEquipment(row pgx.CollectableRow) (gatewayd.Equipment, error) {
	var e gatewayd.Equipment
	err := row.Scan(&e.ID, &e.FactoryID, &e.Name, &e.Kind, &e.Metadata, &e.CreatedAt, &e.UpdatedAt)
	return e, err
}

// CreateEquipment inserts equipment under a non-deleted factory, else
// ErrInvalidReference (the factory row is share-locked against a
// concurrent cascade, as for gateways).
func (s *Store) CreateEquipment(ctx context.Context, e NewEquipment) (gatewayd.Equipment, error) {
	rows, _ := s.pool.Query(ctx, `
		INSERT INTO equipment (factory_id, name, kind, metadata)
		SELECT $1, $2, $3, $4
		WHERE EXISTS (SELECT 1 FROM factories WHERE id = $1 AND deleted_at IS NULL FOR SHARE)
		RETURNING `+equipmentColumns, e.FactoryID, e.Name, e.Kind, metadataOrEmpty(e.Metadata))
	out, err := pgx.CollectExactlyOneRow(rows, scanEquipment)
	if err != nil {
		err = classify(err)
		if errors.Is(err, gatewayd.ErrNotFound) {
			err = fmt.Errorf("%w: factory_id", gatewayd.ErrInvalidReference)
		}
		return gatewayd.Equipment{}, fmt.Errorf("create equipment: %w", err)
	}
	return out, nil
}

// GetEquipment returns non-deleted equipment or ErrNotFound.
func (s *Store) GetEquipment(ctx context.Context, id uuid.UUID) (gatewayd.Equipment, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+equipmentColumns+` FROM equipment WHERE id = $1 AND deleted_at IS NULL`, id)
	e, err := pgx.CollectExactlyOneRow(rows, scanEquipment)
	if err != nil {
		return gatewayd.Equipment{}, fmt.Errorf("get equipment: %w", classify(err))
	}
	return e, nil
}

// ListEquipment returns a page, optionally of one factory.
func (s *Store) ListEquipment(ctx context.Context, factoryID *uuid.UUID, page Page) ([]gatewayd.Equipment, int, error) {
	items, total, err := s.equipmentList.list(ctx, factoryID, page)
	if err != nil {
		return nil, 0, fmt.Errorf("list equipment: %w", err)
	}
	return items, total, nil
}

// UpdateEquipment changes the set fields.
func (s *Store) UpdateEquipment(ctx context.Context, id uuid.UUID, p EquipmentPatch) (gatewayd.Equipment, error) {
	var meta json.RawMessage
	if p.Metadata.Set {
		meta = metadataOrEmpty(p.Metadata.Value)
	}
	rows, _ := s.pool.Query(ctx, `
		UPDATE equipment SET
			name     = CASE WHEN $2 THEN $3 ELSE name END,
			kind     = CASE WHEN $4 THEN $5 ELSE kind END,
			metadata = CASE WHEN $6 THEN $7::jsonb ELSE metadata END
		WHERE id = $1 AND deleted_at IS NULL
		RETURNING `+equipmentColumns,
		id, p.Name.Set, p.Name.Value, p.Kind.Set, p.Kind.Value, p.Metadata.Set, meta)
	e, err := pgx.CollectExactlyOneRow(rows, scanEquipment)
	if err != nil {
		return gatewayd.Equipment{}, fmt.Errorf("update equipment: %w", classify(err))
	}
	return e, nil
}

// DeleteEquipment soft-deletes equipment and unassigns its sensors, in one
// transaction; it returns the live sensors it unassigned.
func (s *Store) DeleteEquipment(ctx context.Context, id uuid.UUID) ([]gatewayd.SensorRef, error) {
	var refs []sensorRef
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE equipment SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return gatewayd.ErrNotFound
		}
		rows, _ := tx.Query(ctx, `UPDATE sensors s SET equipment_id = NULL WHERE equipment_id = $1
			RETURNING s.id, s.gateway_id, (SELECT factory_id FROM gateways WHERE id = s.gateway_id), s.deleted_at IS NULL, false`, id)
		refs, err = pgx.CollectRows(rows, scanSensorRef)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete equipment: %w", classify(err))
	}
	return changedOnly(refs) // never over a bound: it writes no new serial
}
