package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ctcgw/gatewayd/store"
)

const resEquipment = "EQUIPMENT"

func (s *server) createEquipment(c *fiber.Ctx) error {
	b, err := parseBody(c)
	if err != nil {
		return err
	}
	var e store.NewEquipment
	e.FactoryID, _ = b.uuid("factory_id", true)
	e.Name, _ = b.name(true)
	e.Kind, _ = b.nullableStr("kind", 100)
	e.Metadata, _ = b.metadata()
	if err := b.done(); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	out, err := s.store.CreateEquipment(ctx, e)
	if err != nil {
		return scoped(err, resEquipment, "factory_id")
	}
	c.Location("/api/equipment/" + out.ID.String())
	return c.Status(fiber.StatusCreated).JSON(renderEquipment(out))
}

func (s *server) updateEquipment(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the body's problems, if any
	b, err := parseBody(c)
	if err != nil {
		return invalid(idErr, err)
	}
	var p store.EquipmentPatch
	b.reject("factory_id", "cannot be changed")
	p.Name.Value, p.Name.Set = b.name(false)
	p.Kind.Value, p.Kind.Set = b.nullableStr("kind", 100)
	p.Metadata.Value, p.Metadata.Set = b.metadata()
	if err := invalid(idErr, b.done()); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	out, err := s.store.UpdateEquipment(ctx, id, p)
	if err != nil {
		return scoped(err, resEquipment, "")
	}
	return c.JSON(renderEquipment(out))
}
