package api

import (
	"bytes"
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
	"github.com/ctcgw/gatewayd/web"
)

// route is one route and what it needs (API.md §10): the table of who
// may do what is this file. A test walks every route the app registers
// to check each is here, and the OpenAPI document takes its roles from it.
type route struct {
	method, path string
	need         access
	handler      fiber.Handler
}

// routes registers every route behind its access rule.
func (s *server) routes(app *fiber.App, table []route) {
	for _, r := range table {
		h := r.handler
		if (r.method == fiber.MethodPost || r.method == fiber.MethodDelete) && !takesBody(r) {
			h = noBody(h, strings.Contains(r.path, "/:id")) // a GET's body means nothing anywhere; these are actions
		}
		app.Add(r.method, r.path, s.authorize(r.need), h)
		if hasHead(r) {
			app.Add(fiber.MethodHead, r.path, s.authorize(r.need), r.handler)
		}
		if r.path == "/api/gateways/status" {
			app.All(r.path, methodNotAllowed) // before /gateways/:id, which would read "status" as an id
		}
	}
}

// hasHead says whether a route also answers HEAD: every GET but the
// event stream. HEAD is GET without the body (RFC 9110 §9.3.2; fasthttp
// drops it), for load balancers' and monitors' probes; a stream has no
// head to give.
func hasHead(r route) bool { return r.method == fiber.MethodGet && r.path != "/api/events" }

// takesBody says whether a route reads a request body: a PUT, and a POST
// that creates in a collection. The others (GET, DELETE, the POST actions
// on one resource such as connect or a reading) take none.
func takesBody(r route) bool {
	return r.method == fiber.MethodPut || (r.method == fiber.MethodPost && !strings.Contains(r.path, "/:"))
}

// noBody refuses a body on a route that takes none, as an unknown field
// is refused where there is a body (API.md: a typo is never silently
// ignored): {"force": true} on connect was accepted and meant nothing.
// Whitespace and an empty object are no body. On a route with an id, a
// bad id is answered with the body's problems.
func noBody(next fiber.Handler, hasID bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if len(bytes.TrimSpace(c.Request().Body())) == 0 {
			return next(c)
		}
		b, err := parseBody(c)
		if err == nil {
			err = b.done()
		}
		if err == nil {
			return next(c)
		}
		if hasID {
			_, idErr := pathID(c)
			return invalid(idErr, err)
		}
		return err
	}
}

// routeTable lists every route with its access rule: public routes hold
// no data; a viewer may read everything; an operator may also connect,
// disconnect, discover and take readings; an admin may do everything.
func (s *server) routeTable() []route {
	st := s.store
	metrics := viewer
	if s.opts.MetricsPublic {
		metrics = public
	}
	var table []route
	add := func(method, path string, need access, h fiber.Handler) {
		table = append(table, route{method, path, need, h})
	}
	add("GET", "/", public, web.Page) // the web UI holds no data; it asks for a token itself
	add("GET", web.Prefix+"*", public, web.Asset)
	if !s.opts.MetricsDisabled {
		add("GET", "/metrics", metrics, s.serveMetrics)
	}
	add("GET", "/api/health", public, s.health)
	add("GET", "/api/ready", public, s.ready)
	add("GET", "/api/openapi.json", public, openAPI)
	add("GET", "/api/docs", public, apiDocs)
	add("GET", "/api/docs/docs.css", public, apiDocsCSS)
	add("GET", "/api/events", viewer, s.eventStream)

	add("GET", "/api/whoami", viewer, s.whoami)
	add("POST", "/api/tokens", admin, s.createToken)
	add("GET", "/api/tokens", admin, s.listed(s.listTokens))
	add("DELETE", "/api/tokens/:id", admin, s.revokeToken)

	add("POST", "/api/organizations", admin, s.createOrganization)
	add("GET", "/api/organizations", viewer, s.listed(listPage(s, "", func(ctx context.Context, _ *uuid.UUID, p store.Page) ([]gatewayd.Organization, int, error) {
		return st.ListOrganizations(ctx, p)
	}, renderOrganization)))
	add("GET", "/api/organizations/:id", viewer, s.listed(getOne(s, resOrganization, nil, st.GetOrganization, renderOrganization)))
	add("PUT", "/api/organizations/:id", admin, s.updateOrganization)
	add("DELETE", "/api/organizations/:id", admin, deleteOne(s, resOrganization, st.DeleteOrganization))

	add("POST", "/api/factories", admin, s.createFactory)
	add("GET", "/api/factories", viewer, s.listed(listPage(s, "organization_id", st.ListFactories, renderFactory)))
	add("GET", "/api/factories/:id", viewer, s.listed(getOne(s, resFactory, st.KeptFactory, st.GetFactory, renderFactory)))
	add("PUT", "/api/factories/:id", admin, s.updateFactory)
	add("DELETE", "/api/factories/:id", admin, deleteOne(s, resFactory, st.DeleteFactory))

	add("POST", "/api/gateways", admin, s.createGateway)
	add("GET", "/api/gateways", viewer, s.listed(listPage(s, "factory_id", st.ListGateways, renderGateway)))
	add("GET", "/api/gateways/status", viewer, s.listed(s.listStatuses))
	add("GET", "/api/gateways/:id", viewer, s.listed(getOne(s, resGateway, st.KeptGateway, st.GetGateway, renderGateway)))
	add("PUT", "/api/gateways/:id", admin, s.updateGateway)
	add("DELETE", "/api/gateways/:id", admin, deleteOne(s, resGateway, st.DeleteGateway))
	add("GET", "/api/gateways/:id/status", viewer, s.gatewayStatus)
	add("POST", "/api/gateways/:id/connect", operator, s.connectGateway)
	add("POST", "/api/gateways/:id/disconnect", operator, s.disconnectGateway)
	add("GET", "/api/gateways/:id/sensors", viewer, s.listed(s.gatewaySensors))
	add("POST", "/api/gateways/:id/sensors/discover", operator, s.discoverSensors)

	add("GET", "/api/sensors", viewer, s.listed(s.listSensors))
	add("GET", "/api/sensors/:id", viewer, s.listed(getOne(s, resSensor, nil, st.GetSensor, renderSensor)))
	add("PUT", "/api/sensors/:id", admin, s.updateSensor)
	add("POST", "/api/sensors/:id/readings", operator, s.takeReading)
	add("GET", "/api/sensors/:id/readings", viewer, s.listed(s.sensorReadings))
	add("GET", "/api/readings/:id", viewer, getOne(s, resReading, nil, st.GetReading, renderReading))
	add("GET", "/api/readings/:id/waveform", viewer, s.waveform)
	add("GET", "/api/readings/:id/spectrum", viewer, s.spectrum)

	add("POST", "/api/equipment", admin, s.createEquipment)
	add("GET", "/api/equipment", viewer, s.listed(listPage(s, "factory_id", st.ListEquipment, renderEquipment)))
	add("GET", "/api/equipment/:id", viewer, s.listed(getOne(s, resEquipment, nil, st.GetEquipment, renderEquipment)))
	add("PUT", "/api/equipment/:id", admin, s.updateEquipment)
	add("DELETE", "/api/equipment/:id", admin, deleteOne(s, resEquipment, func(ctx context.Context, id uuid.UUID) ([]gatewayd.GatewayRef, error) {
		unassigned, err := st.DeleteEquipment(ctx, id)
		if err == nil {
			s.tel.SensorsChanged(unassigned)
		}
		return nil, err
	}))
	if s.opts.ChaosEnabled {
		add("POST", "/api/debug/gateways/:id/crash", admin, s.crashGateway)
	}
	return table
}
