package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ctcgw/gatewayd"
)

// Writes that share statements.
//
// A single-row write is cheap for PostgreSQL to run but not to receive:
// each is a round trip, a transaction and a commit of its own, and at 32
// clients PostgreSQL spent ~150 µs of CPU per factory update against ~60
// µs when four updates came in one statement (BENCHMARKS.md, 2026-12-06
// third session). Concurrent writes of one kind therefore go through a
// coalescer as reads do: alone they run their own statement; under load,
// those that waited meanwhile are written together by one statement, in
// one transaction, and each gets its own row back.
//
// What a shared write keeps of a lone one:
//   - Each request's answer is its own row, read back by the statement
//     that wrote it (RETURNING), or its own error: a shared statement
//     that PostgreSQL rejects is run again request by request (a few side
//     by side), so one bad request cannot fail the others, and the error
//     each gets is its own.
//     (One that fails otherwise, say with the connection, fails them all,
//     as it would have failed each: whether it committed is not known.)
//   - Two requests for the same row are never in one statement (an
//     UPDATE … FROM applies one of them): the later runs after the
//     statement, alone.
//   - Rows are locked in id order, so two shared statements, or a shared
//     one and a cascade delete (which locks its rows in id order too),
//     cannot deadlock.
//   - A response still means committed: the request waits for the
//     statement's commit.

// retryAlone is how many requests of a rejected shared write run alone
// at once.
const retryAlone = 8

// writer makes the coalescer of one kind of write. one writes a single
// request; many writes several requests for distinct rows in one
// statement and returns the rows written. target is the id of the row a
// request writes, rowOf the id of a written row: a request gets the row
// with its target's id, or pgx.ErrNoRows when there is none (as one
// gives for a row not found).
func writer[R any, V any](one func(context.Context, *R) (V, error), many func(context.Context, []*R) ([]V, error),
	target func(*R) uuid.UUID, rowOf func(*V) uuid.UUID) *coalescer[*R, V] {
	c := &coalescer[*R, V]{one: one}
	c.many = func(ctx context.Context, reqs []*R) (func(*R) (V, error), error) {
		// The first request for each row goes in the statement; the
		// others wait for it and run alone, in order.
		seen := make(map[uuid.UUID]bool, len(reqs))
		var shared, later []*R
		for _, r := range reqs {
			if id := target(r); seen[id] {
				later = append(later, r)
			} else {
				seen[id] = true
				shared = append(shared, r)
			}
		}
		type answer struct {
			v   V
			err error
		}
		answers := make(map[*R]answer, len(reqs))
		rows, err := many(ctx, shared)
		var rejected *pgconn.PgError
		if err != nil && !errors.As(err, &rejected) {
			// Not PostgreSQL's answer (the connection, the deadline):
			// what happened to the statement is not known, and running
			// it again could write twice. Every request gets the error
			// its own statement would have given.
			return nil, err
		}
		if err == nil {
			byRow := make(map[uuid.UUID]*V, len(rows))
			for i := range rows {
				byRow[rowOf(&rows[i])] = &rows[i]
			}
			for _, r := range shared {
				if v, ok := byRow[target(r)]; ok {
					answers[r] = answer{v: *v}
				} else {
					answers[r] = answer{err: pgx.ErrNoRows}
				}
			}
		} else {
			// PostgreSQL rejected it, so nothing of it was written: each
			// request runs alone and gets its own answer, retryAlone at a
			// time. One after the other, each with its own commit, the
			// last of a batch of 34 behind one duplicate gateway_id waited
			// past the request's 5 s into a 503 under the suite's load;
			// run by halves instead, a batch that was mostly bad (a
			// client retrying creates that all exist now) cost twice the
			// statements (found by an audit, helper 14). Distinct rows,
			// one each: they cannot deadlock with each other.
			c.retried.Add(1)
			var mu sync.Mutex
			var g errgroup.Group
			g.SetLimit(retryAlone)
			for _, r := range shared {
				g.Go(func() error {
					v, err := one(ctx, r)
					mu.Lock()
					answers[r] = answer{v, err}
					mu.Unlock()
					return nil
				})
			}
			_ = g.Wait()
		}
		for _, r := range later {
			v, err := one(ctx, r)
			answers[r] = answer{v, err}
		}
		return func(r *R) (V, error) {
			a := answers[r]
			return a.v, a.err
		}, nil
	}
	return c
}

// factoryUpdate is one UpdateFactory request.
type factoryUpdate struct {
	id uuid.UUID
	p  FactoryPatch
}

// factoryCreate is one CreateFactory request, with the id it will have:
// given by gatewayd so that a shared INSERT's rows map back to requests.
type factoryCreate struct {
	id uuid.UUID
	f  NewFactory
}

