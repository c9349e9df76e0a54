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
	return c.JSON(healthOf(db, total, authenticated, s.opts.Started))
}

// healthBody is health's answer; Starting gives the same shape.
type healthBody struct {
	Status   string `json:"status"`
	Database string `json:"database"`
	Gateways struct {
		Total         int `json:"total"`
		Authenticated int `json:"authenticated"`
	} `json:"gateways"`
	Uptime int64 `json:"uptime_seconds"`
}

func healthOf(db string, total, authenticated int, started time.Time) healthBody {
	h := healthBody{Status: "ok", Database: db, Uptime: int64(math.Floor(time.Since(started).Seconds()))}
	h.Gateways.Total, h.Gateways.Authenticated = total, authenticated
	return h
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
