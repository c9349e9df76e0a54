package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ctcgw/gatewayd/store"
)

const resOrganization = "ORGANIZATION"

func (s *server) createOrganization(c *fiber.Ctx) error {
	b, err := parseBody(c)
	if err != nil {
		return err
	}
	name, _ := b.name(true)
	meta, _ := b.metadata()
	if err := b.done(); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	o, err := s.store.CreateOrganization(ctx, name, meta)
	if err != nil {
		return scoped(err, resOrganization, "")
	}
	c.Location("/api/organizations/" + o.ID.String())
	return c.Status(fiber.StatusCreated).JSON(renderOrganization(o))
}

func (s *server) updateOrganization(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the body's problems, if any
	b, err := parseBody(c)
	if err != nil {
		return invalid(idErr, err)
	}
	var p store.OrganizationPatch
	p.Name.Value, p.Name.Set = b.name(false)
	p.Metadata.Value, p.Metadata.Set = b.metadata()
	if err := invalid(idErr, b.done()); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	o, err := s.store.UpdateOrganization(ctx, id, p)
	if err != nil {
		return scoped(err, resOrganization, "")
	}
	return c.JSON(renderOrganization(o))
}
