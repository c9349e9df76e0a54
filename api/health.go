package api

import (
	"context"
	"math"
	"time"

	"github.com/gofiber/fiber/v2"
)

// health is liveness: 200 while the process serves, whatever the database.
// The database's state comes from the background probe when there is one
// (gatewayd serve), so a liveness probe costs PostgreSQL nothing.
func (s *server) health(c *fiber.Ctx) error {
	db := "ok"
	if !s.databaseUp(c) {
		db = "unreachable"
	}
	total, authenticated := s.rt.Counts()
	type gateways struct {
		Total         int `json:"total"`
		Authenticated int `json:"authenticated"`
	}
	return c.JSON(struct {
		Status   string   `json:"status"`
		Database string   `json:"database"`
		Gateways gateways `json:"gateways"`
		Uptime   int64    `json:"uptime_seconds"`
	}{"ok", db, gateways{total, authenticated}, int64(math.Floor(time.Since(s.opts.Started).Seconds()))})
}

// ready is readiness: the database answers and the runtime has loaded.
func (s *server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), min(s.opts.DBTimeout, 2*time.Second))
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	if !s.rt.Ready() {
		return &Error{Status: fiber.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "Gateways are still loading"}
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// databaseUp answers from Options.DatabaseUp, or else pings.
func (s *server) databaseUp(c *fiber.Ctx) bool {
	if s.opts.DatabaseUp != nil {
		return s.opts.DatabaseUp()
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), min(s.opts.DBTimeout, 2*time.Second))
	defer cancel()
	return s.store.Ping(ctx) == nil
}