const updateFactorySQL = `
		UPDATE factories SET
			name     = CASE WHEN $2 THEN $3 ELSE name END,
			location = CASE WHEN $4 THEN $5 ELSE location END,
			timezone = CASE WHEN $6 THEN $7 ELSE timezone END,
			metadata = CASE WHEN $8 THEN $9::jsonb ELSE metadata END
		WHERE id = $1 AND deleted_at IS NULL
		RETURNING ` + factoryColumns

// updateFactoriesSQL is updateFactorySQL for several factories, one patch
// each. The rows are locked in id order first (FOR NO KEY UPDATE, the
// lock the UPDATE itself takes, so a gateway's foreign key check still
// does not wait), which is what keeps concurrent shared updates and
// cascade deletes from deadlocking.
var updateFactoriesSQL = `
		WITH v AS (
			SELECT * FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::bool[], $5::text[], $6::bool[], $7::text[], $8::bool[], $9::jsonb[])
				AS v(id, set_name, name, set_location, location, set_timezone, timezone, set_metadata, metadata)
		), locked AS (
			SELECT id FROM factories WHERE id IN (SELECT id FROM v) AND deleted_at IS NULL ORDER BY id FOR NO KEY UPDATE
		)
		UPDATE factories f SET
			name     = CASE WHEN v.set_name THEN v.name ELSE f.name END,
			location = CASE WHEN v.set_location THEN v.location ELSE f.location END,
			timezone = CASE WHEN v.set_timezone THEN v.timezone ELSE f.timezone END,
			metadata = CASE WHEN v.set_metadata THEN v.metadata ELSE f.metadata END
		FROM v JOIN locked ON locked.id = v.id
		WHERE f.id = v.id
		RETURNING ` + qualify("f", factoryColumns)

// factoryUpdates makes the coalescer of UpdateFactory.
func factoryUpdates(pool *pgxpool.Pool) *coalescer[*factoryUpdate, gatewayd.Factory] {
	return writer(func(ctx context.Context, u *factoryUpdate) (gatewayd.Factory, error) {
		p := u.p
		var meta json.RawMessage
		if p.Metadata.Set {
			meta = metadataOrEmpty(p.Metadata.Value)
		}
		rows, _ := pool.Query(ctx, updateFactorySQL,
			u.id, p.Name.Set, p.Name.Value, p.Location.Set, p.Location.Value, p.Timezone.Set, p.Timezone.Value, p.Metadata.Set, meta)
		return pgx.CollectExactlyOneRow(rows, scanFactory)
	}, func(ctx context.Context, us []*factoryUpdate) ([]gatewayd.Factory, error) {
		n := len(us)
		ids := make([]uuid.UUID, n)
		setName, setLocation, setTimezone, setMetadata := make([]bool, n), make([]bool, n), make([]bool, n), make([]bool, n)
		names, locations, timezones := make([]string, n), make([]*string, n), make([]string, n)
		metas := make([]json.RawMessage, n)
		for i, u := range us {
			p := u.p
			ids[i] = u.id
			setName[i], names[i] = p.Name.Set, p.Name.Value
			setLocation[i], locations[i] = p.Location.Set, p.Location.Value
			setTimezone[i], timezones[i] = p.Timezone.Set, p.Timezone.Value
			if setMetadata[i] = p.Metadata.Set; p.Metadata.Set {
				metas[i] = metadataOrEmpty(p.Metadata.Value)
			}
		}
		rows, _ := pool.Query(ctx, updateFactoriesSQL, ids, setName, names, setLocation, locations, setTimezone, timezones, setMetadata, metas)
		return pgx.CollectRows(rows, scanFactory)
	}, func(u *factoryUpdate) uuid.UUID { return u.id }, func(f *gatewayd.Factory) uuid.UUID { return f.ID })
}

const createFactorySQL = `
		INSERT INTO factories (id, organization_id, name, location, timezone, metadata)
		SELECT $1, $2, $3, $4, $5, $6
		WHERE EXISTS (SELECT 1 FROM organizations WHERE id = $2 AND deleted_at IS NULL FOR SHARE)
		RETURNING ` + factoryColumns

// createFactoriesSQL is createFactorySQL for several factories; a factory
// whose organization is gone (or deleted) is left out, as alone.
const createFactoriesSQL = `
		INSERT INTO factories (id, organization_id, name, location, timezone, metadata)
		SELECT v.id, v.organization_id, v.name, v.location, v.timezone, v.metadata
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
			AS v(id, organization_id, name, location, timezone, metadata)
		WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = v.organization_id AND o.deleted_at IS NULL FOR SHARE)
		RETURNING ` + factoryColumns

