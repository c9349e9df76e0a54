package api

import (
	"context"
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/internal/netguard"
	"github.com/ctcgw/gatewayd/store"
)

const resGateway = "GATEWAY"

// dialable refuses a URL whose host is an address (in any spelling) that
// gatewayd would never dial: link-local (cloud metadata), unspecified,
// multicast, or outside GATEWAY_ALLOWED_NETWORKS. Names are checked when
// dialed, after they resolve.
func (s *server) dialable(b *body, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		return // wsURL said so already
	}
	if addr, ok := netguard.ParseHost(u.Hostname()); ok && !s.opts.DialPolicy.Allowed(addr) {
		b.fail("url", "address not allowed: gatewayd never dials link-local, unspecified or multicast addresses, nor any outside GATEWAY_ALLOWED_NETWORKS")
	}
}

func (s *server) createGateway(c *fiber.Ctx) error {
	b, err := parseBody(c)
	if err != nil {
		return err
	}
	var g store.NewGateway
	g.FactoryID, _ = b.uuid("factory_id", true)
	g.GatewayID, _ = b.str("gateway_id", true, 1, 255)
	g.Name, _ = b.name(true)
	g.URL, _ = b.wsURL(true)
	s.dialable(b, g.URL)
	g.Email, _ = b.email(true)
	g.Password, _ = b.str("password", true, 1, 1024)
	g.Model, _ = b.nullableStr("model", 100)
	g.FirmwareVersion, _ = b.nullableStr("firmware_version", 50)
	g.DesiredState, _ = b.desiredState()
	g.Metadata, _ = b.metadata()
	if err := b.done(); err != nil {
		return err
	}
	// Under the new gateway's order lock from before the insert to the
	// runtime's message: a connect, disconnect or PUT of the gateway
	// another client made the moment it was committed (it learned of it
	// from the event stream) told the runtime first, and the create's
	// later start put back the wish it had undone (found by an audit,
	// helper 8).
	g.ID = uuid.New()
	ctx, release := s.lockedDBCtx(c.UserContext(), g.ID)
	defer release()
	out, err := s.store.CreateGateway(ctx, g)
	if err != nil {
		return scoped(err, resGateway, "factory_id")
	}
	// Announced before the runtime hears of it: the supervisor publishes
	// the gateway's first state, and a client following the stream hears
	// of the gateway before of its state (found by an audit, helper 3).
	s.tel.GatewayChanged(events.TypeGatewayCreated, gatewayd.GatewayRef{ID: out.ID, FactoryID: out.FactoryID})
	s.rt.GatewayStarted(out.Target(g.Password))
	c.Location("/api/gateways/" + out.ID.String())
	return c.Status(fiber.StatusCreated).JSON(renderGateway(out))
}

