package api

import (
	"context"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/store"
)

// The read and delete handlers of the three resources differ only in
// types and names; these build them.

// getOne answers GET /:id. kept, when not nil, answers from the rows the
// store read lately (store.ReadsKeptFor) before load is asked: the
// database's deadline (a timer) is then never set up.
func getOne[T, R any](s *server, resource string, kept func(uuid.UUID) (T, bool), load func(context.Context, uuid.UUID) (T, error),
	render func(T) R) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		if kept != nil {
			if v, ok := kept(id); ok {
				return c.JSON(render(v))
			}
		}
		ctx, cancel := s.dbCtx(c)
		defer cancel()
		v, err := load(ctx, id)
		if err != nil {
			return scoped(err, resource, "")
		}
		return c.JSON(render(v))
	}
}

// listPage answers GET / with limit, offset and an optional UUID filter
// ("" for none).
func listPage[T, R any](s *server, filter string, load func(context.Context, *uuid.UUID, store.Page) ([]T, int, error),
	render func(T) R) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var filters []string
		if filter != "" {
			filters = append(filters, filter)
		}
		page, found, err := listQuery(c, filters...)
		if err != nil {
			return err
		}
		ctx, cancel := s.dbCtx(c)
		defer cancel()
		items, total, err := load(ctx, found[filter], page)
		if err != nil {
			return err
		}
		return c.JSON(renderList(items, total, page, render))
	}
}

// deleteOne answers DELETE /:id; remove returns the gateways it deleted,
// whose actors are then stopped and whose deletion is published.
func deleteOne(s *server, resource string, remove func(context.Context, uuid.UUID) ([]gatewayd.GatewayRef, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		ctx, cancel := s.dbCtx(c)
		defer cancel()
		gone, err := remove(ctx, id)
		if err != nil {
			return scoped(err, resource, "")
		}
		ids := make([]uuid.UUID, len(gone))
		for i, g := range gone {
			ids[i] = g.ID
			// A change committed before the delete may not have been
			// announced yet (a PUT publishes gateway.updated under the
			// gateway's order lock, after its commit): its event came
			// after gateway.deleted, which must be a gateway's last
			// (found by an audit, helper 6). Any later change finds
			// the gateway gone.
			s.order.await(g.ID)
		}
		s.rt.GatewaysRemoved(ids, func() {
			for _, g := range gone {
				s.tel.GatewayChanged(events.TypeGatewayDeleted, g)
			}
		})
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// listed builds a list's answer, in one of its client's list turns when
// its lists are large (listTurns): what a client's large lists take to
// build is bounded by the turns, not by its connections.
func (s *server) listed(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		done, err := s.lists.making(c, s.opts.DBTimeout)
		if err != nil {
			return err
		}
		defer done()
		err = h(c)
		s.lists.built(c, len(c.Response().Body()))
		return err
	}
}