// factoryCreates makes the coalescer of CreateFactory.
func factoryCreates(pool *pgxpool.Pool) *coalescer[*factoryCreate, gatewayd.Factory] {
	return writer(func(ctx context.Context, c *factoryCreate) (gatewayd.Factory, error) {
		f := c.f
		rows, _ := pool.Query(ctx, createFactorySQL, c.id, f.OrganizationID, f.Name, f.Location, f.Timezone, metadataOrEmpty(f.Metadata))
		return pgx.CollectExactlyOneRow(rows, scanFactory)
	}, func(ctx context.Context, cs []*factoryCreate) ([]gatewayd.Factory, error) {
		n := len(cs)
		ids, orgs := make([]uuid.UUID, n), make([]uuid.UUID, n)
		names, locations, timezones := make([]string, n), make([]*string, n), make([]string, n)
		metas := make([]json.RawMessage, n)
		for i, c := range cs {
			f := c.f
			ids[i], orgs[i], names[i], locations[i], timezones[i], metas[i] = c.id, f.OrganizationID, f.Name, f.Location, f.Timezone, metadataOrEmpty(f.Metadata)
		}
		rows, _ := pool.Query(ctx, createFactoriesSQL, ids, orgs, names, locations, timezones, metas)
		return pgx.CollectRows(rows, scanFactory)
	}, func(c *factoryCreate) uuid.UUID { return c.id }, func(f *gatewayd.Factory) uuid.UUID { return f.ID })
}

// gatewayCreate is one CreateGateway request, its password sealed, with
// the id it will have (as factoryCreate).
type gatewayCreate struct {
	id     uuid.UUID
	g      NewGateway
	sealed string
}

const createGatewaySQL = `
		INSERT INTO gateways (id, factory_id, gateway_id, name, url, email, password_encrypted, model, firmware_version, desired_state, metadata)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
		WHERE EXISTS (SELECT 1 FROM factories WHERE id = $2 AND deleted_at IS NULL FOR SHARE)
		RETURNING ` + gatewayColumns

// createGatewaysSQL is createGatewaySQL for several gateways. Their
// factories are share-locked in id order first: a shared factory update
// holds its rows in that order, and in any other order the two could
// deadlock. A gateway_id used twice, or already used, fails the whole
// statement, and the writer runs its requests alone: each gets its own
// answer, ErrConflict for whichever of two of a gateway_id comes second.
const createGatewaysSQL = `
		WITH v AS (
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[])
				AS v(id, factory_id, gateway_id, name, url, email, password_encrypted, model, firmware_version, desired_state, metadata)
		), parents AS (
			SELECT id FROM factories WHERE id IN (SELECT factory_id FROM v) AND deleted_at IS NULL ORDER BY id FOR SHARE
		)
		INSERT INTO gateways (id, factory_id, gateway_id, name, url, email, password_encrypted, model, firmware_version, desired_state, metadata)
		SELECT v.id, v.factory_id, v.gateway_id, v.name, v.url, v.email, v.password_encrypted, v.model, v.firmware_version, v.desired_state, v.metadata
		FROM v JOIN parents ON parents.id = v.factory_id
		RETURNING ` + gatewayColumns

// gatewayCreates makes the coalescer of CreateGateway.
func gatewayCreates(pool *pgxpool.Pool) *coalescer[*gatewayCreate, gatewayd.Gateway] {
	return writer(func(ctx context.Context, c *gatewayCreate) (gatewayd.Gateway, error) {
		g := c.g
		rows, _ := pool.Query(ctx, createGatewaySQL, c.id, g.FactoryID, g.GatewayID, g.Name, g.URL, g.Email, c.sealed,
			g.Model, g.FirmwareVersion, desiredOrDefault(g.DesiredState), metadataOrEmpty(g.Metadata))
		return pgx.CollectExactlyOneRow(rows, scanGateway)
	}, func(ctx context.Context, cs []*gatewayCreate) ([]gatewayd.Gateway, error) {
		n := len(cs)
		ids, factories := make([]uuid.UUID, n), make([]uuid.UUID, n)
		gids, names, urls, emails, sealed, desired := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		models, firmwares := make([]*string, n), make([]*string, n)
		metas := make([]json.RawMessage, n)
		for i, c := range cs {
			g := c.g
			ids[i], factories[i], gids[i], names[i], urls[i], emails[i], sealed[i] = c.id, g.FactoryID, g.GatewayID, g.Name, g.URL, g.Email, c.sealed
			models[i], firmwares[i], desired[i], metas[i] = g.Model, g.FirmwareVersion, desiredOrDefault(g.DesiredState), metadataOrEmpty(g.Metadata)
		}
		rows, _ := pool.Query(ctx, createGatewaysSQL, ids, factories, gids, names, urls, emails, sealed, models, firmwares, desired, metas)
		return pgx.CollectRows(rows, scanGateway)
	}, func(c *gatewayCreate) uuid.UUID { return c.id }, func(g *gatewayd.Gateway) uuid.UUID { return g.ID })
}