func (s *server) updateGateway(c *fiber.Ctx) error {
	id, idErr := pathID(c) // answered with the body's problems, if any
	b, err := parseBody(c)
	if err != nil {
		return invalid(idErr, err)
	}
	var p store.GatewayPatch
	b.reject("factory_id", "cannot be changed")
	p.GatewayID.Value, p.GatewayID.Set = b.str("gateway_id", false, 1, 255)
	p.Name.Value, p.Name.Set = b.name(false)
	p.URL.Value, p.URL.Set = b.wsURL(false)
	s.dialable(b, p.URL.Value)
	p.Email.Value, p.Email.Set = b.email(false)
	p.Password.Value, p.Password.Set = b.str("password", false, 1, 1024)
	p.Model.Value, p.Model.Set = b.nullableStr("model", 100)
	p.FirmwareVersion.Value, p.FirmwareVersion.Set = b.nullableStr("firmware_version", 50)
	p.DesiredState.Value, p.DesiredState.Set = b.desiredState()
	p.Metadata.Value, p.Metadata.Set = b.metadata()
	bodyErr := b.done()
	if idErr != nil { // no gateway to check the password rule against
		return invalid(idErr, bodyErr)
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	// The password rule needs the stored gateway; it is checked even when
	// the body has other problems, so that one answer lists them all.
	if _, given := b.fields["password"]; !given {
		moved, err := s.hostMoves(ctx, id, p)
		switch {
		case err != nil && bodyErr != nil:
			return bodyErr // the body's problems before the gateway's absence, as ever
		case err != nil:
			return err
		case moved:
			b.fail("password", "is required when url or email changes")
			return validationError(b.details...)
		}
	}
	if bodyErr != nil {
		return bodyErr
	}
	// The update's deadline starts once the lock is held (lockedDBCtx).
	ctx, release := s.lockedDBCtx(c.UserContext(), id)
	defer release()
	up, err := s.store.UpdateGateway(ctx, id, p)
	if errors.Is(err, store.ErrPasswordRequired) { // moved by a concurrent PUT since hostMoves read it
		b.fail("password", "is required when url or email changes")
		return validationError(b.details...)
	}
	if err != nil {
		return scoped(err, resGateway, "")
	}
	if up.Changed { // a PUT that changes nothing announces nothing, as a sensor's
		// Before the runtime hears of it, as a create (see createGateway).
		s.tel.GatewayChanged(events.TypeGatewayUpdated, gatewayd.GatewayRef{ID: up.Gateway.ID, FactoryID: up.Gateway.FactoryID})
	}
	// Always: the runtime shows names in statuses, connects or
	// disconnects when desired_state changed, and reconnects only when the
	// credentials differ from the ones it uses.
	s.rt.GatewayUpdated(up.Target)
	return c.JSON(renderGateway(up.Gateway))
}

// hostMoves says whether a PUT changes url or email, which it may only
// do with a password in the same request: the stored secret must never be
// sent to a new host or for another account (API.md §4). It reads the
// stored gateway first, so that one answer lists every problem; the
// store's update checks the rule again against the row it locks (a
// concurrent PUT may have moved the gateway in between).
func (s *server) hostMoves(ctx context.Context, id uuid.UUID, p store.GatewayPatch) (bool, error) {
	if !p.URL.Set && !p.Email.Set {
		return false, nil
	}
	cur, err := s.store.GetGateway(ctx, id)
	if err != nil {
		return false, scoped(err, resGateway, "")
	}
	return (p.URL.Set && p.URL.Value != cur.URL) || (p.Email.Set && p.Email.Value != cur.Email), nil
}

// withRuntime runs f on the gateway's runtime entry. A gateway the
// runtime does not know yet but the store has (written by another process
// since the last reconciliation) is started first.
func (s *server) withRuntime(c *fiber.Ctx, f func(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)) (gatewayd.Status, error) {
	id, err := pathID(c)
	if err != nil {
		return gatewayd.Status{}, err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	st, err := f(ctx, id)
	if !errors.Is(err, gatewayd.ErrNotFound) {
		return st, scoped(err, resGateway, "")
	}
	// Read and told under the gateway's lock: a connect or disconnect
	// committed meanwhile tells the runtime after this. The read's
	// deadline starts once the lock is held (lockedDBCtx).
	ctx, release := s.lockedDBCtx(c.UserContext(), id)
	defer release()
	t, err := s.store.Target(ctx, id)
	if err != nil {
		return gatewayd.Status{}, scoped(err, resGateway, "")
	}
	s.rt.GatewayStarted(t)
	st, err = f(ctx, id)
	return st, scoped(err, resGateway, "")
}

// onRuntime runs f; if the runtime does not know the gateway, it is
// started from known and f runs again.
func (s *server) onRuntime(ctx context.Context, id uuid.UUID, known gatewayd.Target,
	f func(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)) (gatewayd.Status, error) {
	st, err := f(ctx, id)
	if !errors.Is(err, gatewayd.ErrNotFound) {
		return st, scoped(err, resGateway, "")
	}
	s.rt.GatewayStarted(known)
	st, err = f(ctx, id)
	return st, scoped(err, resGateway, "")
}

func (s *server) gatewayStatus(c *fiber.Ctx) error {
	st, err := s.withRuntime(c, s.rt.Status)
	if err != nil {
		return err
	}
	return c.JSON(renderStatus(st))
}

// setDesired stores the operator's wish first and only then tells the
// runtime: when it cannot be stored the answer is 503 and the connection
// is left as it was.
func (s *server) setDesired(c *fiber.Ctx, d gatewayd.DesiredState,
	act func(ctx context.Context, id uuid.UUID) (gatewayd.Status, error)) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	ctx, release := s.lockedDBCtx(c.UserContext(), id)
	defer release()
	t, changed, err := s.store.SetDesiredState(ctx, id, d)
	if err != nil {
		return scoped(err, resGateway, "")
	}
	if changed { // the stored gateway changed, as a PUT of desired_state changes it
		s.tel.GatewayChanged(events.TypeGatewayUpdated, gatewayd.GatewayRef{ID: id, FactoryID: t.FactoryID})
	}
	st, err := s.onRuntime(ctx, id, t, act)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(renderStatus(st))
}

func (s *server) connectGateway(c *fiber.Ctx) error {
	return s.setDesired(c, gatewayd.DesiredConnected, s.rt.Connect)
}

func (s *server) disconnectGateway(c *fiber.Ctx) error {
	return s.setDesired(c, gatewayd.DesiredDisconnected, s.rt.Disconnect)
}

func (s *server) crashGateway(c *fiber.Ctx) error {
	_, err := s.withRuntime(c, func(ctx context.Context, id uuid.UUID) (gatewayd.Status, error) {
		return gatewayd.Status{}, s.rt.Crash(ctx, id)
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "crash requested"})
}

type statusListJSON struct {
	Data   []statusJSON   `json:"data"`
	Counts map[string]int `json:"counts"`
}

func (s *server) listStatuses(c *fiber.Ctx) error {
	var factoryID *uuid.UUID
	notPaged := func(string) string { return "this list is not paged" }
	if err := plainQuery(c, map[string]func(string) string{
		"factory_id": uuidParam(&factoryID), "limit": notPaged, "offset": notPaged,
	}); err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	list, err := s.rt.Statuses(ctx, factoryID)
	if err != nil {
		return err
	}
	out := statusListJSON{Data: make([]statusJSON, len(list)), Counts: make(map[string]int, len(gatewayd.States))}
	for _, st := range gatewayd.States {
		out.Counts[string(st)] = 0
	}
	for i, st := range list {
		out.Data[i] = renderStatus(st)
		out.Counts[string(st.State)]++
	}
	return c.JSON(out)
}
