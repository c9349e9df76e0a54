package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ctcgw/gatewayd/store"
)

const resFactory = "FACTORY"

func (s *server) createFactory(c *fiber.Ctx) error {
	b, err := parseBody(c)
	if err != nil {
		return err
	}
	var f store.NewFactory
	f.OrganizationID, _ = b.uuid("organization_id", true)
	f.Name, _ = b.name(true)
	f.Location, _ = b.nullableStr("location", 500)
	f.Timezone, _ = b.timezone()
	f.Metadata, _ = b.metadata()
	if err := b.done(); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	out, err := s.store.CreateFactory(ctx, f)
	if err != nil {
		return scoped(err, resFactory, "organization_id")
	}
	c.Location("/api/factories/" + out.ID.String())
	return c.Status(fiber.StatusCreated).JSON(renderFactory(out))
}

func (s *server) updateFactory(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the body's problems, if any
	b, err := parseBody(c)
	if err != nil {
		return invalid(idErr, err)
	}
	var p store.FactoryPatch
	b.reject("organization_id", "cannot be changed")
	p.Name.Value, p.Name.Set = b.name(false)
	p.Location.Value, p.Location.Set = b.nullableStr("location", 500)
	p.Timezone.Value, p.Timezone.Set = b.timezone()
	p.Metadata.Value, p.Metadata.Set = b.metadata()
	if err := invalid(idErr, b.done()); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	f, err := s.store.UpdateFactory(ctx, id, p)
	if err != nil {
		return scoped(err, resFactory, "")
	}
	return c.JSON(renderFactory(f))
}
