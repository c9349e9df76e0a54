package api

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/duration"
	"github.com/ctcgw/gatewayd/store"
)

const resSensor = "SENSOR"

func (s *server) listSensors(c *fiber.Ctx) error {
	page, found, err := listQuery(c, "gateway_id", "equipment_id", "factory_id")
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	f := store.SensorFilter{GatewayID: found["gateway_id"], EquipmentID: found["equipment_id"], FactoryID: found["factory_id"]}
	items, total, err := s.store.ListSensors(ctx, f, page)
	if err != nil {
		return err
	}
	return c.JSON(renderList(items, total, page, renderSensor))
}

// gatewaySensors lists one gateway's sensors; an unknown gateway is 404,
// not an empty list.
func (s *server) gatewaySensors(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the query's problems, if any
	// The filters of GET /api/sensors but the gateway, which the path
	// names (API.md: "same, one gateway").
	page, found, err := listQuery(c, "equipment_id", "factory_id")
	if err := invalid(idErr, err); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	items, total, err := s.store.ListSensors(ctx, store.SensorFilter{GatewayID: &id, EquipmentID: found["equipment_id"],
		FactoryID: found["factory_id"]}, page)
	if err != nil {
		return err
	}
	if total == 0 {
		if _, err := s.store.GetGateway(ctx, id); err != nil {
			return scoped(err, resGateway, "")
		}
	}
	return c.JSON(renderList(items, total, page, renderSensor))
}

func (s *server) updateSensor(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the body's problems, if any
	b, err := parseBody(c)
	if err != nil {
		return invalid(idErr, err)
	}
	var p store.SensorPatch
	p.Name.Value, p.Name.Set = b.name(false)
	p.EquipmentID.Value, p.EquipmentID.Set = b.nullableUUID("equipment_id")
	p.ReadingInterval.Value, p.ReadingInterval.Set = b.readingInterval()
	p.Metadata.Value, p.Metadata.Set = b.metadata()
	if err := invalid(idErr, b.done()); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	out, err := s.store.UpdateSensor(ctx, id, p)
	if err != nil {
		return scoped(err, resSensor, "equipment_id")
	}
	if p.ReadingInterval.Set {
		// The gateway's actor runs the schedules; it learns them with its
		// target (and on the next reconciliation if this read fails). The
		// read follows this write, under the gateway's lock: whoever reads
		// last tells the runtime last, and has every sensor's interval.
		lctx, release := s.lockedDBCtx(c.UserContext(), out.GatewayID)
		if t, err := s.store.Target(lctx, out.GatewayID); err == nil {
			s.rt.GatewayUpdated(t)
		} else {
			s.rt.Reconcile()
		}
		release()
	}
	if !out.Changed {
		// A PUT of what the sensor already has changes nothing: no
		// sensor.updated (found by an audit, helper 8).
		return c.JSON(renderSensor(out.Sensor))
	}
	// A deadline of its own: the update's may have been spent waiting
	// for the gateway's lock, and the event would be lost.
	gctx, gcancel := s.dbCtx(c)
	defer gcancel()
	if g, err := s.store.GetGateway(gctx, out.GatewayID); err == nil {
		s.tel.SensorsChanged([]gatewayd.SensorRef{{ID: out.ID, GatewayID: out.GatewayID, FactoryID: g.FactoryID}})
	}
	return c.JSON(renderSensor(out.Sensor))
}

// discoverSensors asks the gateway for its sensors now, merges the answer
// and returns all of the gateway's sensors (not paged).
func (s *server) discoverSensors(c *fiber.Ctx) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	// The gateway may take CommandTimeout to answer each of the commands
	// the discovery waits behind, and its own: four, as the runtime
	// allows (actors.Runtime.Discover).
	ctx, cancel := context.WithTimeout(c.UserContext(), 4*s.opts.CommandTimeout+s.opts.DBTimeout)
	defer cancel()
	d, err := s.rt.Discover(ctx, id)
	if errors.Is(err, gatewayd.ErrNotFound) {
		// Not in the runtime: unknown, or written by another process since
		// the last reconciliation (then it is not connected yet).
		lctx, release := s.lockedDBCtx(c.UserContext(), id) // see withRuntime
		t, err := s.store.Target(lctx, id)
		if err == nil {
			s.rt.GatewayStarted(t)
		}
		release()
		if err != nil {
			return scoped(err, resGateway, "")
		}
		return gatewayd.ErrNotConnected
	}
	if err != nil {
		return scoped(err, resGateway, "")
	}
	dbCtx, dbCancel := s.dbCtx(c)
	defer dbCancel()
	changed, err := s.store.MergeDiscoveries(dbCtx, []gatewayd.Discovery{d})
	switch {
	case errors.Is(err, gatewayd.ErrSensorLimit):
		// What fit is stored; the answer is the gateway's sensors as
		// stored, and the operator learns of the rest from the log.
		s.log.Warn().Err(err).Msg("a gateway's new sensors past its limit were not stored")
	case err != nil:
		return err
	}
	// The writer merges the same answer later and then finds nothing
	// changed: the events are published here.
	s.tel.SensorsChanged(changed)
	list, err := s.store.GatewaySensors(dbCtx, id)
	if err != nil {
		return err
	}
	out := make([]sensorJSON, len(list))
	for i, x := range list {
		out[i] = renderSensor(x)
	}
	return c.JSON(fiber.Map{"data": out})
}

// maxReadingInterval bounds a schedule: a year is already no schedule.
const maxReadingInterval = 366 * 24 * time.Hour

// readingInterval reads an optional duration ("15m", "1h", "2d") of at
// least gatewayd.MinReadingInterval; null turns the schedule off.
func (b *body) readingInterval() (*time.Duration, bool) {
	const name = "reading_interval"
	v, ok := b.raw(name)
	if !ok {
		return nil, false
	}
	if isNull(v) {
		return nil, true
	}
	str, ok := b.decodeString(name, v, 1, 32)
	if !ok {
		return nil, false
	}
	d, err := duration.Parse(str)
	if err != nil || d < gatewayd.MinReadingInterval || d > maxReadingInterval {
		b.fail(name, "must be a duration from 1m to 366d, such as 15m or 1h, or null")
		return nil, false
	}
	if d%time.Microsecond != 0 {
		// PostgreSQL's interval keeps microseconds: "1h1ns" was accepted
		// and then answered as "1h0m0s".
		b.fail(name, "must be a whole number of microseconds")
		return nil, false
	}
	return &d, true
}

// nullableUUID reads an optional UUID field that may be null.
func (b *body) nullableUUID(name string) (*uuid.UUID, bool) {
	v, ok := b.raw(name)
	if !ok {
		return nil, false
	}
	if isNull(v) {
		return nil, true
	}
	id, ok := b.uuid(name, true)
	if !ok {
		return nil, false
	}
	return &id, true
}
